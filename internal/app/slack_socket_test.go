package app_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// commandPayload is a slash command as a Socket Mode envelope carries it:
// the form fields as a JSON object.
func commandPayload(s *slacktest.Sender, user, channel, text string) map[string]string {
	out := map[string]string{}
	for k, v := range s.CommandForm(slacktest.Command{User: user, Channel: channel, Text: text}) {
		out[k] = v[0]
	}
	return out
}

func ackText(t *testing.T, a slacktest.Ack) string {
	t.Helper()
	var v struct {
		Text string `json:"text"`
	}
	if len(a.Payload) > 0 {
		if err := json.Unmarshal(a.Payload, &v); err != nil {
			t.Fatalf("ack payload %s: %v", a.Payload, err)
		}
	}
	return v.Text
}

func TestSlackSocketMode(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"SLACK_APP_TOKEN": fake.AppToken(), "SLACK_SIGNING_SECRET": "",
	})
	if !fake.Wait(10*time.Second, func() bool { return fake.SocketConnections() == 1 }) {
		t.Fatal("the bot did not open a Socket Mode connection")
	}
	// No public endpoints in Socket Mode.
	if r, _ := bot.send.Command(t.Context(), slacktest.Command{User: "U0ALICE", Channel: w.general, Text: "help"}); r.Status != http.StatusNotFound {
		t.Errorf("POST /slack/commands in Socket Mode: %d, want 404", r.Status)
	}
	send := func(env slacktest.Envelope) slacktest.Ack {
		t.Helper()
		a, err := fake.SendEnvelope(env, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// A slash command: the reply is the acknowledgement's payload.
	a := send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true,
		Payload: commandPayload(bot.send, "U0ALICE", w.general, "declare sev1 Login fails for everyone")})
	if got := ackText(t, a); !strings.Contains(got, "Declared *INC-1*") {
		t.Fatalf("declare ack: %s", a.Payload)
	}
	var chID string
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-login-fails-for-everyone")
		chID = c.ID
		return ok && len(summaries(fake, c.ID)) == 1
	}) {
		t.Fatal("no incident channel")
	}

	// Events: acknowledged, deduplicated on redelivery (same envelope) and
	// on Slack's retry (new envelope, same event id).
	ts := fake.UserPost(chID, "U0BOB", "login service restarted")
	body := fake.ReactionAdded("Ev0SOCK1", "U0ALICE", "pushpin", chID, ts)
	send(slacktest.Envelope{Type: "events_api", EnvelopeID: "env-pin-1", Payload: body})
	send(slacktest.Envelope{Type: "events_api", EnvelopeID: "env-pin-1", Payload: body, RetryAttempt: 1, RetryReason: "timeout"})
	send(slacktest.Envelope{Type: "events_api", EnvelopeID: "env-pin-2", Payload: body, RetryAttempt: 2, RetryReason: "timeout"})
	// An event type slack-go does not know is still acknowledged, so Slack
	// does not redeliver it forever.
	send(slacktest.Envelope{Type: "events_api", Payload: fake.EventCallback("Ev0ODD", map[string]any{"type": "brand_new_event", "user": "U0BOB"})})
	waitFor(t, 10*time.Second, "the pin to be recorded", func() bool {
		return countKind(bot.timeline(t, 1), incident.EventMessagePinned) == 1 && bot.idle()
	})
	if n := countKind(bot.timeline(t, 1), incident.EventMessagePinned); n != 1 {
		t.Fatalf("%d pins recorded, want 1", n)
	}

	// Buttons and the declare form.
	resp := fake.NewResponseURL()
	a = send(slacktest.Envelope{Type: "interactive", Payload: fake.BlockAction("U0BOB", chID, summaries(fake, chID)[0].TS, "incident_mitigate", "INC-1", resp)})
	if len(a.Payload) != 0 {
		t.Errorf("button ack carries %s", a.Payload)
	}
	if !fake.Wait(5*time.Second, func() bool { return len(fake.Responses(resp)) == 1 }) {
		t.Fatal("no reply to the button")
	}
	a = send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true, Payload: commandPayload(bot.send, "U0ALICE", w.general, "declare sev3")})
	if len(a.Payload) != 0 || len(fake.Views()) != 1 {
		t.Fatalf("declare without title: ack %s, views %d", a.Payload, len(fake.Views()))
	}
	view := fake.Views()[0]
	if !strings.Contains(string(view.JSON), `"value":"sev3"`) {
		t.Errorf("the form does not preselect sev3: %s", view.JSON)
	}
	a = send(slacktest.Envelope{Type: "interactive", AcceptsResponsePayload: true,
		Payload: fake.ViewSubmission("U0ALICE", view, map[string]string{"title": strings.Repeat("x", 201)}, map[string]string{"severity": "sev3"})})
	if !strings.Contains(string(a.Payload), `"response_action":"errors"`) || !strings.Contains(string(a.Payload), `"title"`) {
		t.Fatalf("invalid form ack: %s", a.Payload)
	}
	good := fake.ViewSubmission("U0ALICE", view, map[string]string{"title": "Slow logins"}, map[string]string{"severity": "sev3"})
	send(slacktest.Envelope{Type: "interactive", AcceptsResponsePayload: true, Payload: good})
	send(slacktest.Envelope{Type: "interactive", AcceptsResponsePayload: true, Payload: good})
	incs, _ := bot.App.Service().List(t.Context(), incident.Filter{})
	if len(incs) != 2 || incs[1].Title != "Slow logins" {
		t.Fatalf("incidents after the form: %+v", incs)
	}

	// Slack rotates the connection: the bot reconnects and carries on.
	opened := fake.SocketConnectionsOpened()
	fake.DisconnectSockets()
	if !fake.Wait(10*time.Second, func() bool {
		return fake.SocketConnectionsOpened() > opened && fake.SocketConnections() == 1
	}) {
		t.Fatal("the bot did not reconnect")
	}
	a = send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true, Payload: commandPayload(bot.send, "U0ALICE", chID, "status")})
	if got := ackText(t, a); !strings.Contains(got, "*INC-1* SEV1, mitigated") {
		t.Fatalf("status after reconnect: %q", got)
	}
	bot.noDeadJobs(t)
}
