package incident

import (
	"testing"
	"time"
)

// TestHandoverCountsOnlyTheShift: pages, escalations and failed runs are
// the shift's only; dry runs and canceled runs are not failures; a run
// decided after it asked for approval no longer waits; follow-ups due
// after the window are counted, not listed.
func TestHandoverCountsOnlyTheShift(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC) }
	shift := Shift{From: at(8), To: at(20)}
	inc := &Incident{Number: 1, Title: "x", Severity: SEV2, Status: StatusMitigated, DeclaredAt: at(6), DetectedAt: at(6),
		Roles:     map[Role]string{RoleCommander: "U1"},
		Followups: []Followup{{ID: 1, Due: "2026-12-05"}, {ID: 2, Due: "2026-12-30"}, {ID: 3}, {ID: 4, Due: "2026-11-01", Done: true}}}
	ran := func(h int, outcome, dry string) Event {
		return Event{At: at(h), Kind: EventRunbookRan, Data: map[string]string{"run_id": "r" + outcome + dry, "outcome": outcome, "dry_run": dry, "decision": "finished"}}
	}
	events := []Event{
		{At: at(7), Kind: EventPageSent},   // before the shift
		{At: at(9), Kind: EventPageSent},   // in it
		{At: at(10), Kind: EventEscalated}, // in it
		{At: at(20), Kind: EventEscalated}, // at its end: the next shift's
		ran(11, "failed", "false"), ran(11, "timed_out", "false"), ran(11, "failed", "true"), ran(11, "canceled", "false"), ran(7, "failed", "false"),
		{At: at(12), Kind: EventRunbookRequested, Data: map[string]string{"run_id": "a", "decision": "approval_requested"}},
		{At: at(13), Kind: EventRunbookRequested, Data: map[string]string{"run_id": "a", "decision": "denied"}},
		{At: at(14), Kind: EventRunbookRequested, Data: map[string]string{"run_id": "b", "decision": "confirm_requested"}},
	}
	h := BuildHandover(HandoverInput{Incidents: []*Incident{inc}, Timelines: map[int64][]Event{1: events}}, HandoverOptions{Shift: shift}, at(21))
	if len(h.Pages) != 2 || !h.Pages[0].Event.At.Equal(at(9)) || !h.Pages[1].Event.At.Equal(at(10)) {
		t.Errorf("pages: %+v", h.Pages)
	}
	if len(h.FailedRuns) != 2 || h.FailedRuns[0].Event.Data["outcome"] != "failed" || h.FailedRuns[1].Event.Data["outcome"] != "timed_out" {
		t.Errorf("failed runs: %+v", h.FailedRuns)
	}
	if len(h.Waiting) != 1 || h.Waiting[0].RunID != "b" || h.Waiting[0].Kind != WaitConfirmation {
		t.Errorf("waiting: %+v", h.Waiting)
	}
	if len(h.Followups) != 1 || h.Followups[0].Followup.ID != 1 || h.FollowupsLater != 2 || h.DueBy != "2026-12-08" {
		t.Errorf("follow-ups: %+v, later %d, due by %s", h.Followups, h.FollowupsLater, h.DueBy)
	}
	if h.Opened != 0 || len(h.StillOpen) != 1 || len(h.Resolved) != 0 {
		t.Errorf("opened %d, still open %d, resolved %d", h.Opened, len(h.StillOpen), len(h.Resolved))
	}
}
