package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// StoredRequest is a request as a RequestStore keeps it while it waits for
// a confirmation or approvals, and for Config.Retention after it left those
// states (so a late click is told what happened). Body is the engine's own
// record; the other fields are for whoever lists waiting requests.
type StoredRequest struct {
	ID          string
	RunbookID   string
	State       State
	RequesterID string
	ChannelID   string
	IncidentID  string
	Created     time.Time
	Deadline    time.Time // of the awaiting state
	Ended       time.Time // when it left the awaiting states; zero while it waits
	Rev         int64
	Body        []byte
}

// RequestStore keeps the requests that wait for someone, so that a restart
// does not cancel them and a click can land on any process sharing the
// store (the replicas of the bot). Swap must be atomic across all of them:
// it is the compare-and-set that makes a request confirmed, approved,
// denied or expired exactly once.
type RequestStore interface {
	// Load returns request id; ok is false when it is unknown.
	Load(ctx context.Context, id string) (r *StoredRequest, ok bool, err error)
	// Swap writes r if the stored request's revision is still r.Rev (0:
	// it does not exist yet) and sets r.Rev to the new revision. It
	// reports false, writing nothing, when someone changed it meanwhile.
	Swap(ctx context.Context, r *StoredRequest) (bool, error)
	// List returns every stored request.
	List(ctx context.Context) ([]StoredRequest, error)
	// Delete forgets request id.
	Delete(ctx context.Context, id string) error
}

// memoryRequests is the RequestStore of an engine configured without one:
// requests live as long as the process.
type memoryRequests struct {
	mu   sync.Mutex
	reqs map[string]StoredRequest
}

func (m *memoryRequests) Load(_ context.Context, id string) (*StoredRequest, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.reqs[id]
	return &r, ok, nil
}

func (m *memoryRequests) Swap(_ context.Context, r *StoredRequest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reqs[r.ID].Rev != r.Rev {
		return false, nil
	}
	r.Rev++
	m.reqs[r.ID] = *r
	return true, nil
}

func (m *memoryRequests) List(context.Context) ([]StoredRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.reqs)), nil
}

func (m *memoryRequests) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.reqs, id)
	return nil
}

// storedBody is the engine's record of a request. Secret parameter values
// are never written: only the process that took the request holds them.
type storedBody struct {
	Version   string           `json:"version"`
	Caller    Caller           `json:"caller"`
	IsDM      bool             `json:"is_dm,omitempty"`
	Incident  IncidentInfo     `json:"incident"`
	Params    []Value          `json:"params"`
	Secret    bool             `json:"secret,omitempty"` // a secret value was left out
	Hash      string           `json:"hash"`
	DryRun    bool             `json:"dry_run,omitempty"`
	Approval  bool             `json:"approval,omitempty"`
	Approvals []storedApproval `json:"approvals,omitempty"`
}

