package app_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// TestOnCallCommandThroughSlack runs `/incident oncall` as Slack sends it,
// outside any incident channel, against the fake PagerDuty: people whose
// PagerDuty email is a Slack user's are mentioned, the others named; typed
// names are echoed inert; a rate limit is a clear ephemeral reply.
func TestOnCallCommandThroughSlack(t *testing.T) {
	w := newPDWorld(t)
	w.pd = pdtest.New(t, pdtest.Config{
		Token: pdToken,
		Now:   w.clock.Now,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: pdFrom},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
			{ID: "PEVE001", Name: "Eve Contractor", Email: "eve@contractor.example"},
		},
		Schedules: []pdtest.Schedule{
			{ID: "PSCH001", Name: "Checkout weekly", Shifts: pdtest.Rotation(pdStart.Add(-24*time.Hour), 7*24*time.Hour, 4, "PALICE1", "PEVE001")},
		},
		Policies: []pdtest.Policy{{ID: "PEP0001", Name: "Checkout On-call", Levels: [][]string{{"PSCH001"}, {"PBOB001"}}}},
	})
	b := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	defer b.stop(t)

	r, err := b.slack.Command(t.Context(), slacktest.Command{User: "U0CAROL", UserName: "carol", Channel: w.general, Text: "oncall Checkout on-call"})
	if err != nil {
		t.Fatal(err)
	}
	var ack struct {
		ResponseType string            `json:"response_type"`
		Text         string            `json:"text"`
		Blocks       []json.RawMessage `json:"blocks"`
	}
	if err := r.JSON(&ack); err != nil {
		t.Fatalf("reply %s: %v", r.Body, err)
	}
	for _, want := range []string{
		"*Who is on call* for the escalation policy Checkout On-call in PagerDuty (times in UTC):",
		"\n*Checkout On-call*\n",
		"• Level 1 · Checkout weekly: <@U0ALICE> until Sun 22 Nov 03:00 · next: Eve Contractor, Sun 22 Nov 03:00 → Sun 29 Nov 03:00",
		"• Level 2: <@U0BOB> (always on call)",
	} {
		if !strings.Contains(ack.Text, want) {
			t.Errorf("reply lacks %q:\n%s", want, ack.Text)
		}
	}
	if ack.ResponseType != "ephemeral" || len(ack.Blocks) != 3 {
		t.Errorf("reply is %s with %d blocks", ack.ResponseType, len(ack.Blocks))
	}
	if len(w.pd.CallsTo("GET /oncalls")) != 1 {
		t.Errorf("GET /oncalls: %d", len(w.pd.CallsTo("GET /oncalls")))
	}

	// Typed names are echoed without their power to notify.
	text := b.command(t, "U0CAROL", w.general, "oncall <!channel> team")
	if strings.Contains(text, "<!channel>") || !strings.Contains(text, "no schedule or escalation policy named") {
		t.Errorf("unknown name reply: %q", text)
	}

	w.clock.Advance(2 * time.Minute) // past the cached answer
	w.pd.RateLimit("GET /oncalls", 1, 30)
	if text := b.command(t, "U0CAROL", w.general, "oncall checkout on-call"); !strings.Contains(text, "PagerDuty is rate limiting the bot right now") || !strings.Contains(text, "in 30 seconds") {
		t.Errorf("429 reply: %q", text)
	}
}

// TestOnCallCommandWithoutPagerDutyToken says what to set.
func TestOnCallCommandWithoutPagerDutyToken(t *testing.T) {
	w := newPDWorld(t)
	b := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"PAGERDUTY_API_TOKEN": "", "PAGERDUTY_FROM_EMAIL": ""})
	defer b.stop(t)
	if text := b.command(t, "U0CAROL", w.general, "oncall"); !strings.Contains(text, "set PAGERDUTY_API_TOKEN") {
		t.Errorf("reply: %q", text)
	}
	if n := len(w.pd.Calls()); n != 0 {
		t.Errorf("PagerDuty called %d times", n)
	}
}
