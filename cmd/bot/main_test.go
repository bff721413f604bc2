package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run the real binary: a child process started with
// BOT_TEST_RUN_MAIN=1 runs main with its arguments instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("BOT_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// botCommand returns a command running `bot args...` in a child process with
// a clean bot environment plus env.
func botCommand(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"BOT_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func runBot(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := botCommand(t, env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestShellScriptedSessionSurvivesRestart(t *testing.T) {
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db")}
	script := strings.Join([]string{
		"/incident declare sev2 Checkout is failing",
		"/incident note error rate at 40% since 03:10",
		"/incident sev 1",
		"/incident role comms @bob",
		"/incident update We are rolling back the 03:05 deploy",
		"/incident mitigate rollback finished",
		"/incident resolve error rate back to normal",
		"/incident list",
		"/incident frobnicate",
		"/incident ack",
		"/join general",
		"/incident resolve",
		"/incident list all",
	}, "\n")
	out, errOut, code := runBot(t, env, script, "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("shell exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"#general> /incident declare sev2 Checkout is failing",
		"Declared INC-1 (SEV2): Checkout is failing",
		"[#inc-1-checkout-is-failing] bot: invited @alice",
		"[#incidents] bot: New incident INC-1 SEV2: Checkout is failing, in #inc-1-checkout-is-failing",
		"(you are now in #inc-1-checkout-is-failing)",
		"#inc-1-checkout-is-failing> /incident note error rate at 40% since 03:10",
		"[#inc-1-checkout-is-failing] bot: Note from @alice: error rate at 40% since 03:10",
		"changed the severity from SEV2 to SEV1",
		"@bob is now the comms of INC-1",
		"[#inc-1-checkout-is-failing] bot: invited @bob",
		"Status update from @alice: We are rolling back the 03:05 deploy",
		"changed the status from acknowledged to mitigated: rollback finished",
		"changed the status from mitigated to resolved: error rate back to normal",
		"No open incidents.",
		"I don't know the command `frobnicate`",
		"INC-1 is resolved, so it cannot be acknowledged. Reopen it first with `reopen INC-1`.",
		"#general> /incident resolve",
		"This channel is not an incident channel",
		"INC-1 SEV1 resolved: Checkout is failing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", out)
		return
	}

	// A new shell on the same database sees everything that was recorded.
	out, _, code = runBot(t, env, "/incident timeline INC-1\n/incident status INC-1\n/incident declare second one\n", "shell", "--db", env["BOT_DB"], "--user", "alice")
	if code != 0 {
		t.Fatalf("second shell exited %d", code)
	}
	for _, want := range []string{
		"declared INC-1 SEV2: Checkout is failing",
		"Note from @alice: error rate at 40% since 03:10",
		"changed the severity from SEV2 to SEV1",
		"made @bob the comms",
		"Status update from @alice",
		"to mitigated: rollback finished",
		"to resolved: error rate back to normal",
		"Roles: commander @alice; comms @bob; scribe none;",
		"Declared INC-2", // numbers continue, never reused
	} {
		if !strings.Contains(out, want) {
			t.Errorf("after restart, transcript lacks %q\n%s", want, out)
		}
	}
}

func TestConfigProblemsAreReportedAtOnce(t *testing.T) {
	env := map[string]string{
		"BOT_DB":               t.TempDir() + "/bot.db",
		"BOT_ADDR":             "not-an-address",
		"BOT_TIMEZONE":         "Mars/Olympus",
		"BOT_LOG_FORMAT":       "xml",
		"SLACK_BOT_TOKEN":      "xoxp-a-user-token-not-a-bot",
		"PAGERDUTY_API_TOKEN":  "u+supersecretvalue",
		"SLACK_SIGNING_SECRET": "s3cr3t-signing",
		"PAGERDUTY_EVENTS_URL": "ftp://example.com",
	}
	_, errOut, code := runBot(t, env, "", "serve")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (configuration)", code)
	}
	for _, want := range []string{"BOT_ADDR", "BOT_TIMEZONE", "BOT_LOG_FORMAT", "SLACK_BOT_TOKEN must be a bot token", "PAGERDUTY_FROM_EMAIL", "PAGERDUTY_EVENTS_URL"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, secret := range []string{"xoxp-a-user-token-not-a-bot", "supersecretvalue", "s3cr3t-signing"} {
		if strings.Contains(errOut, secret) {
			t.Errorf("a secret leaked into the error output: %s", errOut)
		}
	}
}

