package incident

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Shift is the stretch of on-call time a handover covers, [From, To).
type Shift struct {
	From, To time.Time
}

// Contains reports whether t falls in the shift.
func (s Shift) Contains(t time.Time) bool { return !t.Before(s.From) && t.Before(s.To) }

// PostHandover is the PostKey kind of a scheduled handover; its Period is
// the shift's end.
const PostHandover = "handover"

// DefaultDueWithin is how far ahead a handover looks for follow-ups that
// are due soon: a week, so that a weekly rotation sees everything due
// before its next handover.
const DefaultDueWithin = 7 * 24 * time.Hour

// HandoverOptions select what a handover covers.
type HandoverOptions struct {
	Shift Shift
	// DueWithin: open follow-ups due within this long of the handover (in
	// whole days of Location) are listed, with the overdue ones; default
	// DefaultDueWithin.
	DueWithin time.Duration
	Location  *time.Location // calendar of due dates; default UTC
}

// HandoverEvent is one timeline event a handover lists, with its incident.
type HandoverEvent struct {
	Incident *Incident
	Event    Event
}

// HandoverFollowup is an open follow-up that is due soon or overdue.
type HandoverFollowup struct {
	Incident *Incident
	Followup Followup
	Overdue  bool
}

// Waiting kinds: what a HandoverWait waits for.
const (
	WaitAcknowledgement = "acknowledgement" // a triggered incident nobody acknowledged
	WaitCommander       = "commander"       // an open incident without a commander
	WaitConfirmation    = "confirmation"    // a runbook run its requester has not confirmed
	WaitApproval        = "approval"        // a runbook run nobody approved or denied yet
)

// HandoverWait is something still waiting on someone at the handover.
type HandoverWait struct {
	// Incident is the incident it is about; nil for a runbook run
	// requested outside an incident channel (Channel says where).
	Incident *Incident
	Kind     string    // WaitAcknowledgement, WaitCommander, WaitConfirmation, WaitApproval
	Since    time.Time // since when it waits
	// For runbook runs: the run, the runbook, who asked for it, where, and
	// until when it waits before it expires (zero when unknown).
	RunID, Runbook, RequestedBy, Channel string
	Until                                time.Time
}

// Handover is the on-call handover of a shift: what happened during it and
// what the next person inherits. Incidents are shown in their state when
// the handover was made (Generated), which for a handover posted late
// (after downtime) is later than the shift's end.
type Handover struct {
	Shift     Shift
	Generated time.Time
	// Opened is how many incidents were declared during the shift; New
	// says which (by number).
	Opened int
	New    map[int64]bool
	// StillOpen are the incidents open at Generated, worst severity first,
	// then the oldest first.
	StillOpen []*Incident
	// Resolved are the incidents resolved at Generated whose last
	// resolution came at or after the shift's start, the latest first.
	Resolved []*Incident
	// Pages are the pages sent and the escalations (manual or automatic)
	// during the shift, in time order.
	Pages []HandoverEvent
	// FailedRuns are the runbook runs (not dry runs) that failed or timed
	// out during the shift, in time order.
	FailedRuns []HandoverEvent
	// Followups are the open follow-ups of any incident that are overdue
	// or due by DueBy, the earliest due first; FollowupsLater counts the
	// other open ones (due later, or with no date).
	Followups      []HandoverFollowup
	DueBy          string // DateFormat
	FollowupsLater int
	// Waiting is what still waits on someone: unacknowledged incidents,
	// open incidents without a commander, runbook runs awaiting
	// confirmation or approval; the longest waiting first.
	Waiting []HandoverWait
}

// Quiet reports whether the handover has nothing to tell.
func (h *Handover) Quiet() bool {
	return h.Opened == 0 && len(h.StillOpen) == 0 && len(h.Resolved) == 0 && len(h.Pages) == 0 &&
		len(h.FailedRuns) == 0 && len(h.Followups) == 0 && len(h.Waiting) == 0
}

