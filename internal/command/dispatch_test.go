package command_test

import (
	"context"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestRepliesSayWhenPagerDutyWasNotChanged: acknowledging or resolving a
// paged incident while the bot cannot change PagerDuty says so in the
// reply, instead of letting people believe the page stopped.
func TestRepliesSayWhenPagerDutyWasNotChanged(t *testing.T) {
	for _, synced := range []bool{false, true} {
		svc := incident.NewService(incident.ServiceConfig{Store: bolttest.Open(t)})
		ctx := context.Background()
		pd := incident.Actor{ID: "PUSER", Name: "PagerDuty", Source: incident.SourcePagerDuty}
		if _, err := svc.Declare(ctx, incident.Declaration{Title: "db down", By: pd, Triggered: true,
			Pager: incident.PagerRef{IncidentID: "Q1ABC", Number: 12, System: "pagerduty", SystemName: "PagerDuty"}}); err != nil {
			t.Fatal(err)
		}
		d := command.NewDispatcher(command.Config{Service: svc, PagerStatusSync: synced})
		alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
		for _, text := range []string{"ack INC-1", "resolve INC-1"} {
			r := d.Handle(ctx, command.Request{Text: text, Actor: alice})
			said := strings.Contains(r.Text, "PagerDuty #12 was *not* changed")
			if r.Error || said == synced {
				t.Errorf("synced=%v, %q: %q", synced, text, r.Text)
			}
		}
	}
}
