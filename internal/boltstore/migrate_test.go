package boltstore_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestUpgradeFromPagerDutyOnlyDatabase opens testdata/pre-alerts.db, a file
// written by the bot before alert sources were neutral (schema 1; made by
// testdata/gendb.go.txt from that version): INC-1 opened by PagerDuty
// events EV1 (trigger) and EV2 (acknowledgement) for PagerDuty #12
// (PABC), INC-2 declared in Slack and paged once. After the upgrade the
// same events are still applied once, the link still finds INC-1, and page
// numbers go on.
func TestUpgradeFromPagerDutyOnlyDatabase(t *testing.T) {
	path, s := openOld(t, "pre-alerts.db")
	defer s.Close()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc := incident.NewService(incident.ServiceConfig{Store: s, Clock: incident.ClockFunc(func() time.Time { return now })})

	inc1, events1, err := svc.Timeline(ctx, incident.Ref{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if inc1.Pager.System != "pagerduty" || inc1.Pager.SystemName != "PagerDuty" || inc1.Pager.Label() != "PagerDuty #12" ||
		inc1.Pager.IncidentID != "PABC" || inc1.Pager.URL == "" || inc1.Status != incident.StatusAcknowledged || inc1.Title != "Checkout errors" {
		t.Fatalf("INC-1 after the upgrade: %+v", inc1)
	}

	// PagerDuty re-delivers the acknowledgement applied before the upgrade.
	pd := func(id, kind string, at time.Time) incident.PagerEvent {
		return incident.PagerEvent{Source: incident.SourcePagerDuty, SourceName: "PagerDuty", ID: id, Type: kind, OccurredAt: at,
			Agent:    incident.PagerUser{ID: "PUSER", Name: "Pat"},
			Incident: incident.PagerIncident{ID: "PABC", Number: 12, Label: "PagerDuty #12"}}
	}
	if _, err := svc.ApplyPagerEvent(ctx, pd("EV2", incident.PagerAcknowledged, inc1.AcknowledgedAt)); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := svc.Timeline(ctx, incident.Ref{Number: 1}); len(after) != len(events1) {
		t.Fatalf("an event applied before the upgrade was applied again: %d events, was %d", len(after), len(events1))
	}
	// An older event than the last applied one is still known to be late.
	late, err := svc.ApplyPagerEvent(ctx, pd("EV0", incident.PagerUnacknowledged, inc1.AcknowledgedAt.Add(-time.Hour)))
	if err != nil || late.Number != 1 || late.Status != incident.StatusAcknowledged {
		t.Fatalf("a late event after the upgrade: %+v, %v", late, err)
	}
	// A new event for the same PagerDuty incident moves INC-1, no new incident.
	res, err := svc.ApplyPagerEvent(ctx, pd("EV3", incident.PagerResolved, now))
	if err != nil || res.Number != 1 || res.Status != incident.StatusResolved {
		t.Fatalf("resolution after the upgrade: %+v, %v", res, err)
	}
	if list, _ := svc.List(ctx, incident.Filter{}); len(list) != 2 {
		t.Fatalf("%d incidents, want the 2 of the old file", len(list))
	}

	// INC-2 was paged once: the next page is page 2.
	_, action, err := svc.RequestPage(ctx, incident.Ref{Number: 2}, incident.PagerTarget{Name: "search"}, "again", incident.Actor{ID: "U1", Source: incident.SourceSlack})
	if err != nil || action.Page != 2 {
		t.Fatalf("page after the upgrade: %+v, %v", action, err)
	}
	view(t, s, func(tx incident.Tx) error {
		for _, k := range []string{"pd:applied:EV1", "pd:last:PABC", "pd:pages:INC-2"} {
			if _, ok, _ := tx.Key(k); ok {
				t.Errorf("old key %s is still there", k)
			}
		}
		if _, ok, _ := tx.Key("applied:pagerduty:EV1"); !ok {
			t.Error("the applied key of EV1 was not renamed")
		}
		return nil
	})

	// Opening the upgraded file again changes nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	view(t, s2, func(tx incident.Tx) error {
		inc, err := tx.IncidentByPager(incident.SourcePagerDuty, "PABC")
		if err != nil || inc.Number != 1 || inc.Pager.System != "pagerduty" {
			t.Errorf("after reopening: %+v, %v", inc, err)
		}
		return nil
	})
}

// TestUpgradePagerIndexBySystem opens testdata/schema2-pager-index.db, a
// file written by the bot with schema 2 (testdata/gendb2.go.txt), whose
// pager index was keyed by the pager's incident id alone: INC-1 opened by
// PagerDuty incident Q1, INC-2 by an Alertmanager group. After the upgrade
// the index is keyed by system and id: PagerDuty's Q1 still finds INC-1
// (and its next event moves it, no new incident), another pager's Q1 finds
// nothing, and a second pager's Q1 opens its own incident.
func TestUpgradePagerIndexBySystem(t *testing.T) {
	_, s := openOld(t, "schema2-pager-index.db")
	defer s.Close()
	view(t, s, func(tx incident.Tx) error {
		if inc, err := tx.IncidentByPager(incident.SourcePagerDuty, "Q1"); err != nil || inc.Number != 1 {
			t.Errorf("PagerDuty's Q1 after the upgrade: %+v, %v", inc, err)
		}
		if inc, err := tx.IncidentByPager("opsgenie", "Q1"); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("another pager's Q1 finds %+v, %v; want not found", inc, err)
		}
		return nil
	})
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	svc := incident.NewService(incident.ServiceConfig{Store: s, Clock: incident.ClockFunc(func() time.Time { return now })})
	ack, err := svc.ApplyPagerEvent(ctx, incident.PagerEvent{Source: incident.SourcePagerDuty, SourceName: "PagerDuty", ID: "EV2",
		Type: incident.PagerAcknowledged, OccurredAt: now, Incident: incident.PagerIncident{ID: "Q1"}})
	if err != nil || ack.Number != 1 || ack.Status != incident.StatusAcknowledged {
		t.Fatalf("PagerDuty's acknowledgement of Q1 after the upgrade: %+v, %v", ack, err)
	}
	other, err := svc.ApplyPagerEvent(ctx, incident.PagerEvent{Source: "opsgenie", SourceName: "Opsgenie", ID: "OG1",
		Type: incident.PagerTriggered, OccurredAt: now, Incident: incident.PagerIncident{ID: "Q1", Title: "Queue backlog", Status: "triggered", Full: true, CreatedAt: now}})
	if err != nil || other.Number != 3 || other.Pager.System != "opsgenie" {
		t.Fatalf("Opsgenie's Q1 did not open its own incident: %+v, %v", other, err)
	}
	view(t, s, func(tx incident.Tx) error {
		for sys, want := range map[incident.Source]int64{incident.SourcePagerDuty: 1, "opsgenie": 3} {
			if inc, err := tx.IncidentByPager(sys, "Q1"); err != nil || inc.Number != want {
				t.Errorf("%s's Q1: %+v, %v; want INC-%d", sys, inc, err, want)
			}
		}
		return nil
	})
}

// openOld opens a copy of testdata/name, an old database, which upgrades it.
func openOld(t *testing.T, name string) (string, *boltstore.Store) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bot.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("opening the old database %s: %v", name, err)
	}
	if v, err := s.SchemaVersion(); err != nil || v != boltstore.SchemaVersion {
		t.Fatalf("schema after the upgrade of %s: %d, %v", name, v, err)
	}
	return path, s
}

func view(t *testing.T, s *boltstore.Store, fn func(tx incident.Tx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatal(err)
	}
}
