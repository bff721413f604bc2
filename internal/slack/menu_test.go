package slack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// `/incident` typed alone shows a menu of buttons (not the help text, not
// a usage error), and each button does what it says: declare opens the
// form, the others answer only the person who clicked.
func TestIncidentAloneShowsTheMenu(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	general := env.fake.AddChannel("general", false, "U0ALICE", "U0BOB", env.fake.BotUserID())

	for _, text := range []string{"", "   "} {
		r, err := env.send.Command(ctx, slacktest.Command{User: "U0BOB", Channel: general, Text: text})
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("/incident %q: %v %d", text, err, r.Status)
		}
		var ack struct {
			ResponseType string           `json:"response_type"`
			Text         string           `json:"text"`
			Blocks       []map[string]any `json:"blocks"`
		}
		if err := r.JSON(&ack); err != nil {
			t.Fatalf("ack %s: %v", r.Body, err)
		}
		js := string(r.Body)
		// The text (the notification and fallback) is mrkdwn too: the
		// usage's <title> is escaped.
		if ack.ResponseType != "ephemeral" || !strings.Contains(ack.Text, "What do you want to do?") || strings.Contains(js, "Usage") || strings.Contains(ack.Text, "<title>") {
			t.Fatalf("/incident %q answered %s", text, js)
		}
		for _, id := range []string{"incident_menu_declare", "incident_menu_list", "incident_menu_mine", "incident_menu_help"} {
			if !strings.Contains(js, `"action_id":"`+id+`"`) {
				t.Errorf("the menu has no %s button: %s", id, js)
			}
		}
	}

	click := func(action string) (string, int) {
		t.Helper()
		resp := env.fake.NewResponseURL()
		r, err := env.send.Interaction(ctx, env.fake.BlockAction("U0BOB", general, "1.1", action, strings.TrimPrefix(action, slack.ActionMenuPrefix), resp))
		if err != nil || r.Status != http.StatusOK || len(r.Body) != 0 {
			t.Fatalf("click %s: %v %d %s", action, err, r.Status, r.Body)
		}
		if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(resp)) > 0 }) {
			t.Fatalf("no answer to %s", action)
		}
		got := env.fake.Responses(resp)[0]
		if got.ResponseType != "ephemeral" {
			t.Errorf("%s answered %q, want ephemeral", action, got.ResponseType)
		}
		return got.Text, len(env.fake.Responses(resp))
	}
	// Bob has no part in INC-1, alice's.
	if got, _ := click("incident_menu_list"); !strings.Contains(got, "*INC-1*") || !strings.Contains(got, "db down") {
		t.Errorf("list open: %q", got)
	}
	if got, _ := click("incident_menu_mine"); strings.Contains(got, "INC-1") || !strings.Contains(got, "yours") {
		t.Errorf("my incidents: %q", got)
	}
	if got, _ := click("incident_menu_help"); !strings.Contains(got, "`/incident` commands") {
		t.Errorf("help: %q", got)
	}

	// Declare opens the declare form with the click's trigger id; the form
	// knows the channel, to confirm the declaration there.
	r, err := env.send.Interaction(ctx, env.fake.BlockAction("U0BOB", general, "1.1", "incident_menu_declare", "declare", env.fake.NewResponseURL()))
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("declare click: %v %d", err, r.Status)
	}
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Views()) == 1 }) {
		t.Fatal("the declare form did not open")
	}
	var form struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
	}
	_ = json.Unmarshal(env.fake.Views()[0].JSON, &form)
	if form.CallbackID != slack.DeclareCallbackID || form.PrivateMetadata != general {
		t.Fatalf("form: %+v", form)
	}
	// Submitting it declares, as the form opened by `/incident declare` does.
	sub := env.fake.ViewSubmission("U0BOB", env.fake.Views()[0], map[string]string{"title": "Search is slow"}, map[string]string{"severity": "sev2"})
	if r, err := env.send.Interaction(ctx, sub); err != nil || r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Fatalf("submit: %v %d %s", err, r.Status, r.Body)
	}
	if inc, err := env.svc.Get(ctx, incident.Ref{Number: 2}); err != nil || inc.Title != "Search is slow" || inc.Commander() != "U0BOB" {
		t.Fatalf("declared from the menu: %+v %v", inc, err)
	}
	if got, _ := click("incident_menu_mine"); !strings.Contains(got, "*INC-2*") {
		t.Errorf("my incidents after declaring: %q", got)
	}
}

// The Home tab's Declare button opens the declare form (a click from a
// view: no channel, no response_url).
func TestHomeDeclareButtonOpensTheForm(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	openHome(t, env, "Ev0D1", "U0ALICE")
	view := waitHomes(t, env, "U0ALICE", 1)[0]
	click := env.fake.BlockAction("U0ALICE", "", "", slack.ActionHomeDeclare, "declare", "")
	delete(click, "channel")
	delete(click, "message")
	delete(click, "response_url")
	click["container"] = map[string]any{"type": "view", "view_id": view.ID}
	click["view"] = map[string]any{"id": view.ID, "type": "home", "hash": view.Hash}
	r, err := env.send.Interaction(ctx, click)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("click: %v %d %s", err, r.Status, r.Body)
	}
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Views()) == 1 }) {
		t.Fatal("the declare form did not open")
	}
	if !strings.Contains(string(env.fake.Views()[0].JSON), `"callback_id":"`+slack.DeclareCallbackID+`"`) {
		t.Fatalf("opened %s", env.fake.Views()[0].JSON)
	}
}
