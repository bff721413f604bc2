package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestFollowupsLifecycleAcrossIncidents records follow-ups in two incidents
// through `bot shell`, closes, assigns and dates them there, and lists them
// with `bot followups` and its filters.
func TestFollowupsLifecycleAcrossIncidents(t *testing.T) {
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db")}
	script := strings.Join([]string{
		"/incident declare sev2 Checkout is failing",
		"/incident followup add a canary stage",
		"/incident followup raise the pool size",
		"/incident followup assign 1 @bob",
		"/incident followup due 1 2020-01-10",
		"/incident followup done 2",
		"/incident resolve rolled back",
		"/incident followups",
		"/incident declare sev3 Search is slow",
		"/incident followup INC-2 tune the index",
		"/incident followup INC-1 reopen 2",
		"/incident followup INC-1 done 2",
		"/incident followup INC-1 done 7",
	}, "\n")
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("shell exited %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"Follow-up #1 of INC-1 assigned to @bob: add a canary stage",
		"Follow-up #1 assigned to @bob by @alice: add a canary stage", // told in the channel
		"Follow-up #2 of INC-1 marked done: raise the pool size",
		"INC-1 follow-ups (1 open of 2):",
		"#1 [open] add a canary stage · owner @bob · due 2020-01-10 (overdue)",
		"Follow-up #2 of INC-1 reopened: raise the pool size",
		"INC-1 has follow-ups #1 to #2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("shell transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("transcript:\n%s", out)
	}

	out, _, code = runBot(t, env, "", "followups")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "INCIDENT") ||
		!strings.Contains(lines[1], "INC-1     1  overdue  bob") || !strings.Contains(lines[2], "INC-1     2  done") ||
		!strings.Contains(lines[3], "INC-2     1  open") {
		t.Fatalf("bot followups: exit %d\n%s", code, out)
	}

	out, _, code = runBot(t, env, "", "followups", "--open", "--json")
	var rows []followupRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if len(rows) != 2 || rows[0].Incident != "INC-1" || rows[0].ID != 1 || !rows[0].Overdue || rows[1].Incident != "INC-2" {
		t.Fatalf("--open --json: %+v", rows)
	}
	out, _, _ = runBot(t, env, "", "followups", "--owner", "@bob")
	if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, "add a canary stage") {
		t.Fatalf("--owner @bob:\n%s", out)
	}
	out, _, _ = runBot(t, env, "", "followups", "--owner", "none", "--open")
	if !strings.Contains(out, "tune the index") || strings.Contains(out, "canary") {
		t.Fatalf("--owner none --open:\n%s", out)
	}
}
