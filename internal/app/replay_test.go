package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// The same signed slash command delivered three times (a replay inside
// Slack's 5-minute signature window) has one effect: one incident, one
// channel, one announcement, one PagerDuty incident for a page, one note.
func TestReplayedSlashCommandRunsOnce(t *testing.T) {
	w := newPDWorld(t)
	announce := w.slack.AddChannel("incidents", false, "U0ALICE", w.slack.BotUserID())
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"BOT_ANNOUNCE_CHANNEL": announce})
	ctx := context.Background()

	// thrice sends one signed request three times, byte for byte, and
	// returns the replies.
	thrice := func(channel, text string) []string {
		t.Helper()
		body := []byte(bot.slack.CommandForm(slacktest.Command{User: "U0ALICE", UserName: "alice", Channel: channel, Text: text}).Encode())
		var out []string
		for range 3 {
			r, err := bot.slack.Post(ctx, "/slack/commands", "application/x-www-form-urlencoded", body, nil)
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("/incident %s: %v %d %s", text, err, r.Status, r.Body)
			}
			out = append(out, r.Text())
		}
		if out[1] != slack.DuplicateCommandText || out[2] != slack.DuplicateCommandText {
			t.Errorf("replies to a replayed /incident %s: %q", text, out)
		}
		return out
	}

	if r := thrice(w.general, "declare sev2 Checkout down"); !strings.Contains(r[0], "Declared *INC-1*") {
		t.Fatalf("declare: %q", r[0])
	}
	var ch slacktest.Channel
	waitUntil(t, "the incident channel and its announcement", func() bool {
		c, ok := w.slack.ChannelByName("inc-1-checkout-down")
		ch = c
		return ok && len(botMessages(w.slack, announce)) >= 1 && bot.settled(w.clock.Now())
	})
	if r := thrice(ch.ID, "page PSVC001 checkout is down"); !strings.HasPrefix(r[0], "Paging") {
		t.Fatalf("page: %q", r[0])
	}
	if r := thrice(ch.ID, "note rolled back deploy 42"); !strings.Contains(r[0], "Note added") {
		t.Fatalf("note: %q", r[0])
	}
	waitUntil(t, "everything told", func() bool { return bot.settled(w.clock.Now()) && len(w.pd.Incidents()) > 0 })

	if incs := bot.incidents(t); len(incs) != 1 {
		t.Errorf("%d incidents, want 1", len(incs))
	}
	if _, ok := w.slack.ChannelByName("inc-2-checkout-down"); ok {
		t.Error("a second incident channel")
	}
	if got := botMessages(w.slack, announce); len(got) != 1 {
		t.Errorf("%d announcements, want 1: %q", len(got), texts(got))
	}
	if got := w.pd.Incidents(); len(got) != 1 {
		t.Errorf("%d PagerDuty incidents, want 1: %+v", len(got), got)
	}
	if n := countKind(bot.timeline(t, 1), incident.EventNote); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
	if n := countKind(bot.timeline(t, 1), incident.EventPageSent); n != 1 {
		t.Errorf("%d pages on the timeline, want 1", n)
	}
}

// A slash command envelope Slack redelivers over Socket Mode, even to the
// bot after a restart, runs once.
func TestRedeliveredSocketModeCommandRunsOnce(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	db := filepath.Join(t.TempDir(), "bot.db")
	env := map[string]string{"SLACK_APP_TOKEN": fake.AppToken(), "SLACK_SIGNING_SECRET": ""}
	bot := w.start(t, db, env)
	opened := 0
	connected := func() {
		t.Helper()
		// A new connection, and the old one (if any) gone.
		if !fake.Wait(10*time.Second, func() bool { return fake.SocketConnectionsOpened() > opened && fake.SocketConnections() == 1 }) {
			t.Fatal("the bot did not open a Socket Mode connection")
		}
		opened = fake.SocketConnectionsOpened()
	}
	connected()
	send := func(e slacktest.Envelope) string {
		t.Helper()
		a, err := fake.SendEnvelope(e, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return ackText(t, a)
	}
	declare := slacktest.Envelope{Type: "slash_commands", EnvelopeID: "env-declare", AcceptsResponsePayload: true,
		Payload: commandPayload(bot.send, "U0ALICE", w.general, "declare sev1 Login fails")}
	if got := send(declare); !strings.Contains(got, "Declared *INC-1*") {
		t.Fatalf("declare ack: %q", got)
	}
	var chID string
	waitFor(t, 10*time.Second, "the incident channel", func() bool {
		c, ok := fake.ChannelByName("inc-1-login-fails")
		chID = c.ID
		return ok && bot.idle()
	})
	note := slacktest.Envelope{Type: "slash_commands", EnvelopeID: "env-note", AcceptsResponsePayload: true,
		Payload: commandPayload(bot.send, "U0ALICE", chID, "note restarted the login service")}
	if got := send(note); !strings.Contains(got, "Note added") {
		t.Fatalf("note ack: %q", got)
	}

	// Slack redelivers both envelopes to the restarted bot, and once more
	// under new envelope ids.
	bot.stop(t)
	bot = w.start(t, db, env)
	connected()
	for _, e := range []slacktest.Envelope{declare, note} {
		if got := send(e); got != slack.DuplicateCommandText {
			t.Errorf("redelivered %s: %q", e.EnvelopeID, got)
		}
		e.EnvelopeID += "-again"
		e.RetryAttempt = 1
		if got := send(e); got != slack.DuplicateCommandText {
			t.Errorf("redelivered %s: %q", e.EnvelopeID, got)
		}
	}
	waitFor(t, 10*time.Second, "the queue to drain", bot.idle)
	incs, err := bot.App.Service().List(context.Background(), incident.Filter{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("incidents: %d %v, want 1", len(incs), err)
	}
	if n := countKind(bot.timeline(t, 1), incident.EventNote); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
	if _, ok := fake.ChannelByName("inc-2-login-fails"); ok {
		t.Error("a second incident channel")
	}
	bot.noDeadJobs(t)
}
