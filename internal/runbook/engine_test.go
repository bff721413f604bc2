package runbook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLowRiskRunsImmediatelyOnce(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "--target={{target}}", "{{incident.id}}", "{{requester.id}}", "{{incident.channel}}"))
	sub, err := h.submit(requester, chanInc, "echo target=web-1")
	if err != nil {
		t.Fatal(err)
	}
	if sub.State != StateRunning || sub.Card != nil || len(sub.RunID) != 26 {
		t.Fatalf("submission %+v", sub)
	}
	res := h.result()
	if res.Status != StatusSucceeded || res.ExitCode != 0 || res.RunID != sub.RunID {
		t.Fatalf("result %+v", res)
	}
	if got := h.executions(); len(got) != 1 || got[0] != "--target=web-1 INC1 UREQ CINC" {
		t.Fatalf("executions %q", got)
	}
	if !strings.Contains(res.Output, "arg=[--target=web-1]") || !strings.Contains(res.Text, "*succeeded*") || !strings.Contains(res.Text, "```") {
		t.Fatalf("output %q text %q", res.Output, res.Text)
	}
	kinds := h.audit.kinds()
	want := []EventKind{EventRequestReceived, EventStarted, EventStepFinished, EventFinished}
	if len(kinds) != len(want) {
		t.Fatalf("audit %v", kinds)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("audit %v, want %v", kinds, want)
		}
	}
	fin := h.audit.all()[3]
	if fin.RunbookVersion == "" || fin.Output == nil || fin.Output.SHA256 == "" || *fin.ExitCode != 0 || fin.Status != StatusSucceeded || fin.IncidentID != "INC1" {
		t.Fatalf("finished event %+v", fin)
	}
}

