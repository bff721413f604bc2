package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"go.yaml.in/yaml/v3"
)

// scriptDir holds the helper programs every execution test uses as
// argv[0]. They are written once in TestMain, before any process starts,
// so no test can hit ETXTBSY by exec'ing a file another goroutine's fork
// still holds open for writing.
var scriptDir string

// Helper scripts. Parameters arrive as argv elements; $MARKER (static env
// in the test runbooks) records every execution, so tests can assert that
// nothing ran, or exactly one thing did.
var scripts = map[string]string{
	"record.sh": `printf '%s\n' "$*" >> "$MARKER"
for a in "$@"; do printf 'arg=[%s]\n' "$a"; done`,
	"probe.sh": `printf 'probe %s\n' "$*" >> "$MARKER"
echo "probe ok"`,
	"hang.sh": `printf 'hang\n' >> "$MARKER"
exec sleep 1000`,
	// Ignores SIGTERM, and leaves a grandchild holding the output pipe.
	"ignore-term.sh": `trap '' TERM
printf 'ignore-term\n' >> "$MARKER"
sleep 1000 &
echo $! > "$PIDFILE"
echo "ignoring TERM"
while :; do sleep 1000; done`,
	// A grandchild that leaves the process group and keeps the pipe open.
	"escape-group.sh": `printf 'escape\n' >> "$MARKER"
setsid sh -c 'echo $$ > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; exec sleep 30' &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo "leader done"`,
	"flood.sh": `printf 'flood\n' >> "$MARKER"
yes 'flood line 0123456789' | head -c 52428800`,
	"junk.sh": `printf 'junk\n' >> "$MARKER"
printf '\033[31mred\033[0m plain \377\376 nul:\000: bell\007 \033]0;title\007done\n'
printf 'spoof \342\200\256gnp.exe\n'`,
	"secret-echo.sh": `printf 'secret-echo\n' >> "$MARKER"
echo "stdout has $API_TOKEN here"
echo "stderr has $API_TOKEN too" >&2
printf 'param [%s]\n' "$1"`,
	// Prints the secret in two halves with a pause, so the bot reads them
	// in separate chunks.
	"split-secret.sh": `printf 'split\n' >> "$MARKER"
s="$API_TOKEN"
half=$(( ${#s} / 2 ))
first=$(printf '%s' "$s" | cut -c1-$half)
rest=$(printf '%s' "$s" | cut -c$((half + 1))-)
printf 'token=%s' "$first"
sleep 0.2
printf '%s end\n' "$rest"
printf 'err=%s' "$first" >&2
sleep 0.2
printf '%s\n' "$rest" >&2`,
	"exit.sh": `printf 'exit %s\n' "$1" >> "$MARKER"
echo "exiting with $1"
exit "$1"`,
	"workdir.sh": `printf 'workdir\n' >> "$MARKER"
echo "home=$HOME"
echo "tmpdir=$TMPDIR"
echo "pwd=$(pwd)"
echo "mode=$(stat -c %a "$HOME")"
echo "stdin=$(readlink /proc/self/fd/0)"`,
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runbook-scripts-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	scriptDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func script(name string) string { return filepath.Join(scriptDir, name) }

// fakeClock is a settable Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeIncidents binds channels to incidents and holds roles.
type fakeIncidents struct {
	mu       sync.Mutex
	channels map[string]IncidentInfo
	roles    map[string][]string // userID -> roles (in any incident)
	err      error
}

func (f *fakeIncidents) IncidentForChannel(_ context.Context, ch string) (IncidentInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return IncidentInfo{}, false, f.err
	}
	inc, ok := f.channels[ch]
	return inc, ok, nil
}

func (f *fakeIncidents) Roles(_ context.Context, _, user string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.roles[user], nil
}

func (f *fakeIncidents) setRoles(user string, roles ...string) {
	f.mu.Lock()
	f.roles[user] = roles
	f.mu.Unlock()
}

// fakeGroups backs GroupMembers and counts lookups.
type fakeGroups struct {
	mu      sync.Mutex
	members map[string][]string
	err     error
	block   bool // wait for the context to end (a hanging Slack call)
	lookups int
}

func (g *fakeGroups) lookup(ctx context.Context, id string) ([]string, error) {
	g.mu.Lock()
	g.lookups++
	err, block, members := g.err, g.block, g.members[id]
	g.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return members, err
}

func (g *fakeGroups) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookups
}

// notifier records outcomes on channels.
type notifier struct {
	results chan Result
	closed  chan Closed
}

func (n *notifier) RunFinished(_ context.Context, r Result) { n.results <- r }
func (n *notifier) RequestClosed(_ context.Context, c Closed) {
	n.closed <- c
}

// auditLog records every audit event.
type auditLog struct {
	mu     sync.Mutex
	events []Event
}

func (a *auditLog) record(ev Event) {
	a.mu.Lock()
	a.events = append(a.events, ev)
	a.mu.Unlock()
}

func (a *auditLog) all() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Event(nil), a.events...)
}

func (a *auditLog) kinds() []EventKind {
	var out []EventKind
	for _, ev := range a.all() {
		out = append(out, ev.Kind)
	}
	return out
}

func (a *auditLog) has(k EventKind) bool {
	for _, ev := range a.all() {
		if ev.Kind == k {
			return true
		}
	}
	return false
}

