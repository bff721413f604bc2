package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pmSession records an incident through `bot shell` on a fresh database
// and returns the environment that points at it.
func pmSession(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"BOT_DB": filepath.Join(dir, "bot.db"), "BOT_TEMPLATES_DIR": filepath.Join(dir, "templates")}
	script := strings.Join([]string{
		"/incident declare sev2 Checkout is failing",
		"/incident note the deploy was human error",
		"/incident followup add a canary stage",
		"/incident resolve rolled back",
		"/incident postmortem",
	}, "\n")
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 || !strings.Contains(out, "----- file INC-1-postmortem-v1.md") {
		t.Fatalf("shell exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	return env
}

func TestPostmortemCommand(t *testing.T) {
	env := pmSession(t)
	out, errOut, code := runBot(t, env, "", "postmortem", "INC-1")
	if code != 0 || !strings.HasPrefix(out, "# Postmortem INC-1: Checkout is failing") || errOut != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"preview (not stored)", "- [ ] #1 add a canary stage", "**human error**", "draft version 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("draft lacks %q", want)
		}
	}

	file := filepath.Join(t.TempDir(), "pm.md")
	out, _, code = runBot(t, env, "", "postmortem", "-o", file, "INC-1")
	written, err := os.ReadFile(file)
	if code != 0 || err != nil || !strings.HasPrefix(string(written), "# Postmortem INC-1:") || !strings.Contains(out, "wrote the postmortem draft of INC-1 to "+file) {
		t.Errorf("-o: exit %d, %q, %v", code, out, err)
	}

	// A custom template that does not parse: the built-in one, a warning.
	if err := os.MkdirAll(env["BOT_TEMPLATES_DIR"], 0o755); err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(env["BOT_TEMPLATES_DIR"], "postmortem.md.tmpl")
	if err := os.WriteFile(custom, []byte("# {{.ID}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runBot(t, env, "", "postmortem", "INC-1")
	if code != 0 || !strings.HasPrefix(out, "# Postmortem INC-1:") || !strings.Contains(errOut, "warning: the custom template failed") || !strings.Contains(errOut, custom+", line 1") {
		t.Errorf("broken template: exit %d\nstderr: %s", code, errOut)
	}
}

func TestPostmortemCommandErrors(t *testing.T) {
	env := pmSession(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"postmortem"}, exitConfig, "usage: bot postmortem INC-n [-o FILE]"},
		{[]string{"postmortem", "7"}, exitConfig, `"7" is not an incident id like INC-7`},
		{[]string{"postmortem", "INC-1", "INC-2"}, exitConfig, "usage:"},
		{[]string{"postmortem", "INC-1", "--bogus"}, exitConfig, "flag provided but not defined: -bogus"},
		{[]string{"postmortem", "INC-9"}, exitFail, "bot postmortem: INC-9 does not exist."},
	}
	for _, tt := range tests {
		out, errOut, code := runBot(t, env, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("bot %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

func TestDigestCommand(t *testing.T) {
	env := pmSession(t)
	now := time.Now().UTC()
	from, to := now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, 1).Format("2006-01-02")
	out, errOut, code := runBot(t, env, "", "digest", "--from", from, "--to", to)
	if code != 0 || !strings.HasPrefix(out, "# Incident digest "+from+" to "+to) || errOut != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "**1 opened · 1 resolved · 0 still open.**") || !strings.Contains(out, "- [ ] **INC-1** #1 add a canary stage") {
		t.Errorf("digest:\n%s", out)
	}
	// --chart writes the PNG of the 12 weeks to the period's end.
	chart := filepath.Join(t.TempDir(), "chart.png")
	out, errOut, code = runBot(t, env, "", "digest", "--from", from, "--to", to, "--chart", chart)
	png, err := os.ReadFile(chart)
	if code != 0 || err != nil || !strings.HasPrefix(string(png), "\x89PNG\r\n") || len(png) < 10_000 || !strings.Contains(errOut, "wrote the chart of 12 weeks") || !strings.HasPrefix(out, "# Incident digest") {
		t.Errorf("--chart: exit %d, %d bytes, %v\n%s", code, len(png), err, errOut)
	}
	// The default is last week; a week can be named.
	for _, args := range [][]string{{"digest"}, {"digest", "--week", "2026-W47"}} {
		if out, _, code := runBot(t, env, "", args...); code != 0 || !strings.HasPrefix(out, "# Incident digest 20") {
			t.Errorf("bot %v: exit %d, %.60q", args, code, out)
		}
	}
}

func TestDigestCommandErrors(t *testing.T) {
	env := pmSession(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"digest", "--week", "2026-W60"}, exitConfig, `2026 has weeks 1 to 53, so "2026-W60" does not exist.`},
		{[]string{"digest", "--week", "last"}, exitConfig, `"last" is not an ISO week`},
		{[]string{"digest", "--week", "2026-W47", "--to", "2026-11-01"}, exitConfig, "Use either --week or --from and --to, not both."},
		{[]string{"digest", "--from", "2026-11-01"}, exitConfig, "--from and --to go together"},
		{[]string{"digest", "--from", "2026-11-07", "--to", "2026-11-01"}, exitConfig, "--to 2026-11-01 is before --from 2026-11-07."},
		{[]string{"digest", "--from", "Nov 1", "--to", "2026-11-07"}, exitConfig, `--from "Nov 1" is not a date like 2026-11-01.`},
		{[]string{"digest", "2026-W47"}, exitConfig, `unexpected argument "2026-W47"`},
		{[]string{"digest", "--post"}, exitFail, "posting needs the running bot (`bot serve`)"},
	}
	for _, tt := range tests {
		out, errOut, code := runBot(t, env, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("bot %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}