// Every refusal path: the requester gets a clear message and nothing
// executes.
func TestRefusalsExecuteNothing(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	h.write(h.baseSpec("off", script("record.sh"), "{{target}}").with("enabled", false))
	h.write(h.baseSpec("nowhere", "/nonexistent/prog", "{{target}}"))
	if err := os.WriteFile(filepath.Join(h.dir, "broken.yaml"), []byte("apiVersion: incidentbot/v1\nkind: Runbook\nid: broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reg.Reload(); err != nil {
		t.Fatal(err)
	}
	h.write(h.baseSpec("permissive", script("record.sh"), "{{target}}").with("params", []any{
		map[string]any{"name": "target", "type": "string", "pattern": "^[!-~]{1,300}$", "max_length": 300, "required": true},
	}))
	cases := []struct {
		name    string
		caller  Caller
		channel string
		text    string
		kind    ErrorKind
		want    string
	}{
		{"shell metachar", requester, chanInc, "echo target=web;reboot", KindInvalid, "must match"},
		{"substitution", requester, chanInc, "echo target=$(id)", KindInvalid, "must match"},
		{"flag injection", requester, chanInc, "permissive target=--exec=/bin/sh", KindInvalid, "must not start with"},
		{"unknown param", requester, chanInc, "echo target=a extra=1", KindInvalid, "unknown parameter"},
		{"duplicate param", requester, chanInc, "echo target=a target=b", KindInvalid, "more than once"},
		{"reserved param", requester, chanInc, "echo target=a requester.id=UBOSS", KindInvalid, "filled in by the bot"},
		{"garbled dry run", requester, chanInc, "echo target=a \u2014dry-run", KindInvalid, "not a recognised option"},
		{"dry run false", requester, chanInc, "echo target=a --dry-run=false", KindInvalid, "takes no value"},
		{"too many tokens", requester, chanInc, "echo" + strings.Repeat(" a=b", 16), KindInvalid, "too many words"},
		{"traversal", requester, chanInc, "../echo target=a", KindUnknown, "Unknown runbook `\"../echo\"`"},
		{"path", requester, chanInc, "x/echo target=a", KindUnknown, "Unknown runbook"},
		{"absolute", requester, chanInc, "/usr/bin/id", KindUnknown, "Unknown runbook"},
		{"uppercase", requester, chanInc, "ECHO target=a", KindUnknown, "Unknown runbook"},
		{"lookalike name", requester, chanInc, "\u0435cho target=a", KindUnknown, "\\u0435cho"},
		{"empty", requester, chanInc, "   ", KindInvalid, "Which runbook?"},
		{"disabled", requester, chanInc, "off target=a", KindDisabled, "is disabled"},
		{"invalid file", requester, chanInc, "broken target=a", KindUnknown, "failed validation"},
		{"unavailable", requester, chanInc, "nowhere target=a", KindUnavailable, "cannot run on this host"},
		{"no access", outsider, chanInc, "echo target=a", KindDenied, "not among the people allowed to run it"},
		{"wrong channel", requester, chanNone, "echo target=a", KindDenied, "open incident"},
		{"closed incident", requester, chanOld, "echo target=a", KindDenied, "open incident"},
		{"direct message", requester, "D0DM", "echo target=a", KindDenied, "direct message"},
		{"other workspace", Caller{TeamID: "T0OTHER", UserID: "UREQ"}, chanInc, "echo target=a", KindDenied, "members of this workspace"},
		{"guest", Caller{TeamID: team, UserID: "UREQ", IsGuest: true}, chanInc, "echo target=a", KindDenied, "guest"},
		{"bot", Caller{TeamID: team, UserID: "UREQ", IsBot: true}, chanInc, "echo target=a", KindDenied, "bots"},
		{"display name is not identity", Caller{TeamID: team, UserID: "UREQ2", DisplayName: "req"}, chanInc, "echo target=a", KindDenied, "not among the people allowed to run it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.clock.Advance(time.Minute) // a fresh rate-limit window per case
			before := len(h.audit.all())
			sub, err := h.submit(tc.caller, tc.channel, tc.text)
			if err == nil {
				t.Fatalf("accepted: %+v", sub)
			}
			msg := mustUserError(t, err, tc.kind)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Nothing was run") {
				t.Fatalf("message %q lacks %q", msg, tc.want)
			}
			h.assertNothingRan()
			evs := h.audit.all()[before:]
			if len(evs) != 2 || evs[0].Kind != EventRequestReceived || (evs[1].Kind != EventValidationFailed && evs[1].Kind != EventAuthzDenied) {
				t.Fatalf("audit %+v", evs)
			}
		})
	}
	h.clock.Advance(time.Minute)
	// A permissive pattern lets metacharacters through as one literal argv
	// element: they reach the program and nothing else.
	pwned := filepath.Join(h.tmp, "pwned")
	value := "$(touch${IFS}" + pwned + ");`touch${IFS}" + pwned + "`|touch&&touch"
	if _, err := h.submit(requester, chanInc, "permissive target="+value); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	if res.Status != StatusSucceeded || !strings.Contains(res.Output, "arg=["+value+"]") {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a shell interpreted the value")
	}
	h.assertExecutions(1)
}

// Every grammar and value rejection, replayed through the engine against a
// runbook whose program records executions: all refused, nothing runs.
func TestGrammarRejectsExecuteNothing(t *testing.T) {
	h := newHarness(t)
	doc := strings.Replace(demoRunbook, "'/bin/echo'", "'"+script("record.sh")+"'", 1)
	doc = strings.Replace(doc, "steps:\n", "env:\n  MARKER: "+h.marker+"\nsteps:\n", 1)
	h.writeRaw("demo", doc)
	for _, tc := range grammarRejects {
		h.clock.Advance(time.Minute) // a fresh rate-limit window
		_, err := h.submit(requester, chanInc, tc.text)
		msg := mustUserError(t, err, KindInvalid)
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Nothing was run") {
			t.Errorf("%s: message %q", tc.name, msg)
		}
		h.assertNothingRan()
	}
	// The same runbook does run with a valid request, exactly once.
	h.clock.Advance(time.Minute)
	if _, err := h.submit(requester, chanInc, "demo context=prod-eu deployment=api site=static since=90s"); err != nil {
		t.Fatal(err)
	}
	res := h.result()
	want := "--context=prod-eu --site=E2BBBBBBBBBBBB deployment/api --replicas=3 --since=1m30s --msg=hello"
	if ex := h.executions(); len(ex) != 1 || ex[0] != want || res.Status != StatusSucceeded {
		t.Fatalf("executions %q, result %+v", ex, res)
	}
}

