package incident

import (
	"cmp"
	"context"
	"slices"
)

// Overview is what one person needs at a glance (the Slack Home tab): every
// open incident, theirs first, and the follow-ups they own that are still
// open.
type Overview struct {
	// Incidents are the open incidents: first those where the person holds
	// a role, then the others; within each group the worst severity first,
	// then the longest running.
	Incidents []*Incident
	// Mine counts the leading Incidents where the person holds a role.
	Mine int
	// Followups are the open follow-ups the person owns, on any incident
	// (most are done after it is resolved): those with a due date first,
	// soonest first, then the oldest.
	Followups []OwnedFollowup
}

// OwnedFollowup is a follow-up with the incident it belongs to.
type OwnedFollowup struct {
	Incident *Incident
	Followup Followup
}

// HoldsRole reports whether user holds any role in inc.
func (inc *Incident) HoldsRole(user string) bool {
	if user == "" {
		return false
	}
	for _, r := range Roles {
		if inc.Roles[r] == user {
			return true
		}
	}
	return false
}

// Overview returns user's overview, read in one transaction. It reads every
// incident (follow-ups live on resolved ones too), so callers refresh it
// when someone asks, not on every change.
func (s *Service) Overview(ctx context.Context, user string) (Overview, error) {
	var all []*Incident
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		all, err = tx.Incidents(Filter{})
		return err
	})
	if err != nil {
		return Overview{}, err
	}
	var ov Overview
	var others []*Incident
	for _, inc := range all {
		for _, f := range inc.Followups {
			if !f.Done && user != "" && f.Owner == user {
				ov.Followups = append(ov.Followups, OwnedFollowup{Incident: inc, Followup: f})
			}
		}
		switch {
		case !inc.Status.Open():
		case inc.HoldsRole(user):
			ov.Incidents = append(ov.Incidents, inc)
		default:
			others = append(others, inc)
		}
	}
	burning := func(a, b *Incident) int {
		return cmp.Or(cmp.Compare(a.Severity, b.Severity), a.DetectedAt.Compare(b.DetectedAt), cmp.Compare(a.Number, b.Number))
	}
	slices.SortStableFunc(ov.Incidents, burning)
	slices.SortStableFunc(others, burning)
	ov.Mine = len(ov.Incidents)
	ov.Incidents = append(ov.Incidents, others...)
	slices.SortStableFunc(ov.Followups, func(a, b OwnedFollowup) int {
		if (a.Followup.Due == "") != (b.Followup.Due == "") {
			if a.Followup.Due == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Followup.Due, b.Followup.Due), a.Followup.CreatedAt.Compare(b.Followup.CreatedAt),
			cmp.Compare(a.Incident.Number, b.Incident.Number), cmp.Compare(a.Followup.ID, b.Followup.ID))
	})
	return ov, nil
}
