package command_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// onCallFunc is an incident.OnCallDirectory with a fixed answer.
type onCallFunc func(ctx context.Context, query string) (*incident.OnCall, error)

func (f onCallFunc) OnCall(ctx context.Context, query string) (*incident.OnCall, error) {
	return f(ctx, query)
}

// TestOnCallReplies: `oncall` is answered anywhere (no incident), with
// times in the configured zone, and says what to do when PagerDuty is not
// configured, lists nobody, or lists more than a reply holds.
func TestOnCallReplies(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	svc := incident.NewService(incident.ServiceConfig{Store: bolttest.Open(t)})
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	run := func(oc incident.OnCallDirectory, text string) command.Reply {
		t.Helper()
		d := command.NewDispatcher(command.Config{Service: svc, Location: berlin, OnCall: oc})
		return d.Handle(context.Background(), command.Request{Text: text, Actor: alice, ChannelID: "C0GENERAL"})
	}

	if r := run(nil, "oncall"); !r.Error || !strings.Contains(r.Text, "set PAGERDUTY_API_TOKEN") {
		t.Errorf("not configured: %+v", r)
	}

	var asked []string
	answer := &incident.OnCall{System: "PagerDuty", At: at, Ahead: 30 * 24 * time.Hour, Asked: "the escalation policy Payments", Paths: []incident.OnCallPath{{
		ID: "PEP1", Name: "Payments", Levels: []incident.OnCallLevel{
			{Level: 1, Rotations: []incident.OnCallRotation{{ID: "PS1", Name: "Primary",
				Now:  []incident.OnCallShift{{Person: incident.OnCallPerson{Name: "Alice", ChatID: "U0ALICE"}, Start: at.Add(-time.Hour), End: at.Add(3 * time.Hour)}},
				Next: &incident.OnCallShift{Person: incident.OnCallPerson{Name: "Bob Builder"}, Start: at.Add(3 * time.Hour), End: at.Add(27 * time.Hour)}}}},
			{Level: 2, Rotations: []incident.OnCallRotation{
				{Now: []incident.OnCallShift{{Person: incident.OnCallPerson{Name: "Frank"}}}},
				{ID: "PS2", Name: "Secondary"},
			}},
		},
	}}}
	dir := onCallFunc(func(_ context.Context, q string) (*incident.OnCall, error) {
		asked = append(asked, q)
		return answer, nil
	})
	r := run(dir, "oncall   Payments team")
	want := []string{
		"*Who is on call* for the escalation policy Payments in PagerDuty (times in Europe/Berlin):",
		"*Payments*\n• Level 1 · Primary: <@U0ALICE> until 13:30 · next: Bob Builder, 13:30 → Thu 3 Dec 13:30\n• Level 2: Frank (always on call)\n• Level 2 · Secondary: nobody now · no next shift known",
		"PagerDuty, as of 10:30 (answers are reused for up to a minute).",
	}
	if r.Error || fmt.Sprint(r.Sections) != fmt.Sprint(want) || r.Text != strings.Join(want, "\n") || fmt.Sprint(asked) != "[Payments team]" {
		t.Errorf("reply %q\nsections %q\nasked %q", r.Text, r.Sections, asked)
	}

	// Nobody on a schedule no policy uses.
	empty := onCallFunc(func(context.Context, string) (*incident.OnCall, error) {
		return &incident.OnCall{System: "PagerDuty", At: at, Ahead: 30 * 24 * time.Hour, Asked: "the schedule Orphan"}, nil
	})
	if r := run(empty, "oncall orphan"); r.Error || !strings.Contains(r.Text, "PagerDuty lists nobody on call for the schedule Orphan, now or in the next 30d") ||
		!strings.Contains(r.Text, "only through an escalation policy") {
		t.Errorf("nobody: %q", r.Text)
	}

	// More policies than a reply holds, and an incomplete answer.
	many := &incident.OnCall{System: "PagerDuty", At: at, Truncated: true}
	for i := range 25 {
		many.Paths = append(many.Paths, incident.OnCallPath{ID: fmt.Sprint(i), Name: fmt.Sprintf("Team %02d", i)})
	}
	r = run(onCallFunc(func(context.Context, string) (*incident.OnCall, error) { return many, nil }), "oncall")
	if len(r.Sections) != 23 || !strings.Contains(r.Text, "…and 5 more escalation policies") || !strings.Contains(r.Text, "some may be missing") ||
		!strings.HasPrefix(r.Text, "*Who is on call* on every escalation policy") {
		t.Errorf("many: %d sections\n%s", len(r.Sections), r.Text)
	}

	// A failure's message reaches the person as it is.
	failing := onCallFunc(func(context.Context, string) (*incident.OnCall, error) {
		return nil, incident.Errorf(incident.EINTERNAL, "PagerDuty is rate limiting the bot right now")
	})
	if r := run(failing, "oncall"); !r.Error || r.Text != "PagerDuty is rate limiting the bot right now" {
		t.Errorf("failure: %+v", r)
	}
}
