package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestHandoverInTheShellAndFromTheDatabase: `/incident handover` in `bot
// shell` posts the handover in the current channel (typos get the usual
// help), and `bot handover` prints the same shift from the database file in
// plain text.
func TestHandoverInTheShellAndFromTheDatabase(t *testing.T) {
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db")}
	script := strings.Join([]string{
		"/incident declare sev1 Checkout is failing",
		"/incident followup add a canary stage",
		"/incident followup due 1 tomorrow",
		"/join general",
		"/incident declare sev3 Search is slow",
		"/incident resolve index rebuilt",
		"/join general",
		"/incident handovr",
		"/incident handover please",
		"/incident handover",
	}, "\n")
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("shell exited %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"Did you mean `handover`?",
		"`handover` takes no text",
		"[#general] bot: On-call handover for the shift ",
		"Opened 2 · resolved 1 · still open 1 · pages and escalations 0 · failed runbook runs 0",
		"• INC-1 SEV1 acknowledged: Checkout is failing #inc-1-checkout-is-failing, IC @alice, open",
		"• INC-2 SEV3: Search is slow #inc-2-search-is-slow, IC @alice, resolved ",
		"• INC-1 #1 add a canary stage · no owner · due ",
		"Handover posted.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("shell transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("transcript:\n%s", out)
	}

	out, errOut, code = runBot(t, env, "", "handover")
	if code != 0 || !strings.HasPrefix(out, "On-call handover for the shift ") || !strings.Contains(out, "(UTC)\nOpened 2 · resolved 1 · still open 1") ||
		!strings.Contains(out, "IC @alice") || strings.Contains(out, "<@") {
		t.Fatalf("bot handover: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runBot(t, env, "", "handover", "now"); code != exitConfig || !strings.Contains(errOut, `unexpected argument "now"`) {
		t.Errorf("bot handover now: exit %d, %s", code, errOut)
	}
}