type storedApproval struct {
	By   Caller    `json:"by"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
}

func waitingState(s State) bool {
	return s == StateAwaitingConfirmation || s == StateAwaitingApproval
}

// record is req as stored. Callers hold e.mu.
func (req *request) record() (*StoredRequest, error) {
	b := storedBody{
		Version: req.rb.Version, Caller: req.caller, IsDM: req.isDM, Incident: req.incident,
		Hash: req.hash, DryRun: req.dryRun, Approval: req.approval,
	}
	for _, v := range req.params {
		if v.Secret {
			v.Label, v.Value, b.Secret = "", "", true
		}
		b.Params = append(b.Params, v)
	}
	for _, a := range req.approvals {
		b.Approvals = append(b.Approvals, storedApproval{By: a.by, Hash: a.hash, At: a.at})
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding run %s: %w", req.id, err)
	}
	return &StoredRequest{
		ID: req.id, RunbookID: req.rb.ID, State: req.state, RequesterID: req.caller.UserID,
		ChannelID: req.channelID, IncidentID: req.incident.ID, Created: req.created,
		Deadline: req.deadline, Ended: req.leftAt, Rev: req.rev, Body: body,
	}, nil
}

// decode rebuilds a request another process (or this one before a
// restart) stored. A request that cannot run here any more gets its reason
// in stale: its runbook changed or is gone, or its secret values stayed
// with the process that took it.
func (e *Engine) decode(r *StoredRequest) (*request, error) {
	var b storedBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return nil, fmt.Errorf("decoding run %s: %w", r.ID, err)
	}
	req := &request{
		id: r.ID, caller: b.Caller, channelID: r.ChannelID, isDM: b.IsDM, incident: b.Incident,
		params: b.Params, hash: b.Hash, dryRun: b.DryRun, approval: b.Approval, created: r.Created,
		persist: true,
	}
	req.refresh(r)
	rb, ok := e.cfg.Registry.Lookup(r.RunbookID)
	switch {
	case !ok || rb.Version != b.Version:
		req.rb = &Runbook{ID: r.RunbookID, Version: b.Version, Title: r.RunbookID, Approval: &Approval{Count: 1}}
		req.stale = "Runbook " + r.RunbookID + " was changed or removed after run " + r.ID +
			" was requested. Nothing was run; request it again to use the current version."
	case b.Secret:
		req.rb = rb
		req.stale = "Run " + r.ID + " has a secret parameter. The bot never writes secret values to its store, so only the process " +
			"that took the request can run it, and that one has restarted (or is another replica). Nothing was run; request it again."
	default:
		req.rb = rb
	}
	return req, nil
}

// refresh takes the stored request's state. Callers hold e.mu (or own req).
func (req *request) refresh(r *StoredRequest) {
	req.state, req.deadline, req.leftAt, req.rev = r.State, r.Deadline, r.Ended, r.Rev
	var b storedBody
	if json.Unmarshal(r.Body, &b) == nil {
		req.approvals = req.approvals[:0:0]
		for _, a := range b.Approvals {
			req.approvals = append(req.approvals, approvalRecord{by: a.By, hash: a.Hash, at: a.At})
		}
	}
	if !waitingState(r.State) && req.endedAt.IsZero() && r.State != StateStarting && r.State != StateRunning {
		req.endedAt = r.Ended
	}
}

// errStore is an internal failure to reach the request store.
func errStore(err error) error { return fmt.Errorf("runbook requests store: %w", err) }

// fetch returns request runID with its current state, from the store (the
// truth when several processes share it) and this process's own copy (the
// secret values and a running process). A request met for the first time
// is prepared: its steps rendered for the approval text and the run.
func (e *Engine) fetch(ctx context.Context, runID string) (*request, error) {
	unknown := userError(KindUnknown, "Run "+echo(runID)+" is unknown or no longer pending. Nothing was run.")
	if !runIDShape.MatchString(runID) {
		return nil, unknown
	}
	rec, ok, err := e.requests.Load(ctx, runID)
	if err != nil {
		return nil, errStore(err)
	}
	e.mu.Lock()
	req := e.reqs[runID]
	switch {
	case req != nil && ok && rec.Rev > req.rev:
		req.refresh(rec)
	case req == nil && !ok:
		e.mu.Unlock()
		return nil, unknown
	}
	e.mu.Unlock()
	if req != nil {
		return req, nil
	}
	req, err = e.decode(rec)
	if err != nil {
		return nil, err
	}
	if req.stale == "" {
		targets, ue := e.resolveTargets(ctx, req.rb, req.params)
		switch {
		case ue != nil:
			req.stale = ue.Message
		case req.render(targets) != nil:
			req.stale = "Run " + req.id + " could not be prepared again. Nothing was run; request it again."
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if have := e.reqs[runID]; have != nil { // another click got here first
		return have, nil
	}
	e.reqs[runID] = req
	return req, nil
}

// runIDShape is what newRunID makes.
var runIDShape = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

// transition applies change to req and, for a stored request, writes it
// with a compare-and-set on the revision this process last saw. It
// reports false, changing nothing, when another click or process moved
// the request first; then fetch shows what happened.
func (e *Engine) transition(ctx context.Context, req *request, change func(r *request, now time.Time)) (bool, error) {
	now := e.clock.Now()
	e.mu.Lock()
	next := *req
	next.approvals = slices.Clone(req.approvals)
	change(&next, now)
	if next.waiting() {
		next.leftAt = time.Time{}
	} else if req.waiting() || next.leftAt.IsZero() {
		next.leftAt = now
	}
	if !req.persist {
		req.take(&next)
		e.mu.Unlock()
		return true, nil
	}
	rec, err := next.record()
	e.mu.Unlock()
	if err != nil {
		return false, err
	}
	ok, err := e.requests.Swap(ctx, rec)
	if err != nil || !ok {
		return false, errStoreOrNil(err)
	}
	e.mu.Lock()
	if req.rev == next.rev { // nobody refreshed it with a later revision meanwhile
		next.rev = rec.Rev
		req.take(&next)
	}
	e.mu.Unlock()
	return true, nil
}

// take copies the fields a transition changes (the others are set once
// and read without the lock).
func (req *request) take(n *request) {
	req.state, req.deadline, req.approvals = n.state, n.deadline, n.approvals
	req.cancel, req.endedAt, req.leftAt, req.rev = n.cancel, n.endedAt, n.leftAt, n.rev
}

func errStoreOrNil(err error) error {
	if err == nil {
		return nil
	}
	return errStore(err)
}

// maxSwapAttempts bounds the retries of a click that keeps losing the
// compare-and-set to other clicks on the same request (approvers clicking
// at once): each loss means someone else's change landed.
const maxSwapAttempts = 8

// pending returns runID in state want, ready for a click. A request past
// its deadline is marked expired by whoever sees it first (expired
// reports that it was this call), one that cannot run here any more is
// aborted, one in another state is a conflict.
func (e *Engine) pending(ctx context.Context, runID string, want State) (req *request, expired bool, err error) {
	for range maxSwapAttempts {
		req, err = e.fetch(ctx, runID)
		if err != nil {
			return nil, false, err
		}
		now := e.clock.Now()
		e.mu.Lock()
		state, deadline, stale, what := req.state, req.deadline, req.stale, req.pendingWhat()
		e.mu.Unlock()
		switch {
		case state != want:
			return req, false, userError(KindConflict, "Run "+req.id+" is already "+describeState(state)+"; this click was ignored.")
		case !now.Before(deadline):
			ok, err := e.transition(ctx, req, func(r *request, now time.Time) { r.end(StateExpired, now) })
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
			return req, true, userError(KindExpired, "Run "+req.id+" expired before it was "+what+". Nothing was run; request it again.")
		case stale != "":
			ok, err := e.transition(ctx, req, func(r *request, now time.Time) { r.end(StateAborted, now) })
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
			return req, false, userError(KindChanged, stale)
		}
		return req, false, nil
	}
	return nil, false, fmt.Errorf("run %s: too many concurrent changes", runID)
}

// act runs one click on runID: it finds the request in state want, lets
// check refuse it, and applies change with a compare-and-set, again from
// the start when another click or process changed the request meanwhile.
// Refusals are audited for c.
func (e *Engine) act(ctx context.Context, runID string, c Caller, want State, check func(*request) *UserError, change func(*request, time.Time)) (*request, error) {
	for range maxSwapAttempts {
		req, expired, err := e.pending(ctx, runID, want)
		ue, err := refusal(err)
		if err != nil {
			return nil, err
		}
		if ue == nil {
			e.mu.Lock()
			ue = check(req)
			e.mu.Unlock()
		}
		if ue != nil {
			e.auditRefusal(req, c, ue, expired)
			return nil, ue
		}
		ok, err := e.transition(ctx, req, change)
		if err != nil {
			return nil, err
		}
		if ok {
			return req, nil
		}
	}
	return nil, fmt.Errorf("run %s: too many concurrent changes", runID)
}

// refusal splits err into the refusal to show (a *UserError) and any
// other, internal error.
func refusal(err error) (*UserError, error) {
	if ue, ok := AsUserError(err); ok {
		return ue, nil
	}
	return nil, err
}

// sweepStored expires the stored requests past their deadline (telling the
// channel once, from whichever process wins the compare-and-set) and
// forgets those that ended more than Retention ago.
func (e *Engine) sweepStored(ctx context.Context, now time.Time) {
	recs, err := e.requests.List(ctx)
	if err != nil {
		e.log.Warn("listing runbook requests", zap.Error(err))
		return
	}
	for i := range recs {
		rec := &recs[i]
		switch {
		case waitingState(rec.State) && !now.Before(rec.Deadline):
			req, err := e.known(rec)
			if err != nil {
				e.log.Warn("expiring a runbook request", zap.Error(err))
				continue
			}
			e.mu.Lock()
			reason := "Run " + req.id + " expired before it was " + req.pendingWhat() + ". Nothing was run."
			e.mu.Unlock()
			ok, err := e.transition(ctx, req, func(r *request, now time.Time) { r.end(StateExpired, now) })
			if err != nil {
				e.log.Warn("expiring a runbook request", zap.Error(err))
			}
			if ok {
				e.closeNotice(req, EventExpired, StateExpired, reason)
			}
		case !waitingState(rec.State) && !rec.Ended.IsZero() && now.Sub(rec.Ended) > e.cfg.Retention:
			if err := e.requests.Delete(ctx, rec.ID); err != nil {
				e.log.Warn("forgetting a runbook request", zap.Error(err))
			}
		}
	}
}

// known is this process's copy of a stored request, refreshed, or the
// request decoded (not prepared: it is only being expired or dropped).
func (e *Engine) known(rec *StoredRequest) (*request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if req := e.reqs[rec.ID]; req != nil {
		if rec.Rev > req.rev {
			req.refresh(rec)
		}
		return req, nil
	}
	req, err := e.decode(rec)
	if err != nil {
		return nil, err
	}
	e.reqs[rec.ID] = req
	return req, nil
}
