package runbook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Invocation is one "/incident run" as received from chat.
type Invocation struct {
	Caller    Caller
	ChannelID string
	// IsDM marks a direct message with the bot. Channel IDs starting with
	// "D" are treated as DMs whatever this says.
	IsDM bool
	// Text is everything after "/incident run " exactly as Slack sent it
	// (still Slack-encoded).
	Text string
}

func (inv Invocation) isDM() bool {
	return inv.IsDM || (inv.ChannelID != "" && inv.ChannelID[0] == 'D')
}

// State is where a request is in its life.
type State string

// Request states. Only awaiting_* states accept buttons; the move to
// running is a compare-and-set, so a request runs at most once.
const (
	StateAwaitingConfirmation State = "awaiting_confirmation"
	StateAwaitingApproval     State = "awaiting_approval"
	StateStarting             State = "starting" // claimed; checks in progress
	StateRunning              State = "running"
	StateFinished             State = "finished"
	StateCanceled             State = "canceled"
	StateDenied               State = "denied"
	StateExpired              State = "expired"
	StateAborted              State = "aborted" // pre-exec checks failed
)

// Submission is the synchronous answer to Submit, Confirm and Approve: what
// the adapter shows now. Later outcomes arrive through the Notifier.
type Submission struct {
	RunID  string
	State  State
	DryRun bool
	// Card is set when the requester must confirm (ephemeral card with
	// Confirm and Cancel buttons carrying only RunID).
	Card *Card
	// Approval is set when approval is needed (post in the incident thread
	// with Approve and Deny buttons carrying only RunID).
	Approval *ApprovalRequest
	// Message is a short Slack-safe acknowledgement ("queued as run …").
	Message string
}

// PlannedStep is a step's rendered argv for display: secret values are
// shown as •••.
type PlannedStep struct {
	Name string
	Argv []string
}

// request is a pending or running request. Guarded by Engine.mu.
type request struct {
	id        string
	rb        *Runbook // the version validated against
	caller    Caller
	channelID string
	isDM      bool
	incident  IncidentInfo
	params    Params
	hash      string
	key       string // rendered concurrency key
	dryRun    bool
	approval  bool // approval applies to these params
	created   time.Time

	steps  []renderedStep // the real steps
	probes []renderedStep // dry_run steps

	state     State
	deadline  time.Time // of the current awaiting_* state
	approvals []approvalRecord
	cancel    func() // set while running
	endedAt   time.Time

	// persist: the request waits (or waited) for someone and lives in the
	// RequestStore; rev is the stored revision this process last saw,
	// leftAt when it left the awaiting states. stale says why a request
	// stored elsewhere cannot run in this process (see Engine.decode).
	persist bool
	rev     int64
	leftAt  time.Time
	stale   string
}

type renderedStep struct {
	step    Step
	argv    []string // for exec
	display []string // secrets masked
}

type approvalRecord struct {
	by   Caller
	hash string
	at   time.Time
}

func (r *request) waiting() bool {
	return r.state == StateAwaitingConfirmation || r.state == StateAwaitingApproval
}

func (r *request) ended() bool { return !r.endedAt.IsZero() }

func (r *request) end(s State, now time.Time) {
	r.state = s
	r.endedAt = now
	r.cancel = nil
}

func (r *request) pendingWhat() string {
	if r.state == StateAwaitingApproval || len(r.approvals) > 0 {
		return "approved"
	}
	return "confirmed"
}

// event returns an audit event with the request's common fields. The
// approvals are read under e.mu; callers must not hold it.
func (e *Engine) event(r *request, kind EventKind) Event {
	e.mu.Lock()
	approvers := r.approverIDs()
	e.mu.Unlock()
	return Event{
		Kind: kind, RunID: r.id, RunbookID: r.rb.ID, RunbookVersion: r.rb.Version,
		RequestHash: r.hash, Actor: r.caller.actor(), ChannelID: r.channelID,
		IncidentID: r.incident.ID, Params: auditParams(r.params), DryRun: r.dryRun,
		Approvers: approvers,
	}
}

func (r *request) approverIDs() []string {
	var ids []string
	for _, a := range r.approvals {
		ids = append(ids, a.by.UserID)
	}
	return ids
}

func (r *request) plan(steps []renderedStep) []PlannedStep {
	out := make([]PlannedStep, len(steps))
	for i, s := range steps {
		out[i] = PlannedStep{Name: s.step.Name, Argv: s.display}
	}
	return out
}

func (r *request) paramDisplay() []string {
	out := make([]string, len(r.params))
	for i, v := range r.params {
		out[i] = v.Display()
	}
	return out
}

// approvalApplies evaluates approval.required_when on the normalised
// labels: no rules means always.
func approvalApplies(rb *Runbook, ps Params) bool {
	if rb.Approval == nil {
		return false
	}
	if len(rb.Approval.RequiredWhen) == 0 {
		return true
	}
	for _, c := range rb.Approval.RequiredWhen {
		v, ok := ps.Get(c.Param)
		if !ok {
			continue
		}
		for _, in := range c.In {
			if v.Label == in {
				return true
			}
		}
	}
	return false
}

// newRunID returns a 26-character ULID-shaped ID: 48 bits of milliseconds
// and 80 bits from crypto/rand, in Crockford base32. It is unguessable,
// and sorts by creation time.
func newRunID(now time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // rand.Read never fails on Linux
	}
	// 128 bits → 26 base32 digits, most significant first.
	out := make([]byte, 26)
	var acc uint64
	bits := uint(2) // 26*5 = 130: pad two zero bits at the top
	i := 0
	for _, x := range b {
		acc = acc<<8 | uint64(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[i] = alphabet[(acc>>bits)&31]
			i++
		}
	}
	return string(out)
}

// requestHash is SHA-256(version ‖ canonical params and target). Secret
// values enter it as an HMAC under a per-process key, so the hash (which is
// audited) binds the exact value without allowing an offline guess.
func (e *Engine) requestHash(rb *Runbook, r *request) string {
	type kv struct{ Name, Value string }
	canon := struct {
		Runbook, Incident, Channel, Requester string
		Params                                []kv
	}{Runbook: rb.ID, Incident: r.incident.ID, Channel: r.channelID, Requester: r.caller.TeamID + "/" + r.caller.UserID}
	for _, v := range r.params {
		value := v.Value
		if v.Secret {
			m := hmac.New(sha256.New, e.hashKey)
			m.Write([]byte(v.Value))
			value = "hmac:" + hex.EncodeToString(m.Sum(nil))
		}
		canon.Params = append(canon.Params, kv{v.Name, value})
	}
	body, _ := json.Marshal(canon) // strings only: cannot fail
	h := sha256.New()
	h.Write([]byte(rb.Version))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
