package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// TestHelpExitsZero: asking for help is not an error.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, code := runBot(t, nil, "", args...)
		if code != 0 || !strings.HasPrefix(out, "usage: bot") {
			t.Errorf("bot %v: exit %d\n%s", args, code, out)
		}
	}
	if _, errOut, code := runBot(t, nil, "", "--frobnicate"); code != 2 || !strings.Contains(errOut, "usage: bot") {
		t.Errorf("an unknown flag: exit %d\n%s", code, errOut)
	}
}

// TestSubcommandHelpExitsZero: `bot <command> --help` prints that
// command's usage on stdout and exits 0, as `bot --help` does.
func TestSubcommandHelpExitsZero(t *testing.T) {
	cmds := []string{"serve", "shell"}
	for name := range subcommands {
		cmds = append(cmds, name)
	}
	for _, cmd := range cmds {
		for _, h := range []string{"--help", "-h"} {
			out, errOut, code := runBot(t, nil, "", cmd, h)
			if code != 0 || !strings.HasPrefix(out, "usage: bot "+cmd) {
				t.Errorf("bot %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, h, code, out, errOut)
			}
		}
	}
	out, _, _ := runBot(t, nil, "", "followups", "--help")
	if !strings.Contains(out, "-owner") {
		t.Errorf("bot followups --help does not list its flags:\n%s", out)
	}
}

// TestShellUsesItsOwnDatabase: trying the shell on a machine configured
// for a real bot (BOT_DB set) adds nothing to that bot's database.
func TestShellUsesItsOwnDatabase(t *testing.T) {
	env := map[string]string{"BOT_DB": t.TempDir() + "/real.db", "XDG_STATE_HOME": t.TempDir()}
	_, errOut, code := runBot(t, env, "/incident declare sev2 just trying\n", "shell", "--user", "alice")
	if code != 0 || !strings.Contains(errOut, "using its own database "+env["XDG_STATE_HOME"]+"/incident-bot/shell.db") {
		t.Fatalf("shell: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(env["BOT_DB"]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the shell touched the real database: %v", err)
	}
	// The shell's own database keeps its incidents between sessions.
	out, _, _ := runBot(t, env, "/incident list all\n", "shell", "--user", "alice")
	if !strings.Contains(out, "just trying") {
		t.Fatalf("second session:\n%s", out)
	}
}

// TestListFilters: `list` in the shell and `bot incidents` take the same
// filters; a long list is paged.
func TestListFilters(t *testing.T) {
	env := map[string]string{"BOT_DB": t.TempDir() + "/bot.db"}
	script := []string{
		"/incident declare sev1 Checkout down", "/incident service add checkout", "/join general",
		"/user bob", "/incident declare sev2 Search slow", "/incident resolve INC-2", "/join general",
	}
	for i := 0; i < 22; i++ {
		script = append(script, "/incident declare sev4 noise "+string(rune('a'+i)), "/join general")
	}
	script = append(script, "/user alice", "/incident list sev1", "/incident list mine", "/incident list all service=checkout",
		"/incident list all", "/incident list all page=2", "/incident list P2", "/incident list all P2", "/incident list sev9")
	out, errOut, code := runBot(t, env, strings.Join(script, "\n")+"\n", "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"Open incidents, SEV1 (1):\n                • INC-1 SEV1 acknowledged: Checkout down",
		"Open incidents, yours (1):",
		"Incidents, service checkout (1):",
		"Incidents (24):\n                • INC-24",
		"Page 1 of 2: `list all page=2` for the next.",
		"Page 2 of 2.",
		"Open incidents, SEV2: none.",
		"Incidents, SEV2 (1):",
		"`list` does not know \"sev9\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("transcript:\n%s", out)
	}
	out, _, code = runBot(t, env, "", "incidents", "--open", "sev1")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "INC-1 ") {
		t.Errorf("bot incidents --open sev1: exit %d\n%s", code, out)
	}
	out, _, _ = runBot(t, env, "", "incidents", "service=checkout", "since=1d")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "Checkout down") {
		t.Errorf("bot incidents service=checkout since=1d:\n%s", out)
	}
	out, _, _ = runBot(t, env, "", "incidents", "page=2")
	if strings.Count(out, "\n") != 5 || !strings.Contains(out, "INC-1 ") {
		t.Errorf("bot incidents page=2 (the oldest 4):\n%s", out)
	}
	if _, errOut, code := runBot(t, env, "", "incidents", "sev9"); code != 2 || !strings.Contains(errOut, "does not know") {
		t.Errorf("bot incidents sev9: exit %d, %s", code, errOut)
	}
}

// TestDoctorReportsConfigurationProblemsAsFindings: a broken
// configuration is what `bot doctor` is for, not a usage error.
func TestDoctorReportsConfigurationProblemsAsFindings(t *testing.T) {
	out, _, code := runBot(t, map[string]string{"BOT_ADDR": "nonsense", "PAGERDUTY_SYNC_STATUS": "sometimes"}, "", "doctor")
	if code != 1 || !strings.HasPrefix(out, "Configuration\n  FAIL  ") || !strings.Contains(out, "BOT_ADDR") || !strings.Contains(out, "PAGERDUTY_SYNC_STATUS") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestDoctorChecksPagerDuty: `bot doctor` checks PagerDuty too: the token
// against the API, that a user has the From email, the webhook secret.
func TestDoctorChecksPagerDuty(t *testing.T) {
	pd := pdtest.New(t, pdtest.Config{Token: "u+pdtoken", Users: []pdtest.User{{ID: "PBOT001", Name: "Incident Bot", Email: "bot@example.com"}}})
	env := map[string]string{"PAGERDUTY_API_TOKEN": "u+pdtoken", "PAGERDUTY_FROM_EMAIL": "typo@example.com", "PAGERDUTY_API_URL": pd.URL}
	out, _, code := runBot(t, env, "", "doctor")
	for _, want := range []string{
		"\nPagerDuty\n  OK    API token (PAGERDUTY_API_TOKEN): valid",
		"\n  FAIL  From user (PAGERDUTY_FROM_EMAIL): no PagerDuty user has the email typo@example.com\n        fix: Set PAGERDUTY_FROM_EMAIL",
		"\n  FAIL  webhooks (PAGERDUTY_WEBHOOK_SECRET): not set",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bot doctor lacks %q", want)
		}
	}
	if code != 1 || t.Failed() {
		t.Fatalf("exit %d\n%s", code, out)
	}
	env["PAGERDUTY_API_TOKEN"] = "expired"
	if out, _, _ := runBot(t, env, "", "doctor"); !strings.Contains(out, "FAIL  API token (PAGERDUTY_API_TOKEN): PagerDuty rejected the token") {
		t.Errorf("a rejected token:\n%s", out)
	}
}