// Handover builds the handover of opts.Shift from the store, as of now. It
// reads the timelines of the incidents that changed since the shift began
// (the others cannot have events in it) and of the open ones, and the
// stored runbook requests.
func (s *Service) Handover(ctx context.Context, opts HandoverOptions) (*Handover, error) {
	now := s.clock.Now()
	var incs []*Incident
	var requests []RunbookRequest
	timelines := map[int64][]Event{}
	err := s.store.View(ctx, func(tx Tx) error {
		clear(timelines)
		incs = incs[:0]
		var err error
		if requests, err = tx.RunbookRequests(); err != nil {
			return err
		}
		return tx.ForEachIncident(func(inc *Incident) error {
			changed := inc.UpdatedAt.IsZero() || !inc.UpdatedAt.Before(opts.Shift.From)
			if !changed && !inc.Status.Open() && !hasOpenFollowup(inc) {
				return nil
			}
			incs = append(incs, inc)
			if changed || inc.Status.Open() {
				events, err := tx.Timeline(inc.Number)
				if err != nil {
					return err
				}
				timelines[inc.Number] = events
			}
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading incidents for the handover: %w", err)
	}
	return BuildHandover(HandoverInput{Incidents: incs, Timelines: timelines, RunbookRequests: requests}, opts, now), nil
}

// HandoverInput is what BuildHandover reads.
type HandoverInput struct {
	// Incidents in their state at the handover.
	Incidents []*Incident
	// Timelines of the incidents that may have events in the shift.
	Timelines map[int64][]Event
	// RunbookRequests are the stored runbook requests (waiting and
	// recently ended).
	RunbookRequests []RunbookRequest
}

func hasOpenFollowup(inc *Incident) bool {
	return slices.ContainsFunc(inc.Followups, func(f Followup) bool { return !f.Done })
}

// BuildHandover is the pure part of Service.Handover: the handover of
// opts.Shift over in, as of now.
//
// Runbook runs waiting on someone come from the stored requests (those
// waiting at now, see RunbookRequest.Waiting) and, for runs the store has
// no request of (made before requests were stored), from the timeline: a
// run whose last recorded decision asks for a confirmation or an approval.
func BuildHandover(in HandoverInput, opts HandoverOptions, now time.Time) *Handover {
	incs, timelines := in.Incidents, in.Timelines
	loc := cmp.Or(opts.Location, time.UTC)
	within := cmp.Or(opts.DueWithin, DefaultDueWithin)
	h := &Handover{Shift: opts.Shift, Generated: now, New: map[int64]bool{},
		DueBy: now.In(loc).Add(within).Format(DateFormat)}
	for _, inc := range incs {
		if opts.Shift.Contains(inc.DeclaredAt) {
			h.Opened++
			h.New[inc.Number] = true
		}
		switch {
		case inc.Status.Open():
			h.StillOpen = append(h.StillOpen, inc)
			if inc.Status == StatusTriggered {
				h.Waiting = append(h.Waiting, HandoverWait{Incident: inc, Kind: WaitAcknowledgement, Since: inc.DetectedAt})
			}
			if inc.Commander() == "" {
				h.Waiting = append(h.Waiting, HandoverWait{Incident: inc, Kind: WaitCommander, Since: inc.DeclaredAt})
			}
		case !inc.ResolvedAt.Before(opts.Shift.From):
			h.Resolved = append(h.Resolved, inc)
		}
		for _, f := range inc.Followups {
			switch {
			case f.Done:
			case f.Due != "" && f.Due <= h.DueBy:
				h.Followups = append(h.Followups, HandoverFollowup{Incident: inc, Followup: f, Overdue: f.Overdue(now, loc)})
			default:
				h.FollowupsLater++
			}
		}
		h.scan(inc, timelines[inc.Number], in.RunbookRequests)
	}
	byID := map[string]*Incident{}
	for _, inc := range incs {
		byID[inc.ID()] = inc
	}
	for _, r := range in.RunbookRequests {
		if !r.Waiting(now) {
			continue
		}
		kind := WaitConfirmation
		if r.State == RunbookAwaitingApproval {
			kind = WaitApproval
		}
		h.Waiting = append(h.Waiting, HandoverWait{Incident: byID[r.Incident], Kind: kind, Since: r.Created,
			RunID: r.ID, Runbook: r.Runbook, RequestedBy: r.Requester, Channel: r.ChannelID, Until: r.Deadline})
	}
	slices.SortStableFunc(h.StillOpen, func(a, b *Incident) int {
		return cmp.Or(cmp.Compare(a.Severity, b.Severity), a.DeclaredAt.Compare(b.DeclaredAt), cmp.Compare(a.Number, b.Number))
	})
	slices.SortStableFunc(h.Resolved, func(a, b *Incident) int {
		return cmp.Or(b.ResolvedAt.Compare(a.ResolvedAt), cmp.Compare(a.Number, b.Number))
	})
	byTime := func(a, b HandoverEvent) int {
		return cmp.Or(a.Event.At.Compare(b.Event.At), cmp.Compare(a.Incident.Number, b.Incident.Number), cmp.Compare(a.Event.Seq, b.Event.Seq))
	}
	slices.SortStableFunc(h.Pages, byTime)
	slices.SortStableFunc(h.FailedRuns, byTime)
	slices.SortStableFunc(h.Followups, func(a, b HandoverFollowup) int {
		return cmp.Or(cmp.Compare(a.Followup.Due, b.Followup.Due), cmp.Compare(a.Incident.Number, b.Incident.Number), cmp.Compare(a.Followup.ID, b.Followup.ID))
	})
	slices.SortStableFunc(h.Waiting, func(a, b HandoverWait) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.number(), b.number()), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.RunID, b.RunID))
	})
	return h
}

