package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// Text from outside reaches the terminal as text: what a person typed is
// cleaned when it enters (the shell), Slack-style entities are never
// printed, and a control character already in the database (written by an
// older version) is printed escaped by every command, JSON included.
func TestCLIPrintsOutsideTextSafely(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.db")
	env := map[string]string{"BOT_DB": db}
	script := "/incident declare sev2 R&D portal down\n/incident declare sev3 \x1b[2Jwiped \u202eexe.txt\x00\n/quit\n"
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("shell exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "#inc-1-r-d-portal-down") || strings.Contains(out, "amp") {
		t.Fatalf("shell transcript:\n%s", out)
	}
	assertNoRawControls(t, "shell", out)

	// A title written raw by an older version.
	store, err := boltstore.Open(db, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	legacy := "legacy \x1b]0;pwned\x07 \u202eevil\u0085 title"
	err = store.Update(context.Background(), func(tx incident.Tx) error {
		inc, err := tx.Incident(2)
		if err != nil {
			return err
		}
		inc.Title = legacy
		return tx.PutIncident(inc)
	})
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code = runBot(t, env, "", "incidents")
	if code != 0 {
		t.Fatalf("incidents exit %d: %s", code, errOut)
	}
	assertNoRawControls(t, "bot incidents", out)
	if !strings.Contains(out, "R&D portal down") || !strings.Contains(out, `legacy \u001b]0;pwned\u0007 \u202eevil\u0085 title`) || strings.Count(out, "\n") != 3 {
		t.Fatalf("bot incidents:\n%s", out)
	}

	out, errOut, code = runBot(t, env, "", "incidents", "--json")
	if code != 0 {
		t.Fatalf("incidents --json exit %d: %s", code, errOut)
	}
	assertNoRawControls(t, "bot incidents --json", out)
	if !strings.Contains(out, `"title": "R&D portal down"`) {
		t.Errorf("--json does not print R&D as it is:\n%s", out)
	}
	var incs []struct {
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(out), &incs); err != nil {
		t.Fatalf("--json is not JSON: %v\n%s", err, out)
	}
	if len(incs) != 2 || incs[0].Title != "R&D portal down" || incs[1].Title != legacy {
		t.Fatalf("--json titles: %+v", incs)
	}
}

func assertNoRawControls(t *testing.T, what, out string) {
	t.Helper()
	for _, r := range out {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || incident.IsBidiControl(r) {
			t.Fatalf("%s printed a raw %U:\n%q", what, r, out)
		}
	}
}