func TestUserGroupLookup(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LookupTimeout = 50 * time.Millisecond })
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	// Granted by group membership, cached for 60 s.
	if _, err := h.submit(groupie, chanInc, "echo target=a"); err != nil {
		t.Fatal(err)
	}
	h.result()
	if _, err := h.submit(groupie, chanInc, "echo target=b"); err != nil {
		t.Fatal(err)
	}
	h.result()
	if n := h.groups.count(); n != 1 {
		t.Fatalf("%d lookups, want 1 (cached)", n)
	}
	h.clock.Advance(61 * time.Second)
	h.groups.mu.Lock()
	h.groups.err = errors.New("slack: ratelimited")
	h.groups.mu.Unlock()
	_, err := h.submit(groupie, chanInc, "echo target=c")
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "could not check user-group membership") {
		t.Fatalf("message %q", msg)
	}
	// A lookup that hangs is denied when its deadline passes.
	h.groups.mu.Lock()
	h.groups.err, h.groups.block = nil, true
	h.groups.mu.Unlock()
	_, err = h.submit(groupie, chanInc, "echo target=d")
	mustUserError(t, err, KindDenied)
	// An incident lookup failure also denies, even for the commander.
	h.incidents.mu.Lock()
	h.incidents.err = errors.New("store down")
	h.incidents.mu.Unlock()
	_, err = h.submit(requester, chanInc, "echo target=e")
	mustUserError(t, err, KindDenied)
	if n := len(h.executions()); n != 2 {
		t.Fatalf("%d executions, want 2", n)
	}
}

// confirmSpec needs confirmation; approval when target is "prod".
func (h *harness) confirmSpec(id string) spec {
	return h.baseSpec(id, script("record.sh"), "{{target}}").with("risk", "medium").with("confirm", true).
		with("approval", map[string]any{
			"required_when": []any{map[string]any{"param": "target", "in": []any{"prod"}}},
			"approvers":     map[string]any{"user_groups": []any{"SAPPROVERS"}},
			"count":         1,
			"expires_after": "10m",
		})
}

func TestConfirmationFlow(t *testing.T) {
	h := newHarness(t)
	h.write(h.confirmSpec("restart"))
	sub, err := h.submit(requester, chanInc, "restart target=web")
	if err != nil {
		t.Fatal(err)
	}
	if sub.State != StateAwaitingConfirmation || sub.Card == nil {
		t.Fatalf("submission %+v", sub)
	}
	card := sub.Card.Text()
	if !strings.Contains(card, "*Confirm: Test restart*") || !strings.Contains(card, "1. run: "+script("record.sh")+" web") || !strings.Contains(card, "target=web") {
		t.Fatalf("card %s", card)
	}
	h.assertNothingRan()
	// Someone else cannot confirm.
	_, err = h.eng.Confirm(context.Background(), sub.RunID, outsider)
	mustUserError(t, err, KindDenied)
	// Double clicks and duplicate events: exactly one confirmation wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else {
				mustUserError(t, err, KindConflict)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d confirmations succeeded", wins)
	}
	res := h.result()
	if res.Status != StatusSucceeded {
		t.Fatalf("result %+v", res)
	}
	// A replayed button payload after the run does nothing.
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	if msg := mustUserError(t, err, KindConflict); !strings.Contains(msg, "already finished") {
		t.Fatalf("replay message %q", msg)
	}
	h.assertExecutions(1)
	if !h.audit.has(EventConfirmRequested) || !h.audit.has(EventConfirmed) {
		t.Fatalf("audit %v", h.audit.kinds())
	}
}

func TestConfirmationExpires(t *testing.T) {
	h := newHarness(t)
	h.write(h.confirmSpec("restart"))
	sub, err := h.submit(requester, chanInc, "restart target=web")
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(ConfirmationTTL)
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	if msg := mustUserError(t, err, KindExpired); !strings.Contains(msg, "expired before it was confirmed") {
		t.Fatalf("message %q", msg)
	}
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	mustUserError(t, err, KindConflict)
	h.assertNothingRan()
	if !h.audit.has(EventExpired) {
		t.Fatalf("audit %v", h.audit.kinds())
	}
	// The sweeper expires untouched requests and tells the adapter.
	sub, err = h.submit(requester, chanInc, "restart target=api")
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(ConfirmationTTL - time.Second)
	h.eng.Sweep()
	if len(h.notes.closed) != 0 {
		t.Fatal("expired early")
	}
	h.clock.Advance(time.Second)
	h.eng.Sweep()
	closed := <-h.notes.closed
	if closed.RunID != sub.RunID || closed.State != StateExpired {
		t.Fatalf("closed %+v", closed)
	}
	h.assertNothingRan()
}

