package slacktest_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// views.publish answers as Slack does: a user id and a home view are
// required, 100 blocks at most, unique action ids, a hash must be the
// current one, and an app without a Home tab gets not_enabled.
func TestViewsPublishValidates(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	section := `{"type":"section","text":{"type":"mrkdwn","text":"hi"}}`
	view := func(typ string, blocks ...string) string {
		return `{"type":"` + typ + `","blocks":[` + strings.Join(blocks, ",") + `]}`
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = section
	}
	button := func(id string) string {
		return `{"type":"actions","elements":[{"type":"button","action_id":"` + id + `","text":{"type":"plain_text","text":"Go"}}]}`
	}
	for _, tc := range []struct {
		name, user, view, hash, want string
	}{
		{"no user", "", view("home", section), "", "invalid_arguments"},
		{"a modal", "U0ALICE", view("modal", section), "", "invalid_arguments"},
		{"101 blocks", "U0ALICE", view("home", many...), "", "invalid_arguments"},
		{"duplicate action ids", "U0ALICE", view("home", button("a"), button("a")), "", "invalid_arguments"},
		{"too large", "U0ALICE", view("home", `{"type":"section","text":{"type":"mrkdwn","text":"`+strings.Repeat("x", 260_000)+`"}}`), "", "view_too_large"},
		{"stale hash", "U0ALICE", view("home", section), "123.4", "hash_conflict"},
		{"ok", "U0ALICE", view("home", section, button("a"), button("b")), "", ""},
	} {
		form := url.Values{"view": {tc.view}}
		if tc.user != "" {
			form.Set("user_id", tc.user)
		}
		if tc.hash != "" {
			form.Set("hash", tc.hash)
		}
		if _, _, got := post(t, fake, "views.publish", form); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
	views := fake.HomeViews("U0ALICE")
	if len(views) != 1 || len(views[0].Blocks()) != 3 {
		t.Fatalf("published: %+v", views)
	}
	// The current hash is accepted; the event carries the current view.
	if _, _, got := post(t, fake, "views.publish", url.Values{"user_id": {"U0ALICE"}, "view": {view("home", section)}, "hash": {views[0].Hash}}); got != "" {
		t.Errorf("current hash: %q", got)
	}
	ev := fake.AppHomeOpened("Ev1", "U0ALICE", "home")
	raw, _ := json.Marshal(ev)
	var env struct {
		Type  string `json:"type"`
		Event struct {
			Type, User, Tab string
			View            struct{ ID, Type string }
		} `json:"event"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Type != "event_callback" || env.Event.Type != "app_home_opened" ||
		env.Event.Tab != "home" || env.Event.View.ID != views[0].ID || env.Event.View.Type != "home" {
		t.Fatalf("app_home_opened: %s", raw)
	}

	off := slacktest.NewServer(slacktest.Config{HomeTabDisabled: true})
	defer off.Close()
	if _, _, got := post(t, off, "views.publish", url.Values{"user_id": {"U0ALICE"}, "view": {view("home", section)}}); got != "not_enabled" {
		t.Errorf("home tab off: %q", got)
	}
}
