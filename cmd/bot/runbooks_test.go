package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRunbooks writes runbooks for the tests: "touch-marker" appends a
// line to a marker file (medium risk: the requester confirms) and
// "scale-marker" does the same with high risk (a second person approves).
func writeRunbooks(t *testing.T) (dir, marker string) {
	t.Helper()
	dir = t.TempDir()
	marker = filepath.Join(t.TempDir(), "ran")
	common := `
owner: team-test
enabled: true
params:
  - name: target
    type: enum
    values: ['blue', 'green']
    required: true
access:
  requesters:
    user_groups: ['S0ONCALL']  # in the shell, every user is in every group
    incident_roles: ['commander', 'scribe']
  channels:
    incident_channels_only: true
    allow_direct_message: false
confirm: true
limits:
  timeout: 30s
env:
  MARKER: '` + marker + `'
steps:
  - name: mark
    argv: ['/bin/sh', '-c', 'echo "$0" >> "$MARKER"', '{{target}}']
    timeout: 10s
`
	files := map[string]string{
		"touch-marker.yaml": "apiVersion: incidentbot/v1\nkind: Runbook\nid: touch-marker\ntitle: Touch the marker\ndescription: test\nrisk: medium\n" + common,
		"scale-marker.yaml": "apiVersion: incidentbot/v1\nkind: Runbook\nid: scale-marker\ntitle: Scale the marker\ndescription: test\nrisk: high\n" +
			"approval:\n  approvers:\n    user_groups: ['S0LEADS']\n    incident_roles: ['commander']\n  count: 1\n  expires_after: 10m\n" + common +
			"dry_run:\n  steps:\n    - name: probe\n      argv: ['/bin/echo', 'probe', '{{target}}']\n      timeout: 5s\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, marker
}

func markerLines(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile(marker)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestRunbooksValidateCommand(t *testing.T) {
	dir, _ := writeRunbooks(t)
	out, _, code := runBot(t, nil, "", "runbooks", "validate", dir)
	if code != 0 || !strings.Contains(out, "2 runbook(s) valid") {
		t.Fatalf("valid dir: exit %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "broken.yaml")
	_ = os.WriteFile(bad, []byte("apiVersion: incidentbot/v1\nkind: Runbook\nid: broken\nsteps: []\nfrobnicate: yes\n"), 0o644)
	out, _, code = runBot(t, nil, "", "runbooks", "validate", dir)
	if code == 0 || !strings.Contains(out, "broken.yaml") || !strings.Contains(out, "frobnicate") {
		t.Fatalf("invalid file: exit %d\n%s", code, out)
	}
	// A file from before the trust model, run and approval by role alone:
	// refused, with the reason and the fix.
	_ = os.Remove(bad)
	old, err := os.ReadFile(filepath.Join(dir, "scale-marker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byRole := strings.NewReplacer("    user_groups: ['S0ONCALL']  # in the shell, every user is in every group\n", "", "    user_groups: ['S0LEADS']\n", "").Replace(string(old))
	_ = os.WriteFile(filepath.Join(dir, "scale-marker.yaml"), []byte(byRole), 0o644)
	out, _, code = runBot(t, nil, "", "runbooks", "validate", dir)
	for _, want := range []string{
		"scale-marker.yaml: access.requesters.incident_roles: incident roles alone cannot allow anyone to run a runbook: anyone can take a role in chat",
		"List who may run it in access.requesters.users (Slack user IDs) or access.requesters.user_groups",
		"scale-marker.yaml: approval.approvers.incident_roles: incident roles alone cannot allow anyone to approve a runbook",
	} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("role-only file: exit %d, output lacks %q\n%s", code, want, out)
		}
	}
	if out, _, code = runBot(t, nil, "", "runbooks", "validate", "../../runbooks"); code != 0 {
		t.Fatalf("the shipped runbooks do not validate:\n%s", out)
	}
}

// TestRunbooksInTheShell runs runbooks the way a newcomer would: the
// confirmation is answered at the prompt, the approval comes from a second
// user, refusals run nothing, and every decision is on the timeline.
func TestRunbooksInTheShell(t *testing.T) {
	dir, marker := writeRunbooks(t)
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db"), "BOT_RUNBOOKS_DIR": dir}
	script := strings.Join([]string{
		"/incident run touch-marker target=blue", // not in an incident channel
		"/incident declare sev2 Marker incident",
		"/incident runbooks",
		"/incident run touch-marker target=blue",
		"y", // confirm at the prompt: runs once
		"/incident run touch-marker target=green",
		"n", // cancelled: nothing runs
		"/incident run touch-marker target=red;rm -rf /",
		"/incident run touch-marker target=blue --dry-run=false",
		"/incident role scribe @bob",
		"/user bob",
		"/incident run scale-marker target=green",
		"y", // bob confirms; the commander must approve
	}, "\n") + "\n"
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"can only be run from the channel of an open incident",
		"touch-marker: Touch the marker (risk medium)",
		"Run it? [y/N] y",
		"of Touch the marker (touch-marker): succeeded",
		"Run it? [y/N] n",
		"Nothing was run",
		"Approval needed: Scale the marker",
		"/approve ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if got := markerLines(t, marker); strings.Join(got, ",") != "blue" {
		t.Fatalf("executions %v, want exactly one (blue)\n%s", got, out)
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", out)
	}
}

// shellSession drives an interactive `bot shell`: send a line, read what
// the bot answers up to the next prompt.
type shellSession struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
}

func startShell(t *testing.T, env map[string]string, user string) *shellSession {
	t.Helper()
	cmd := botCommand(t, env, "shell", "--db", env["BOT_DB"], "--user", user)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	s := &shellSession{t: t, in: in, out: bufio.NewReader(out)}
	s.read()
	return s
}

// read returns the output up to and including the next prompt ("#...> ")
// or question ("[y/N] ").
func (s *shellSession) read() string {
	s.t.Helper()
	var b strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, _, err := s.out.ReadRune()
			if err != nil {
				return
			}
			b.WriteRune(r)
			text := b.String()
			if strings.HasSuffix(text, "[y/N] ") {
				return
			}
			if strings.HasSuffix(text, "> ") {
				last := text[strings.LastIndex(text, "\n")+1:]
				if strings.HasPrefix(last, "#") {
					return
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("no prompt; output so far:\n%s", b.String())
	}
	return b.String()
}

func (s *shellSession) send(line string) string {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
	return s.read()
}

func TestRunbookApprovalNeedsASecondPerson(t *testing.T) {
	dir, marker := writeRunbooks(t)
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db"), "BOT_RUNBOOKS_DIR": dir}
	sh := startShell(t, env, "alice")
	sh.send("/incident declare sev1 Marker incident")
	sh.send("/incident role scribe @bob")
	sh.send("/user bob")
	sh.send("/incident run scale-marker target=green")
	out := sh.send("y")
	runID := between(out, "/approve ", "`")
	if runID == "" {
		t.Fatalf("no approval request:\n%s", out)
	}
	if out := sh.send("/approve " + runID); !strings.Contains(out, "cannot approve or deny your own request") || len(markerLines(t, marker)) != 0 {
		t.Fatalf("the requester approved his own request:\n%s", out)
	}
	sh.send("/user carol") // no role in the incident
	if out := sh.send("/approve " + runID); !strings.Contains(out, "not this incident's commander") || len(markerLines(t, marker)) != 0 {
		t.Fatalf("someone who is not an approver approved:\n%s", out)
	}
	sh.send("/user alice") // the commander
	out = sh.send("/approve " + runID)
	if !strings.Contains(out, "of Scale the marker (scale-marker): succeeded") {
		t.Fatalf("approval by the commander did not run it:\n%s", out)
	}
	if out := sh.send("/approve " + runID); strings.Contains(out, "succeeded") { // a replayed click
		t.Fatalf("a second approval ran it again:\n%s", out)
	}
	if got := markerLines(t, marker); strings.Join(got, ",") != "green" {
		t.Fatalf("executions %v, want exactly one", got)
	}
	out = sh.send("/incident timeline")
	for _, want := range []string{"@bob confirmed `scale-marker` target=`green` (run ", "@carol was refused on `scale-marker`", "@alice approved `scale-marker`",
		"@bob ran `scale-marker` target=`green` (run " + runID + "): succeeded (exit 0, "} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// TestRunbookRefusalShowsValueAndPatternInCode: a refused value and the
// pattern it broke reach the reply and the timeline exactly as typed and as
// in the file, in code spans, so mrkdwn eats none of * _ ~ (issue 11 item
// 9); a backtick, which cannot sit in a code span, shows as ˋ.
func TestRunbookRefusalShowsValueAndPatternInCode(t *testing.T) {
	dir := t.TempDir()
	const pattern = `^/[a-z]+(_[a-z]+)*~?\*?$`
	body := "apiVersion: incidentbot/v1\nkind: Runbook\nid: purge-path\ntitle: Purge a path\ndescription: test\nrisk: low\nowner: team-test\nenabled: true\n" +
		"params:\n  - name: path\n    type: string\n    pattern: '" + pattern + "'\n    required: true\n" +
		"access:\n  requesters:\n    user_groups: ['S0ONCALL']\n  channels:\n    incident_channels_only: true\n    allow_direct_message: false\n" +
		"limits:\n  timeout: 30s\nsteps:\n  - name: echo\n    argv: ['/bin/echo', '{{path}}']\n    timeout: 10s\n"
	if err := os.WriteFile(filepath.Join(dir, "purge-path.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db"), "BOT_RUNBOOKS_DIR": dir}
	script := strings.Join([]string{
		"/incident declare sev3 Stars",
		"/incident run purge-path path=/bad*x_y~z*",
		"/incident run purge-path path=/a`b*c",
		"/incident timeline",
	}, "\n") + "\n"
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rule := "must match `" + pattern + "`"
	reply1 := "• path=`\"/bad*x_y~z*\"` is invalid: " + rule
	reply2 := "• path=`\"/aˋb*c\"` is invalid: " + rule
	timeline1 := "was refused `purge-path`: Cannot run purge-path: path=`\"/bad*x_y~z*\"` is invalid: " + rule
	timeline2 := "was refused `purge-path`: Cannot run purge-path: path=`\"/aˋb*c\"` is invalid: " + rule
	for _, want := range []string{reply1, reply2, timeline1, timeline2} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", out)
	}
}