func TestApprovalFlow(t *testing.T) {
	h := newHarness(t)
	h.write(h.confirmSpec("restart"))
	sub, err := h.submit(requester, chanInc, "restart target=prod")
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Card.NeedsApproval {
		t.Fatal("card does not announce approval")
	}
	sub, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	if err != nil {
		t.Fatal(err)
	}
	if sub.State != StateAwaitingApproval || sub.Approval == nil {
		t.Fatalf("submission %+v", sub)
	}
	text := sub.Approval.Text()
	if !strings.Contains(text, "Can approve: members of <!subteam^SAPPROVERS|@SAPPROVERS> (not <@UREQ>)") || !strings.Contains(text, "Requested by <@UREQ>") {
		t.Fatalf("approval text %s", text)
	}
	// The requester is in SAPPROVERS, yet cannot approve.
	_, err = h.eng.Approve(context.Background(), sub.RunID, requester)
	if msg := mustUserError(t, err, KindDenied); !strings.Contains(msg, "your own request") {
		t.Fatalf("message %q", msg)
	}
	// Not an approver: refused, request stays pending.
	_, err = h.eng.Approve(context.Background(), sub.RunID, outsider)
	mustUserError(t, err, KindDenied)
	h.assertNothingRan()
	// Double clicks by eligible approvers run it once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for _, c := range []Caller{approver, approver, approver2, approver} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.eng.Approve(context.Background(), sub.RunID, c); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d approvals started a run", wins)
	}
	if res := h.result(); res.Status != StatusSucceeded {
		t.Fatalf("result %+v", res)
	}
	// Replayed approve and deny payloads do nothing.
	for _, c := range []Caller{approver, approver2} {
		_, err = h.eng.Approve(context.Background(), sub.RunID, c)
		mustUserError(t, err, KindConflict)
		_, err = h.eng.Deny(context.Background(), sub.RunID, c)
		mustUserError(t, err, KindConflict)
	}
	h.assertExecutions(1)
	var approved Event
	for _, ev := range h.audit.all() {
		if ev.Kind == EventApproved {
			approved = ev
		}
	}
	if approved.Actor.UserID == "UREQ" || approved.RequestHash == "" || len(approved.Approvers) != 1 {
		t.Fatalf("approved event %+v", approved)
	}
}

func TestApprovalNeedsDistinctApproversAndCanBeDenied(t *testing.T) {
	h := newHarness(t)
	s := h.confirmSpec("restart")
	at(s, "approval")["count"] = 2
	delete(at(s, "approval"), "required_when")
	h.write(s)
	start := func() string {
		sub, err := h.submit(requester, chanInc, "restart target=web")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
			t.Fatal(err)
		}
		return sub.RunID
	}
	id := start()
	sub, err := h.eng.Approve(context.Background(), id, approver)
	if err != nil || sub.State != StateAwaitingApproval || len(sub.Approval.ApprovedBy) != 1 {
		t.Fatalf("first approval: %+v %v", sub, err)
	}
	_, err = h.eng.Approve(context.Background(), id, approver)
	mustUserError(t, err, KindConflict)
	h.assertNothingRan()
	if _, err := h.eng.Approve(context.Background(), id, approver2); err != nil {
		t.Fatal(err)
	}
	h.result()
	// Deny by an eligible approver ends the request.
	id = start()
	_, err = h.eng.Deny(context.Background(), id, outsider)
	mustUserError(t, err, KindDenied)
	sub, err = h.eng.Deny(context.Background(), id, approver)
	if err != nil || sub.State != StateDenied {
		t.Fatalf("deny: %+v %v", sub, err)
	}
	_, err = h.eng.Approve(context.Background(), id, approver2)
	mustUserError(t, err, KindConflict)
	h.assertExecutions(1)
	if !h.audit.has(EventDenied) {
		t.Fatal("deny not audited")
	}
}

