package runbook

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExplicitEnvironment(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("env", "/usr/bin/env")
	s["params"] = []any{}
	at(s, "limits")["concurrency_key"] = "env"
	s["env"] = map[string]any{"KUBECONFIG": "/etc/kube/config"}
	s["secrets"] = []any{map[string]any{"env": "API_TOKEN", "ref": "store/token"}}
	h.write(s)
	h.writeSecret("store/token", "tok-abcdefgh-12345\n")
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-must-not-leak")
	if _, err := h.submit(requester, chanInc, "env"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	var names []string
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		name, value, _ := strings.Cut(line, "=")
		names = append(names, name)
		vars[name] = value
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "API_TOKEN,HOME,KUBECONFIG,LANG,PATH,TMPDIR" {
		t.Fatalf("environment %v:\n%s", names, res.Output)
	}
	if vars["PATH"] != "/usr/local/bin:/usr/bin:/bin" || vars["LANG"] != "C.UTF-8" || vars["HOME"] != vars["TMPDIR"] ||
		vars["API_TOKEN"] != Redacted || vars["KUBECONFIG"] != "/etc/kube/config" {
		t.Fatalf("environment values %v", vars)
	}
}

func (h *harness) writeSecret(ref, value string) {
	h.t.Helper()
	path := filepath.Join(h.secretDir, ref)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func TestPerRunDirectoryAndStdin(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("wd", script("workdir.sh")))
	s := h.baseSpec("wd", script("workdir.sh"))
	s["params"] = []any{}
	at(s, "limits")["concurrency_key"] = "wd"
	h.write(s)
	if _, err := h.submit(requester, chanInc, "wd"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		k, v, _ := strings.Cut(l, "=")
		lines[k] = v
	}
	home := lines["home"]
	if !strings.HasPrefix(home, filepath.Join(h.tmp, "runbook-"+res.RunID)) || lines["pwd"] != home || lines["tmpdir"] != home ||
		lines["mode"] != "700" || lines["stdin"] != "/dev/null" {
		t.Fatalf("run environment %v", lines)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run directory %s not removed", home)
	}
}

func TestExitCodesAndStepOrder(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("steps", script("exit.sh"), "{{target}}")
	at(s, "params", 0)["pattern"] = "^[0-9]$"
	s["steps"] = []any{
		map[string]any{"name": "first", "argv": []any{script("exit.sh"), "{{target}}"}, "timeout": "10s"},
		map[string]any{"name": "second", "argv": []any{script("exit.sh"), "0"}, "timeout": "10s"},
	}
	s["output"] = map[string]any{"success_exit_codes": []any{0, 3}}
	h.write(s)
	if _, err := h.submit(requester, chanInc, "steps target=3"); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusSucceeded || len(res.Steps) != 2 || !strings.Contains(res.Output, "==> second") {
		t.Fatalf("result %+v", res)
	}
	if _, err := h.submit(requester, chanInc, "steps target=4"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if res.Status != StatusFailed || res.ExitCode != 4 || res.FailedStep != "first" || len(res.Steps) != 1 ||
		!strings.Contains(res.Text, "*failed*") || !strings.Contains(res.Text, "exit 4") || !strings.Contains(res.Text, "step first") {
		t.Fatalf("result %+v", res)
	}
	if ex := h.executions(); strings.Join(ex, "|") != "exit 3|exit 0|exit 4" {
		t.Fatalf("executions %q", ex)
	}
}

func TestOutputFloodIsCappedDrainedAndCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB through the output pipeline")
	}
	h := newHarness(t)
	s := h.baseSpec("flood", script("flood.sh"))
	s["params"] = []any{}
	at(s, "limits")["concurrency_key"] = "flood"
	s["output"] = map[string]any{"capture_max_bytes": "256KiB", "chat": map[string]any{"max_lines": 5, "max_chars": 1000}}
	h.write(s)
	if _, err := h.submit(requester, chanInc, "flood"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	const total = 50 << 20
	st := res.OutputStats
	if res.Status != StatusSucceeded || st.BytesRaw != total || st.BytesTotal != total {
		t.Fatalf("status %s stats %+v", res.Status, st)
	}
	kept := int64(len(res.Output)) - int64(len("\n[… "+strconv.FormatInt(st.BytesDropped, 10)+" bytes dropped …]\n"))
	if kept > 256<<10 || kept < 255<<10 || st.BytesDropped != total-kept {
		t.Fatalf("kept %d dropped %d", kept, st.BytesDropped)
	}
	if !strings.HasPrefix(res.Output, "flood line 0123456789\n") || !strings.Contains(res.Output, "bytes dropped") {
		t.Fatalf("output head %q", res.Output[:64])
	}
	if n := utf8.RuneCountInString(res.Text); n > 1000+200 || !strings.Contains(res.Text, "bytes truncated; full output stored with run "+res.RunID) {
		t.Fatalf("chat text (%d chars):\n%s", n, res.Text)
	}
}

func TestJunkOutputIsSanitised(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("junk", script("junk.sh"))
	s["params"] = []any{}
	at(s, "limits")["concurrency_key"] = "junk"
	h.write(s)
	if _, err := h.submit(requester, chanInc, "junk"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	want := "red plain \uFFFD\uFFFD nul:: bell done\nspoof gnp.exe\n"
	if res.Output != want {
		t.Fatalf("output %q, want %q", res.Output, want)
	}
}

func TestSecretsAreRedactedEverywhere(t *testing.T) {
	h := newHarness(t)
	const token = "7c9e6679-7425-40de-944b-e07fc1f90ae7" // GUID-shaped: no prefix to match
	const param = "hunter2hunter2"
	s := h.baseSpec("leak", script("secret-echo.sh"), "{{pw}}")
	s["params"] = []any{map[string]any{"name": "pw", "type": "string", "pattern": "^[a-z0-9]{8,32}$", "secret": true, "required": true}}
	s["secrets"] = []any{map[string]any{"env": "API_TOKEN", "ref": "svc/token"}}
	at(s, "limits")["concurrency_key"] = "leak"
	h.write(s)
	h.writeSecret("svc/token", token+"\n")
	if _, err := h.submit(requester, chanInc, "leak pw="+param); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	for _, where := range []string{res.Output, res.Text, h.audit.json(t), strings.Join(res.Steps[0].Argv, " ")} {
		if strings.Contains(where, token) || strings.Contains(where, param) {
			t.Fatalf("secret leaked into %q", where)
		}
	}
	for _, want := range []string{"stdout has [REDACTED] here", "stderr has [REDACTED] too", "param [[REDACTED]]"} {
		if !strings.Contains(res.Output, want) {
			t.Fatalf("output %q lacks %q", res.Output, want)
		}
	}
	if res.Steps[0].Argv[1] != masked {
		t.Fatalf("argv shown as %q", res.Steps[0].Argv)
	}
	// A missing secret fails the run before anything executes.
	ns := h.baseSpec("nosecret", script("record.sh")).with("params", []any{}).
		with("secrets", []any{map[string]any{"env": "X", "ref": "svc/missing"}})
	at(ns, "limits")["concurrency_key"] = "nosecret"
	h.write(ns)
	if _, err := h.submit(requester, chanInc, "nosecret"); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusFailed || !strings.Contains(res.Reason, "svc/missing could not be resolved") {
		t.Fatalf("result %+v", res)
	}
	if n := len(h.executions()); n != 1 {
		t.Fatalf("%d executions", n)
	}
}

func TestSecretSplitAcrossReads(t *testing.T) {
	h := newHarness(t)
	const token = "Zq8xLm2Pw9Rt4Kv7Ny3Bc6Hd1Gf5Js0A"
	s := h.baseSpec("split", script("split-secret.sh"))
	s["params"] = []any{}
	s["secrets"] = []any{map[string]any{"env": "API_TOKEN", "ref": "svc/token"}}
	at(s, "limits")["concurrency_key"] = "split"
	h.write(s)
	h.writeSecret("svc/token", token)
	if _, err := h.submit(requester, chanInc, "split"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if strings.Contains(res.Output, token[:len(token)/2]) || strings.Contains(res.Output, token[len(token)/2:]) {
		t.Fatalf("secret half leaked: %q", res.Output)
	}
	if !strings.Contains(res.Output, "token=[REDACTED] end") || !strings.Contains(res.Output, "err=[REDACTED]") {
		t.Fatalf("output %q", res.Output)
	}
}

func TestHangingProcessTimesOut(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("hang", script("hang.sh"), "{{target}}")
	at(s, "steps", 0)["timeout"] = "300ms"
	h.write(s)
	if _, err := h.submit(requester, chanInc, "hang target=a"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if res.Status != StatusTimedOut || res.ExitCode != -1 || !strings.Contains(res.Text, "*timed_out*") {
		t.Fatalf("result %+v", res)
	}
}

// A leader that ignores SIGTERM and a grandchild holding the pipe are both
// killed by SIGKILL to the group after the grace period.
func TestTermIgnoringProcessGroupIsKilled(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("stubborn", script("ignore-term.sh"), "{{target}}")
	at(s, "steps", 0)["timeout"] = "300ms"
	h.write(s)
	if _, err := h.submit(requester, chanInc, "stubborn target=a"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if res.Status != StatusTimedOut {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Output, "ignoring TERM") {
		t.Fatalf("output %q", res.Output)
	}
	assertDead(t, filepath.Join(h.tmp, "pid"))
}

// assertDead checks the process whose pid is in file is gone (or a zombie
// awaiting a reaper, which holds no resources).
func assertDead(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(data))
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(fields) == 0 || fields[0] != "Z" {
		t.Fatalf("grandchild %s still running: %s", pid, stat)
	}
}

// A grandchild that left the group keeps the pipe open; the bounded drain
// lets the run finish anyway.
func TestEscapedGrandchildCannotHoldTheRun(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("escape", script("escape-group.sh"), "{{target}}")
	h.write(s)
	t.Cleanup(func() {
		if data, err := os.ReadFile(filepath.Join(h.tmp, "pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill() // the sleep this test started
				}
			}
		}
	})
	if _, err := h.submit(requester, chanInc, "escape target=a"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if res.Status != StatusSucceeded || !strings.Contains(res.Output, "leader done") {
		t.Fatalf("result %+v", res)
	}
	// The escaped grandchild is still alive: the run ended despite it.
	data, err := os.ReadFile(filepath.Join(h.tmp, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strings.TrimSpace(string(data))); err != nil {
		t.Fatalf("grandchild did not survive the group kill, so the drain was not exercised: %v", err)
	}
}
