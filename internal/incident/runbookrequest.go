package incident

import (
	"context"
	"time"
)

// Runbook request states as the store keeps them. Only the two awaiting
// states wait on someone; the others are kept for a while after the
// request ended so a replayed or late click is told what happened.
const (
	RunbookAwaitingConfirmation = "awaiting_confirmation"
	RunbookAwaitingApproval     = "awaiting_approval"
)

// RunbookRequest is a runbook request (`/incident run`) as the store keeps
// it while it waits for the requester's confirmation or for approvals, so a
// restart does not cancel it and a click can land on any replica. The
// runbook engine owns Body; the other fields are what others may read
// (the on-call handover lists what still waits on someone).
type RunbookRequest struct {
	ID        string    `json:"id"`      // the run id shown to people
	Runbook   string    `json:"runbook"` // the runbook's id
	State     string    `json:"state"`
	Requester string    `json:"requester"` // chat user id
	ChannelID string    `json:"channel"`
	Incident  string    `json:"incident,omitempty"` // "INC-12" when run in an incident channel
	Created   time.Time `json:"created"`
	// Deadline ends the awaiting state: past it the request has expired,
	// whether or not anything has marked it so yet.
	Deadline time.Time `json:"deadline"`
	// Ended is when the request left the awaiting states (zero while it
	// waits).
	Ended time.Time `json:"ended,omitzero"`
	// Rev is the request's revision: PutRunbookRequest sets it.
	Rev  int64  `json:"rev"`
	Body []byte `json:"body,omitempty"`
}

// Waiting reports whether the request waits on someone at now: it is in
// an awaiting state and its deadline has not passed.
func (r *RunbookRequest) Waiting(now time.Time) bool {
	return (r.State == RunbookAwaitingConfirmation || r.State == RunbookAwaitingApproval) && now.Before(r.Deadline)
}

// RunbookRequestTx is the part of Tx that keeps runbook requests. Because
// Update and Batch are serializable, reading a request and writing it
// back with PutRunbookRequest in one transaction is a compare-and-swap:
// of two replicas (or two clicks) claiming the same request, one commits
// and the other sees ECONFLICT (or, run again, the claimed state).
type RunbookRequestTx interface {
	// PutRunbookRequest creates r when r.Rev is 0, or replaces the stored
	// request when its revision is still r.Rev; otherwise (it exists
	// already, or someone changed it since it was read) it returns an
	// ECONFLICT error and writes nothing. On success r.Rev is the new
	// revision.
	PutRunbookRequest(r *RunbookRequest) error
	// RunbookRequest returns request id, or an ENOTFOUND error.
	RunbookRequest(id string) (*RunbookRequest, error)
	// DeleteRunbookRequest forgets request id; one that is gone already is
	// not an error.
	DeleteRunbookRequest(id string) error
	// RunbookRequests lists the stored requests (waiting and recently
	// ended) in id order, which is creation order.
	RunbookRequests() ([]RunbookRequest, error)
}

// ListPendingRunbookRequests returns the runbook requests still waiting on
// someone at now (a confirmation or approvals, deadline not passed), oldest
// first. The on-call handover lists them.
func ListPendingRunbookRequests(ctx context.Context, s Store, now time.Time) ([]RunbookRequest, error) {
	var out []RunbookRequest
	err := s.View(ctx, func(tx Tx) error {
		all, err := tx.RunbookRequests()
		out = out[:0]
		for _, r := range all {
			if r.Waiting(now) {
				out = append(out, r)
			}
		}
		return err
	})
	return out, err
}

// maxRunbookRequestID caps a request id: the engine's are 26 characters.
const maxRunbookRequestID = 64

// CheckRunbookRequest is what both stores check before keeping r.
func CheckRunbookRequest(r *RunbookRequest) error {
	if r.ID == "" || len(r.ID) > maxRunbookRequestID {
		return Errorf(EINVALID, "bad runbook request id %q", r.ID)
	}
	for _, c := range r.ID {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return Errorf(EINVALID, "bad runbook request id %q", r.ID)
		}
	}
	return nil
}

// NextRunbookRequest is PutRunbookRequest's check, for both stores: given
// what the store holds for r.ID (cur, or the error looking it up), it
// returns r at its next revision, ready to write, or the conflict.
func NextRunbookRequest(r, cur *RunbookRequest, lookupErr error) (*RunbookRequest, error) {
	if err := CheckRunbookRequest(r); err != nil {
		return nil, err
	}
	switch {
	case ErrorCode(lookupErr) == ENOTFOUND:
		if r.Rev != 0 {
			return nil, runbookRequestConflict(r.ID)
		}
	case lookupErr != nil:
		return nil, lookupErr
	case cur.Rev != r.Rev:
		return nil, runbookRequestConflict(r.ID)
	}
	next := *r
	next.Rev++
	return &next, nil
}

func runbookRequestConflict(id string) error {
	return Errorf(ECONFLICT, "Run %s was changed by someone else meanwhile.", id)
}
