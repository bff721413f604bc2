package incident

import (
	"strconv"
	"strings"
	"time"
)

// The methods in this file are the legal moves of an incident. Each checks
// the current state, changes the incident in memory and returns the timeline
// event that records the move; an illegal move changes nothing and returns an
// ECONFLICT error whose message explains the state to the user.

func (inc *Incident) newEvent(kind EventKind, by Actor, at time.Time, text string, data map[string]string) Event {
	return Event{Incident: inc.Number, At: at, Kind: kind, Actor: by, Text: text, Data: data}
}

func (inc *Incident) statusEvent(from Status, by Actor, at time.Time, text string) Event {
	return inc.newEvent(EventStatusChanged, by, at, text, map[string]string{"from": string(from), "to": string(inc.Status)})
}

func (inc *Incident) errResolved(verb string) error {
	return Errorf(ECONFLICT, "%s is resolved, so it cannot be %s. Reopen it first with `reopen %s`.", inc.ID(), verb, inc.ID())
}

// Acknowledge moves a triggered incident to acknowledged. The first
// acknowledgement's time and actor are kept for MTTA.
func (inc *Incident) Acknowledge(by Actor, at time.Time) (Event, error) {
	switch inc.Status {
	case StatusAcknowledged:
		return Event{}, Errorf(ECONFLICT, "%s is already acknowledged%s.", inc.ID(), inc.ackedBy())
	case StatusMitigated:
		return Event{}, Errorf(ECONFLICT, "%s is already mitigated; there is nothing to acknowledge.", inc.ID())
	case StatusResolved:
		return Event{}, inc.errResolved("acknowledged")
	}
	from := inc.Status
	inc.Status = StatusAcknowledged
	inc.markAcknowledged(by, at)
	return inc.statusEvent(from, by, at, ""), nil
}

func (inc *Incident) markAcknowledged(by Actor, at time.Time) {
	if inc.AcknowledgedAt.IsZero() {
		inc.AcknowledgedAt = at
		inc.AcknowledgedBy = by
	}
}

func (inc *Incident) ackedBy() string {
	if inc.AcknowledgedBy.ID == "" {
		return ""
	}
	return " by " + inc.AcknowledgedBy.Mention()
}

// Unacknowledge moves an acknowledged incident back to triggered, as
// PagerDuty does when an acknowledgement times out.
func (inc *Incident) Unacknowledge(by Actor, at time.Time) (Event, error) {
	if inc.Status != StatusAcknowledged {
		return Event{}, Errorf(ECONFLICT, "%s is %s, not acknowledged.", inc.ID(), inc.Status)
	}
	inc.Status = StatusTriggered
	return inc.statusEvent(StatusAcknowledged, by, at, ""), nil
}

// Mitigate records that the impact has stopped while the incident stays open.
// Mitigating a triggered incident also acknowledges it: somebody is on it.
func (inc *Incident) Mitigate(by Actor, at time.Time, text string) (Event, error) {
	switch inc.Status {
	case StatusMitigated:
		return Event{}, Errorf(ECONFLICT, "%s is already mitigated. Resolve it with `resolve` when the work is done.", inc.ID())
	case StatusResolved:
		return Event{}, inc.errResolved("mitigated")
	}
	from := inc.Status
	inc.Status = StatusMitigated
	inc.MitigatedAt = at
	inc.markAcknowledged(by, at)
	return inc.statusEvent(from, by, at, text), nil
}

// Resolve closes an open incident. An incident resolved without an explicit
// mitigation has no mitigation time: none is invented.
func (inc *Incident) Resolve(by Actor, at time.Time, text string) (Event, error) {
	if inc.Status == StatusResolved {
		return Event{}, Errorf(ECONFLICT, "%s is already resolved.", inc.ID())
	}
	from := inc.Status
	inc.Status = StatusResolved
	inc.ResolvedAt = at
	return inc.statusEvent(from, by, at, text), nil
}

// Reopen returns a resolved incident to an open status: acknowledged when a
// person reopens it (they are on it), triggered when a pager does. The key
// times of the earlier episode stay on the timeline; the first
// acknowledgement is kept, mitigation and resolution are cleared.
func (inc *Incident) Reopen(by Actor, at time.Time, reason string) (Event, error) {
	if inc.Status.Open() {
		return Event{}, Errorf(ECONFLICT, "%s is still open (%s); only a resolved incident can be reopened.", inc.ID(), inc.Status)
	}
	inc.Status = StatusAcknowledged
	if by.Source.External() || by.Source == SourceBot {
		inc.Status = StatusTriggered
	}
	inc.markAcknowledged(by, at)
	inc.MitigatedAt = time.Time{}
	inc.ResolvedAt = time.Time{}
	inc.Reopened++
	inc.Escalations = 0
	return inc.statusEvent(StatusResolved, by, at, reason), nil
}

// SetSeverity changes the severity.
func (inc *Incident) SetSeverity(sev Severity, by Actor, at time.Time, text string) (Event, error) {
	if !sev.Valid() {
		return Event{}, Errorf(EINVALID, "Severity must be sev1 (worst) to sev4.")
	}
	if sev == inc.Severity {
		return Event{}, Errorf(ECONFLICT, "%s is already %s.", inc.ID(), sev)
	}
	from := inc.Severity
	inc.Severity = sev
	return inc.newEvent(EventSeverityChanged, by, at, text, map[string]string{"from": from.String(), "to": sev.String()}), nil
}

// AssignRole gives role to user, replacing the previous holder.
func (inc *Incident) AssignRole(role Role, user string, by Actor, at time.Time) (Event, error) {
	switch {
	case role != RoleCommander && role != RoleComms && role != RoleScribe:
		return Event{}, Errorf(EINVALID, "%q is not a role: use commander, comms or scribe.", truncate(string(role), 32))
	case user == "":
		return Event{}, Errorf(EINVALID, "Name the person for the %s role with an @-mention.", role)
	case inc.Roles[role] == user:
		return Event{}, Errorf(ECONFLICT, "<@%s> is already the %s of %s.", user, role, inc.ID())
	}
	if inc.Roles == nil {
		inc.Roles = map[Role]string{}
	}
	prev := inc.Roles[role]
	inc.Roles[role] = user
	data := map[string]string{"role": string(role), "user": user}
	if prev != "" {
		data["previous"] = prev
	}
	return inc.newEvent(EventRoleAssigned, by, at, "", data), nil
}

// AddFollowup records an action item for the postmortem.
func (inc *Incident) AddFollowup(text string, by Actor, at time.Time) (Event, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Event{}, Errorf(EINVALID, "Describe the follow-up: `followup <text>`.")
	}
	id := len(inc.Followups) + 1
	inc.Followups = append(inc.Followups, Followup{ID: id, Text: text, CreatedBy: by, CreatedAt: at})
	return inc.newEvent(EventFollowupAdded, by, at, text, map[string]string{"id": strconv.Itoa(id)}), nil
}

// StatusUpdate records an update for stakeholders and restarts the reminder
// clock.
func (inc *Incident) StatusUpdate(text string, by Actor, at time.Time) (Event, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Event{}, Errorf(EINVALID, "Write the update for stakeholders: `update <text>`.")
	}
	inc.LastUpdateAt = at
	return inc.newEvent(EventStatusUpdate, by, at, text, nil), nil
}
