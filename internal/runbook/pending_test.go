package runbook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// sharedHarness is h plus a second engine ("another replica") on the same
// request store, runbooks and fakes.
func sharedHarness(t *testing.T) (*harness, *Engine, *memoryRequests) {
	t.Helper()
	store := &memoryRequests{reqs: map[string]StoredRequest{}}
	h := newHarness(t, func(c *Config) { c.Requests = store })
	other, err := NewEngine(Config{
		Registry: h.reg, TeamID: team, Incidents: h.incidents, GroupMembers: h.groups.lookup,
		Secrets: FileSecrets{Dir: h.secretDir}, Notifier: h.notes, Audit: h.audit.record,
		Logger: zaptest.NewLogger(t), Clock: h.clock, KillGrace: 100 * time.Millisecond,
		DrainTimeout: 300 * time.Millisecond, SweepInterval: -1, WorkDir: h.tmp, Requests: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	return h, other, store
}

// TestRequestsMoveBetweenEngines: a request made on one engine is
// confirmed on another and approved on the first; replays on either are
// refused, and it runs once.
func TestRequestsMoveBetweenEngines(t *testing.T) {
	h, other, _ := sharedHarness(t)
	h.write(h.confirmSpec("restart"))
	ctx := context.Background()
	sub, err := h.submit(requester, chanInc, "restart target=prod")
	if err != nil || sub.State != StateAwaitingConfirmation {
		t.Fatalf("submit: %+v %v", sub, err)
	}
	sub, err = other.Confirm(ctx, sub.RunID, requester)
	if err != nil || sub.State != StateAwaitingApproval || sub.Approval == nil || !strings.Contains(sub.Approval.Text(), "record.sh prod") {
		t.Fatalf("confirm on the other engine: %+v %v", sub, err)
	}
	if _, err := h.eng.Confirm(ctx, sub.RunID, requester); err == nil {
		t.Fatal("a second confirmation on the first engine was accepted")
	}
	if _, err := h.eng.Approve(ctx, sub.RunID, approver); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusSucceeded {
		t.Fatalf("result %+v", res)
	}
	msg := mustUserError(t, func() error { _, err := other.Approve(ctx, sub.RunID, approver2); return err }(), KindConflict)
	if !strings.Contains(msg, "already") {
		t.Fatalf("replayed approval on the other engine: %s", msg)
	}
	h.assertExecutions(1)
}

// TestSecretValuesStayInTheirProcess: a secret parameter's value is never
// written to the request store, so the request runs only where it was
// made; elsewhere it fails closed with a reason.
func TestSecretValuesStayInTheirProcess(t *testing.T) {
	h, other, store := sharedHarness(t)
	s := h.baseSpec("login", script("record.sh"), "{{pw}}").with("risk", "medium").with("confirm", true)
	s["params"] = []any{map[string]any{"name": "pw", "type": "string", "pattern": "^[a-z0-9]{8,32}$", "secret": true, "required": true}}
	at(s, "limits")["concurrency_key"] = "login"
	h.write(s)
	ctx := context.Background()
	here, err := h.submit(requester, chanInc, "login pw=hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := h.submit(requester, chanInc, "login pw=hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(store.reqs)
	if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "aHVudGVy") {
		t.Fatalf("a secret value reached the store: %s", raw)
	}
	msg := mustUserError(t, func() error { _, err := other.Confirm(ctx, elsewhere.RunID, requester); return err }(), KindChanged)
	if !strings.Contains(msg, "secret parameter") || !strings.Contains(msg, "Nothing was run") {
		t.Fatalf("confirming elsewhere: %s", msg)
	}
	if _, err := h.eng.Confirm(ctx, here.RunID, requester); err != nil {
		t.Fatal(err)
	}
	if res := h.result(); res.Status != StatusSucceeded {
		t.Fatalf("result %+v", res)
	}
	h.assertExecutions(1)
}

// TestExpiryIsAnnouncedOnce: two engines sweeping the same expired
// request tell the channel once.
func TestExpiryIsAnnouncedOnce(t *testing.T) {
	h, other, store := sharedHarness(t)
	h.write(h.confirmSpec("restart"))
	if _, err := h.submit(requester, chanInc, "restart target=web"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(ConfirmationTTL)
	other.Sweep()
	h.eng.Sweep()
	other.Sweep()
	if n := len(h.notes.closed); n != 1 {
		t.Fatalf("%d expiry notices, want 1", n)
	}
	if c := <-h.notes.closed; c.State != StateExpired {
		t.Fatalf("notice %+v", c)
	}
	// Ended requests are forgotten after the retention.
	h.clock.Advance(2 * time.Hour)
	h.eng.Sweep()
	if n := len(store.reqs); n != 0 {
		t.Fatalf("%d requests kept after the retention", n)
	}
}
