package app_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Over Socket Mode, the whole bot: opening the Home tab publishes the
// person's view, `/incident` alone answers with the menu, and a menu button
// answers through the click's response_url.
func TestHomeTabAndMenuOverSocketMode(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"SLACK_APP_TOKEN": fake.AppToken(), "SLACK_SIGNING_SECRET": "",
	})
	waitFor(t, 10*time.Second, "a Socket Mode connection", func() bool { return fake.SocketConnections() == 1 })
	send := func(env slacktest.Envelope) slacktest.Ack {
		t.Helper()
		a, err := fake.SendEnvelope(env, 10*time.Second)
		if err != nil {
			t.Fatalf("%s envelope: %v", env.Type, err)
		}
		return a
	}
	a := send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true,
		Payload: commandPayload(bot.send, "U0BOB", w.general, "declare sev2 <!channel> Payments fail")})
	if got := ackText(t, a); !strings.Contains(got, "Declared *INC-1*") {
		t.Fatalf("declare ack: %s", a.Payload)
	}

	send(slacktest.Envelope{Type: "events_api", Payload: fake.AppHomeOpened("Ev0SOCKHOME", "U0ALICE", "home")})
	if !fake.Wait(10*time.Second, func() bool { return len(fake.HomeViews("U0ALICE")) == 1 }) {
		t.Fatal("no Home view published for alice")
	}
	// The view as Slack reads it: JSON's \u003c is <.
	js := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(fake.HomeViews("U0ALICE")[0].JSON))
	if !strings.Contains(js, "*INC-1* SEV2") || !strings.Contains(js, "Payments fail") || !strings.Contains(js, "Commander <@U0BOB>") {
		t.Errorf("alice's Home view: %s", js)
	}
	if strings.Contains(js, "<!channel") {
		t.Errorf("the Home view can notify a channel: %s", js)
	}

	a = send(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true, Payload: commandPayload(bot.send, "U0ALICE", w.general, "")})
	if p := string(a.Payload); !strings.Contains(p, "What do you want to do?") || !strings.Contains(p, `"action_id":"incident_menu_list"`) {
		t.Fatalf("/incident alone answered %s", p)
	}
	resp := fake.NewResponseURL()
	send(slacktest.Envelope{Type: "interactive", Payload: fake.BlockAction("U0ALICE", w.general, "1.1", "incident_menu_list", "list", resp)})
	if !fake.Wait(10*time.Second, func() bool { return len(fake.Responses(resp)) == 1 }) {
		t.Fatal("no answer to the List button")
	}
	if got := fake.Responses(resp)[0].Text; !strings.Contains(got, "*INC-1*") {
		t.Errorf("list open answered %q", got)
	}
}
