package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// `bot doctor --manifest FILE` checks the manifest an app was created
// from: one from before the message shortcuts fails and names them.
func TestDoctorChecksTheAppManifest(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	env := map[string]string{"SLACK_BOT_TOKEN": fake.BotToken(), "SLACK_API_URL": fake.APIURL(), "SLACK_SIGNING_SECRET": "s"}
	current, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old.yaml")
	if err := os.WriteFile(old, []byte(strings.Replace(string(current), "callback_id: declare_from_message", "callback_id: declare_old", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runBot(t, env, "", "doctor", "--manifest", old)
	if code != 1 || !strings.Contains(out, "FAIL  app manifest "+old+": missing shortcuts \"Declare incident from this message\" (message, declare_from_message)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	out, _, _ = runBot(t, env, "", "doctor", "--manifest", filepath.Join("..", "..", "deploy", "slack", "manifest.yaml"))
	if !strings.Contains(out, "OK    app manifest ../../deploy/slack/manifest.yaml: declares the 3 shortcuts") {
		t.Fatalf("current manifest:\n%s", out)
	}
}