func TestApprovalExpires(t *testing.T) {
	h := newHarness(t)
	h.write(h.confirmSpec("restart"))
	sub, _ := h.submit(requester, chanInc, "restart target=prod")
	if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Minute)
	_, err := h.eng.Approve(context.Background(), sub.RunID, approver)
	if msg := mustUserError(t, err, KindExpired); !strings.Contains(msg, "before it was approved") {
		t.Fatalf("message %q", msg)
	}
	h.assertNothingRan()
}

func TestVersionChangeAbortsBeforeExec(t *testing.T) {
	h := newHarness(t)
	s := h.confirmSpec("restart")
	h.write(s)
	sub, err := h.submit(requester, chanInc, "restart target=web")
	if err != nil {
		t.Fatal(err)
	}
	s["description"] = "edited while the request waited"
	h.write(s)
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	if msg := mustUserError(t, err, KindChanged); !strings.Contains(msg, "changed or removed") {
		t.Fatalf("message %q", msg)
	}
	// Removed between approval request and approval.
	sub, _ = h.submit(requester, chanInc, "restart target=prod")
	if _, err := h.eng.Confirm(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(h.dir, "restart.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reg.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Approve(context.Background(), sub.RunID, approver)
	mustUserError(t, err, KindChanged)
	h.assertNothingRan()
}

func TestRoleLostBeforeExecDenies(t *testing.T) {
	h := newHarness(t)
	s := h.confirmSpec("restart")
	at(s, "access", "requesters")["incident_roles"] = []any{"commander"}
	h.write(s)
	sub, _ := h.submit(requester, chanInc, "restart target=web")
	h.incidents.setRoles("UREQ") // handed over command
	_, err := h.eng.Confirm(context.Background(), sub.RunID, requester)
	mustUserError(t, err, KindDenied)
	h.assertNothingRan()
	if !h.audit.has(EventAuthzDenied) {
		t.Fatal("not audited")
	}
}

func TestCancelPending(t *testing.T) {
	h := newHarness(t)
	h.write(h.confirmSpec("restart"))
	sub, _ := h.submit(requester, chanInc, "restart target=web")
	_, err := h.eng.Cancel(context.Background(), sub.RunID, outsider)
	mustUserError(t, err, KindDenied)
	if _, err := h.eng.Cancel(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Confirm(context.Background(), sub.RunID, requester)
	mustUserError(t, err, KindConflict)
	h.assertNothingRan()
}

func TestDryRun(t *testing.T) {
	h := newHarness(t)
	s := h.confirmSpec("restart").with("dry_run", map[string]any{
		"steps": []any{map[string]any{"name": "probe", "argv": []any{script("probe.sh"), "{{target}}"}, "timeout": "10s"}},
	})
	h.write(s)
	sub, err := h.submit(requester, chanInc, "restart target=prod --dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if sub.State != StateRunning || !sub.DryRun || sub.Card != nil {
		t.Fatalf("dry run needed confirmation: %+v", sub)
	}
	res := h.result()
	if !res.DryRun || res.Status != StatusSucceeded || len(res.Planned) != 1 || res.Planned[0].Argv[1] != "prod" {
		t.Fatalf("result %+v", res)
	}
	if ex := h.executions(); len(ex) != 1 || ex[0] != "probe prod" {
		t.Fatalf("dry run executed %q, want only the probe", ex)
	}
	if !strings.Contains(res.Text, "Would run") || !strings.Contains(res.Text, "probe ok") {
		t.Fatalf("text %s", res.Text)
	}
	var started Event
	for _, ev := range h.audit.all() {
		if ev.Kind == EventStarted {
			started = ev
		}
	}
	if !started.DryRun {
		t.Fatal("dry run not audited as dry_run")
	}
	// An unavailable runbook can still be dry-run: plan shown, probes skipped.
	h.write(h.baseSpec("nowhere", "/nonexistent/prog", "{{target}}").with("dry_run", map[string]any{
		"steps": []any{map[string]any{"name": "probe", "argv": []any{"/nonexistent/probe"}, "timeout": "10s"}},
	}))
	if _, err := h.submit(requester, chanInc, "nowhere target=a --dry-run"); err != nil {
		t.Fatal(err)
	}
	res = h.result()
	if res.Planned[0].Argv[0] != "/nonexistent/prog" || res.Steps[0].Skipped == "" || !strings.Contains(res.Output, "probe skipped") {
		t.Fatalf("result %+v", res)
	}
	h.assertExecutions(1)
}

func TestRateLimitPerUser(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	// Five typos and five dry runs do not lock the commander out: only
	// what runs (or waits for someone) counts against the 10 per minute.
	for i := range 10 {
		text := "nope"
		if i%2 == 0 {
			text = "echo target=a --dry-run"
		}
		_, err := h.submit(requester, chanInc, text)
		if i%2 == 1 {
			mustUserError(t, err, KindUnknown)
		} else if err != nil {
			t.Fatal(err)
		} else {
			h.result()
		}
	}
	for _, tgt := range []string{"a", "b", "c", "d", "e"} {
		if _, err := h.submit(requester, chanInc, "echo target="+tgt); err != nil {
			t.Fatal(err)
		}
		h.result()
	}
	_, err := h.submit(requester, chanInc, "echo target=f")
	if msg := mustUserError(t, err, KindRateLimited); !strings.Contains(msg, "at most 10 per minute") {
		t.Fatalf("message %q", msg)
	}
	// Another user is unaffected.
	if _, err := h.submit(groupie, chanInc, "echo target=b --dry-run"); err != nil {
		t.Fatal(err)
	}
	h.result()
	h.clock.Advance(61 * time.Second)
	if _, err := h.submit(requester, chanInc, "echo target=a"); err != nil {
		t.Fatal(err)
	}
	h.result()
	h.assertExecutions(6)

	// Refusals have their own, generous limit: probing stays bounded.
	h.clock.Advance(61 * time.Second)
	for range 60 {
		_, err := h.submit(outsider, chanInc, "echo target=a")
		mustUserError(t, err, KindDenied)
	}
	_, err = h.submit(outsider, chanInc, "echo target=a")
	if msg := mustUserError(t, err, KindRateLimited); !strings.Contains(msg, "Too many refused runbook requests: at most 60 per minute") {
		t.Fatalf("message %q", msg)
	}
	h.assertExecutions(6)
}

func TestConcurrencyKeyLockAndMaxConcurrent(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("hang", script("hang.sh"), "{{target}}"))
	if _, err := h.submit(requester, chanInc, "hang target=a"); err != nil {
		t.Fatal(err)
	}
	_, err := h.submit(requester, chanInc, "hang target=a")
	if msg := mustUserError(t, err, KindBusy); !strings.Contains(msg, "already running for a") {
		t.Fatalf("message %q", msg)
	}
	// A different key is free; a dry run ignores the lock.
	if _, err := h.submit(requester, chanInc, "hang target=b"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.submit(requester, chanInc, "hang target=a --dry-run"); err != nil {
		t.Fatal(err)
	}
	if r := h.result(); !r.DryRun {
		t.Fatalf("expected the dry run to finish first: %+v", r)
	}
	// max_concurrent 2 on one key.
	s := h.baseSpec("hang2", script("hang.sh"), "{{target}}")
	at(s, "limits")["max_concurrent"] = 2
	at(s, "limits")["concurrency_key"] = "shared"
	h.write(s)
	for _, tgt := range []string{"x", "y"} {
		if _, err := h.submit(groupie, chanInc, "hang2 target="+tgt); err != nil {
			t.Fatal(err)
		}
	}
	_, err = h.submit(groupie, chanInc, "hang2 target=z")
	mustUserError(t, err, KindBusy)
	// Shutdown stops every run: SIGTERM to the group, results delivered.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if r := h.result(); r.Status != StatusCanceled {
			t.Fatalf("status %s", r.Status)
		}
	}
	_, err = h.submit(requester, chanInc, "hang target=c")
	mustUserError(t, err, KindShuttingDown)
}

func TestGlobalCap(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Caps.MaxConcurrentRuns = 1 })
	h.write(h.baseSpec("hang", script("hang.sh"), "{{target}}"))
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	sub, err := h.submit(requester, chanInc, "hang target=a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.submit(requester, chanInc, "echo target=b")
	if msg := mustUserError(t, err, KindBusy); !strings.Contains(msg, "already running 1 runbooks") {
		t.Fatalf("message %q", msg)
	}
	// Cancel the hanging run: the slot frees.
	if _, err := h.eng.Cancel(context.Background(), sub.RunID, requester); err != nil {
		t.Fatal(err)
	}
	if r := h.result(); r.Status != StatusCanceled || r.FailedStep != "run" {
		t.Fatalf("result %+v", r)
	}
	if _, err := h.submit(requester, chanInc, "echo target=b"); err != nil {
		t.Fatal(err)
	}
	h.result()
	// The canceled script may or may not have reached its first line.
	if ex := h.executions(); len(ex) == 0 || ex[len(ex)-1] != "b" || strings.Count(strings.Join(ex, "\n"), "b") != 1 {
		t.Fatalf("executions %q", ex)
	}
}