func (a *auditLog) json(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(a.all())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Identities used across tests. UREQ is the incident commander of INC1
// (bound to CINC); UAPP is in the approvers group; UOUT has no access.
const (
	team     = "T0TEAM"
	chanInc  = "CINC"
	chanNone = "CNOINCIDENT"
	chanOld  = "CCLOSED"
)

var (
	requester = Caller{TeamID: team, UserID: "UREQ", DisplayName: "req"}
	approver  = Caller{TeamID: team, UserID: "UAPP", DisplayName: "app"}
	approver2 = Caller{TeamID: team, UserID: "UAPP2", DisplayName: "app2"}
	outsider  = Caller{TeamID: team, UserID: "UOUT", DisplayName: "out"}
	groupie   = Caller{TeamID: team, UserID: "UGRP", DisplayName: "grp"}
)

// harness is a runbooks directory, a registry and an engine wired to
// fakes, with a per-test marker file.
type harness struct {
	t         *testing.T
	dir       string
	tmp       string
	marker    string
	reg       *Registry
	eng       *Engine
	clock     *fakeClock
	incidents *fakeIncidents
	groups    *fakeGroups
	notes     *notifier
	audit     *auditLog
	secretDir string
}

type harnessOpt func(*Config)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		dir:   t.TempDir(),
		tmp:   t.TempDir(),
		clock: newFakeClock(),
		incidents: &fakeIncidents{
			channels: map[string]IncidentInfo{chanInc: {ID: "INC1", Open: true}, chanOld: {ID: "INC0", Open: false}},
			roles:    map[string][]string{"UREQ": {RoleCommander}},
		},
		groups: &fakeGroups{members: map[string][]string{
			"SREQUESTERS": {"UGRP", "UREQ"},
			"SAPPROVERS":  {"UAPP", "UAPP2", "UREQ"},
		}},
		notes: &notifier{results: make(chan Result, 64), closed: make(chan Closed, 64)},
		audit: &auditLog{},
	}
	h.marker = filepath.Join(h.tmp, "marker")
	h.secretDir = filepath.Join(h.tmp, "secrets")
	h.reg = NewRegistry(h.dir, LoadOptions{}, zaptest.NewLogger(t))
	cfg := Config{
		Registry: h.reg, TeamID: team, Incidents: h.incidents, GroupMembers: h.groups.lookup,
		Secrets: FileSecrets{Dir: h.secretDir}, Notifier: h.notes, Audit: h.audit.record,
		Logger: zaptest.NewLogger(t), Clock: h.clock, KillGrace: 100 * time.Millisecond,
		DrainTimeout: 300 * time.Millisecond, LookupTimeout: 2 * time.Second, SweepInterval: -1,
		WorkDir: h.tmp,
	}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("closing engine: %v", err)
		}
	})
	return h
}

// spec is a runbook document under construction.
type spec map[string]any

// baseSpec is a low-risk runbook running argv with one string parameter
// "target"; requesters are the commander role, group SREQUESTERS, user
// UREQ.
func (h *harness) baseSpec(id string, argv ...any) spec {
	return spec{
		"apiVersion": "incidentbot/v1", "kind": "Runbook", "id": id, "title": "Test " + id,
		"description": "test runbook", "owner": "team-test", "enabled": true, "risk": "low", "confirm": false,
		"params": []any{
			map[string]any{"name": "target", "type": "string", "pattern": "^[a-z0-9-]{1,20}$", "required": true},
		},
		"access": map[string]any{
			"requesters": map[string]any{"user_groups": []any{"SREQUESTERS"}},
		},
		"limits": map[string]any{"timeout": "30s", "max_concurrent": 1, "concurrency_key": "{{target}}"},
		"env":    map[string]any{"MARKER": h.marker, "PIDFILE": filepath.Join(h.tmp, "pid")},
		"steps":  []any{map[string]any{"name": "run", "argv": argv, "timeout": "20s"}},
	}
}

func (s spec) with(key string, v any) spec {
	s[key] = v
	return s
}

// write stores the runbook as <id>.yaml and reloads the registry.
func (h *harness) write(s spec) {
	h.t.Helper()
	data, err := yaml.Marshal(map[string]any(s))
	if err != nil {
		h.t.Fatal(err)
	}
	h.writeRaw(s["id"].(string), string(data))
}

func (h *harness) writeRaw(id, body string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, id+".yaml"), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	report, err := h.reg.Reload()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range report.Errors {
		if strings.HasSuffix(p.File, id+".yaml") {
			h.t.Fatalf("runbook %s invalid: %s", id, p)
		}
	}
}

func (h *harness) submit(c Caller, channel, text string) (*Submission, error) {
	return h.eng.Submit(context.Background(), Invocation{Caller: c, ChannelID: channel, Text: text})
}

// executions returns the lines the helper scripts appended to the marker.
func (h *harness) executions() []string {
	data, err := os.ReadFile(h.marker)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (h *harness) assertNothingRan() {
	h.t.Helper()
	if ex := h.executions(); len(ex) != 0 {
		h.t.Fatalf("expected no execution, got %q", ex)
	}
}

// result waits for the next finished run. The timeout only guards against
// a hung test; no test relies on it elapsing.
func (h *harness) result() Result {
	h.t.Helper()
	select {
	case r := <-h.notes.results:
		return r
	case <-time.After(60 * time.Second):
		h.t.Fatal("no run result")
		return Result{}
	}
}

// mustUserError asserts err is a UserError of kind and returns its message.
func mustUserError(t *testing.T, err error, kind ErrorKind) string {
	t.Helper()
	ue, ok := AsUserError(err)
	if !ok {
		t.Fatalf("expected a UserError of kind %s, got %v", kind, err)
	}
	if ue.Kind != kind {
		t.Fatalf("expected kind %s, got %s: %s", kind, ue.Kind, ue.Message)
	}
	return ue.Message
}

func (h *harness) assertExecutions(n int) {
	h.t.Helper()
	if got := len(h.executions()); got != n {
		h.t.Fatalf("%d executions, want %d", got, n)
	}
}
