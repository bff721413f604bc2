package slack_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Each shortcut either manifest declares, sent as Slack sends it, opens
// its form: none is acknowledged and silently dropped.
func TestEveryManifestShortcutDoesSomething(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	general := env.fake.AddChannel("general", false, "U0ALICE", env.fake.BotUserID())
	for _, file := range []string{"manifest.yaml", "manifest-socket.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", file))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Features struct {
				Shortcuts []struct {
					Type       string `yaml:"type"`
					CallbackID string `yaml:"callback_id"`
				} `yaml:"shortcuts"`
			} `yaml:"features"`
		}
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Features.Shortcuts) == 0 {
			t.Fatalf("%s declares no shortcuts", file)
		}
		for _, sc := range m.Features.Shortcuts {
			before := len(env.fake.Views())
			payload := env.fake.GlobalShortcut("U0ALICE", sc.CallbackID)
			if sc.Type == "message" {
				ts := env.fake.UserPost(general, "U0ALICE", "checkout is down")
				payload = env.fake.MessageShortcut("U0ALICE", sc.CallbackID, general, ts)
			}
			r, err := env.send.Interaction(ctx, payload)
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("%s %s: %v %d", file, sc.CallbackID, err, r.Status)
			}
			if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Views()) > before }) {
				t.Errorf("%s: shortcut %s (%s) opened nothing", file, sc.CallbackID, sc.Type)
			}
		}
	}
}

// The message's address is chat.getPermalink's; when Slack cannot give
// it the address is built from the workspace domain, in the same form.
// With no open incident the picker is not opened: the person is told.
func TestShortcutFallbacks(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	general := env.fake.AddChannel("general", false, "U0ALICE", env.fake.BotUserID())
	ts := env.fake.UserPost(general, "U0ALICE", "checkout is down")
	env.fake.FailNext("chat.getPermalink", 1, slacktest.ServerError())
	if _, err := env.send.Interaction(ctx, env.fake.MessageShortcut("U0ALICE", slack.DeclareFromMessageCallbackID, general, ts)); err != nil {
		t.Fatal(err)
	}
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Views()) == 1 }) {
		t.Fatal("no form")
	}
	want := "https://test.slack.com/archives/" + general + "/p" + strings.Replace(ts, ".", "", 1)
	if v := string(env.fake.Views()[0].JSON); !strings.Contains(v, want) {
		t.Fatalf("built link %s missing: %s", want, v)
	}

	if _, err := env.svc.Resolve(ctx, incident.Ref{Number: 1}, incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}, "fixed"); err != nil {
		t.Fatal(err)
	}
	p := env.fake.MessageShortcut("U0ALICE", slack.AddToTimelineCallbackID, general, ts)
	if _, err := env.send.Interaction(ctx, p); err != nil {
		t.Fatal(err)
	}
	url := p["response_url"].(string)
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(url)) == 1 }) {
		t.Fatal("no answer")
	}
	if got := env.fake.Responses(url)[0].Text; !strings.Contains(got, "no open incident") || len(env.fake.Views()) != 1 {
		t.Fatalf("answer %q, %d views", got, len(env.fake.Views()))
	}
}
