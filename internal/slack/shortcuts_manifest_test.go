package slack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Every shortcut in either manifest has a handler, every handler's
// shortcut is in both manifests, and every view the bot opens has a
// submission handler. Incident Bot once shipped a manifest shortcut with
// no handler behind it (incidentbot issue #660); adding a shortcut to a
// manifest without one fails here.
func TestEveryCallbackIDHasAHandler(t *testing.T) {
	for _, file := range []string{"manifest.yaml", "manifest-socket.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", file))
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		declared := map[string]bool{}
		for _, sc := range m.Features.Shortcuts {
			key := shortcutKey(sc.Type, sc.CallbackID)
			if declared[key] {
				t.Errorf("%s: shortcut %s declared twice", file, key)
			}
			declared[key] = true
			if _, ok := shortcutHandlers[key]; !ok {
				t.Errorf("%s: shortcut %q (%s) has no handler", file, sc.CallbackID, sc.Type)
			}
		}
		for key := range shortcutHandlers {
			if !declared[key] {
				t.Errorf("%s: the handler of shortcut %q is not declared, so Slack never sends it", file, key)
			}
		}
	}
	for _, s := range Shortcuts {
		if _, ok := shortcutHandlers[shortcutKey(s.Type, s.CallbackID)]; !ok {
			t.Errorf("Shortcuts lists %s %s without a handler", s.Type, s.CallbackID)
		}
	}
	if len(Shortcuts) != len(shortcutHandlers) {
		t.Errorf("%d shortcuts listed, %d handlers", len(Shortcuts), len(shortcutHandlers))
	}

	inc := &incident.Incident{Number: 7, Title: "db down", Severity: incident.SEV2, Status: incident.StatusAcknowledged}
	msg := messageRef{Channel: "C0GENERAL", TS: "1700000000.000100", Text: "db down"}
	opened := map[string]bool{}
	for _, v := range []string{
		declareView("C0GENERAL", 0).CallbackID,
		declareFromMessageView(msg).CallbackID,
		pickIncidentView(msg, []*incident.Incident{inc}).CallbackID,
		updateForm.view(inc, "C0INC").CallbackID,
		resolveForm.view(inc, "C0INC").CallbackID,
	} {
		opened[v] = true
		if _, ok := viewHandlers[v]; !ok {
			t.Errorf("view %q is opened but its submission has no handler", v)
		}
	}
	for v := range viewHandlers {
		if !opened[v] {
			t.Errorf("view handler %q: no view the bot opens has this callback id", v)
		}
	}
}

// bot doctor checks the manifest the app was created from: one from
// before the message shortcuts fails and names them; the repository's
// pass; with no manifest at hand it says what the app must declare.
func TestDoctorChecksManifests(t *testing.T) {
	dir := t.TempDir()
	current, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(current), "callback_id: add_to_timeline", "callback_id: something_else", 1)
	oldPath := filepath.Join(dir, "old.yaml")
	if err := os.WriteFile(oldPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	checks := manifestChecks([]string{oldPath, filepath.Join(dir, "absent.yaml")})
	if len(checks) != 1 || checks[0].OK || !strings.Contains(checks[0].Detail, "add_to_timeline") || strings.Contains(checks[0].Detail, "declare_from_message") || checks[0].Fix == "" {
		t.Fatalf("old manifest: %+v", checks)
	}
	for _, f := range []string{"manifest.yaml", "manifest-socket.yaml"} {
		if c := manifestChecks([]string{filepath.Join("..", "..", "deploy", "slack", f)}); len(c) != 1 || !c[0].OK {
			t.Errorf("%s: %+v", f, c)
		}
	}
	if c := manifestChecks([]string{filepath.Join(dir, "absent.yaml")}); len(c) != 1 || !c[0].OK || !strings.Contains(c[0].Detail, "add_to_timeline") {
		t.Errorf("no manifest: %+v", c)
	}
	if c := ManifestCheck("x", []byte("features: [")); c.OK {
		t.Errorf("broken manifest passed: %+v", c)
	}
}