func (w HandoverWait) number() int64 {
	if w.Incident == nil {
		return 0
	}
	return w.Incident.Number
}

// scan adds what inc's timeline tells about the shift: pages, escalations
// and failed runs during it, and runbook runs still awaiting someone that
// the store has no request of (stored is the store's).
func (h *Handover) scan(inc *Incident, events []Event, stored []RunbookRequest) {
	type run struct {
		decision string
		ev       Event
	}
	runs := map[string]run{}
	var order []string
	for _, ev := range events {
		switch ev.Kind {
		case EventPageSent, EventEscalated:
			if h.Shift.Contains(ev.At) {
				h.Pages = append(h.Pages, HandoverEvent{Incident: inc, Event: ev})
			}
		case EventRunbookRan:
			if o := ev.Data["outcome"]; (o == "failed" || o == "timed_out") && ev.Data["dry_run"] != "true" && h.Shift.Contains(ev.At) {
				h.FailedRuns = append(h.FailedRuns, HandoverEvent{Incident: inc, Event: ev})
			}
		}
		if id := ev.Data["run_id"]; id != "" && (ev.Kind == EventRunbookRequested || ev.Kind == EventRunbookRan) {
			r, seen := runs[id]
			if !seen {
				order = append(order, id)
				r.ev = ev // the request: who asked, and when
			}
			r.decision = ev.Data["decision"]
			runs[id] = r
		}
	}
	for _, id := range order {
		if slices.ContainsFunc(stored, func(r RunbookRequest) bool { return r.ID == id }) {
			continue // the stored request says whether it waits
		}
		r := runs[id]
		kind := ""
		switch r.decision {
		case "confirm_requested":
			kind = WaitConfirmation
		case "approval_requested":
			kind = WaitApproval
		default:
			continue
		}
		h.Waiting = append(h.Waiting, HandoverWait{Incident: inc, Kind: kind, Since: r.ev.At,
			RunID: id, Runbook: r.ev.Data["runbook"], RequestedBy: r.ev.Actor.ID})
	}
}