func TestCooldown(t *testing.T) {
	h := newHarness(t)
	s := h.baseSpec("exit", script("exit.sh"), "{{target}}")
	at(s, "limits")["cooldown"] = "1m"
	at(s, "params", 0)["pattern"] = "^[0-9]$"
	h.write(s)
	// A failed run starts no cooldown.
	if _, err := h.submit(requester, chanInc, "exit target=1"); err != nil {
		t.Fatal(err)
	}
	if r := h.result(); r.Status != StatusFailed {
		t.Fatalf("status %s", r.Status)
	}
	if _, err := h.submit(requester, chanInc, "exit target=0"); err != nil {
		t.Fatal(err)
	}
	if r := h.result(); r.Status != StatusSucceeded {
		t.Fatalf("status %s", r.Status)
	}
	_, err := h.submit(requester, chanInc, "exit target=0")
	if msg := mustUserError(t, err, KindBusy); !strings.Contains(msg, "cooldown") {
		t.Fatalf("message %q", msg)
	}
	h.clock.Advance(time.Minute)
	if _, err := h.submit(requester, chanInc, "exit target=0"); err != nil {
		t.Fatal(err)
	}
	h.result()
	h.assertExecutions(3)
}

func TestRunbooksListsWhatCallerMayRun(t *testing.T) {
	h := newHarness(t)
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	h.write(h.baseSpec("off", script("record.sh"), "{{target}}").with("enabled", false))
	only := h.baseSpec("lead", script("record.sh"), "{{target}}")
	only["access"] = map[string]any{"requesters": map[string]any{"users": []any{"UAPP"}}}
	h.write(only)
	ids := func(rbs []*Runbook) string {
		var out []string
		for _, rb := range rbs {
			out = append(out, rb.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(h.eng.Runbooks(context.Background(), Invocation{Caller: requester, ChannelID: chanInc})); got != "echo" {
		t.Fatalf("requester sees %s", got)
	}
	if got := ids(h.eng.Runbooks(context.Background(), Invocation{Caller: approver, ChannelID: chanInc})); got != "lead" {
		t.Fatalf("approver sees %s", got)
	}
	if got := ids(h.eng.Runbooks(context.Background(), Invocation{Caller: requester, ChannelID: chanNone})); got != "" {
		t.Fatalf("outside an incident: %s", got)
	}
	text := ListText(h.eng.Runbooks(context.Background(), Invocation{Caller: requester, ChannelID: chanInc}))
	if !strings.Contains(text, "*echo*: Test echo (risk low)") || !strings.Contains(text, "Usage: `/incident run echo target=TARGET [--dry-run]`") {
		t.Fatalf("list text %s", text)
	}
}

func TestKillSwitchAndConfig(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DisableAll = true })
	h.write(h.baseSpec("echo", script("record.sh"), "{{target}}"))
	_, err := h.submit(requester, chanInc, "echo target=a")
	mustUserError(t, err, KindDisabled)
	h.assertNothingRan()
	for _, cfg := range []Config{{}, {Registry: h.reg}, {Registry: h.reg, TeamID: team}} {
		if _, err := NewEngine(cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

func TestRunIDs(t *testing.T) {
	now := newFakeClock().Now()
	seen := map[string]bool{}
	for range 1000 {
		id := newRunID(now)
		if len(id) != 26 || seen[id] || strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("bad or repeated run id %q", id)
		}
		seen[id] = true
	}
	if a, b := newRunID(now), newRunID(now.Add(time.Millisecond)); a[:10] >= b[:10] {
		t.Fatalf("run ids do not sort by time: %s %s", a, b)
	}
}