// TestServeLifecycle boots `bot serve` on a free port, checks the probes,
// reads the store through the running bot, and stops it with SIGTERM.
func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BOT_DB": filepath.Join(dir, "bot.db"), "BOT_ADDR": "127.0.0.1:0", "BOT_LOG_LEVEL": "info"}

	// An incident recorded before the server starts.
	if _, _, code := runBot(t, env, "/incident declare sev3 something broke\n", "shell", "--db", env["BOT_DB"]); code != 0 {
		t.Fatal("shell failed")
	}

	cmd := botCommand(t, env, "serve")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	logs := make(chan string, 100)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logs <- line
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Addr
			}
		}
		close(logs)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(20 * time.Second):
		t.Fatal("bot serve did not start")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" {
			for _, want := range []string{`incidentbot_incidents_open{severity="SEV3"} 1`, "incidentbot_jobs_pending ", "incidentbot_jobs_due ", "incidentbot_jobs_oldest_due_age_seconds "} {
				if !strings.Contains(string(body), want) {
					t.Errorf("metrics lack %q", want)
				}
			}
		}
	}

	// The database is held by serve: read commands go through it, and the
	// shell fails at once with a clear message instead of hanging.
	out, errOut, code := runBot(t, env, "", "incidents", "--json")
	if code != 0 || !strings.Contains(out, `"title": "something broke"`) {
		t.Fatalf("incidents while serving: exit %d\n%s\n%s", code, out, errOut)
	}
	backup := filepath.Join(dir, "backup.db")
	out, errOut, code = runBot(t, env, "", "backup", backup)
	if code != 0 || !strings.Contains(out, "1 incidents") {
		t.Fatalf("hot backup while serving: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runBot(t, env, "", "check"); code != 0 || !strings.Contains(out, "is consistent") {
		t.Fatalf("check while serving: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code = runBot(t, env, "", "restore", backup); code == 0 || !strings.Contains(errOut, "locked") {
		t.Fatalf("restore while serving must refuse: exit %d %s", code, errOut)
	}
	began := time.Now()
	_, errOut, code = runBot(t, env, "", "shell", "--db", env["BOT_DB"])
	if code == 0 || !strings.Contains(errOut, "locked by another process") {
		t.Fatalf("shell on a held database: exit %d, %s", code, errOut)
	}
	if time.Since(began) > 15*time.Second {
		t.Fatalf("shell waited %s on the lock", time.Since(began))
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	var sawStopped bool
	for l := range logs {
		sawStopped = sawStopped || strings.Contains(l, `"msg":"stopped"`)
	}
	if !sawStopped {
		t.Error("no orderly shutdown logged")
	}
	// The database is closed and consistent: a new shell opens it.
	out, _, code = runBot(t, env, "/incident list\n/incident declare sev4 after the backup\n", "shell", "--db", env["BOT_DB"])
	if code != 0 || !strings.Contains(out, "INC-1 SEV3 acknowledged: something broke") {
		t.Fatalf("after shutdown: exit %d\n%s", code, out)
	}
	// Restoring the backup brings back the state it was taken in.
	if out, errOut, code = runBot(t, env, "", "restore", backup); code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = runBot(t, env, "", "incidents")
	if !strings.Contains(out, "something broke") || strings.Contains(out, "after the backup") {
		t.Fatalf("after restore:\n%s", out)
	}
}

// TestEveryCommandIsDocumented keeps the README in step with the
// subcommands: their names are part of the public interface.
func TestEveryCommandIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"serve", "shell", "version"}
	for name := range subcommands {
		names = append(names, name)
	}
	for _, name := range names {
		if !strings.Contains(string(raw), "`bot "+name) {
			t.Errorf("README.md does not document `bot %s`", name)
		}
		if !strings.Contains(usage, "  "+name) {
			t.Errorf("bot's usage text does not list %s", name)
		}
	}
}
