package incident_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The overview lists the person's incidents first, then the others; in
// each group the worst severity first, then the longest running; resolved
// incidents never; and the person's open follow-ups on any incident, dated
// ones first (soonest first), then the oldest.
func TestOverviewOrder(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	bob := incident.Actor{ID: "U0BOB", Source: incident.SourceSlack}
	declare := func(title string, sev incident.Severity, by incident.Actor) int64 {
		t.Helper()
		clock.Advance(time.Minute)
		inc, err := svc.Declare(ctx, incident.Declaration{Title: title, Severity: sev, By: by})
		if err != nil {
			t.Fatal(err)
		}
		return inc.Number
	}
	declare("bob sev3 old", incident.SEV3, bob)                // 1
	declare("alice sev2", incident.SEV2, alice)                // 2
	declare("bob sev1", incident.SEV1, bob)                    // 3
	declare("bob sev3 new", incident.SEV3, bob)                // 4
	scribe := declare("alice scribe sev1", incident.SEV1, bob) // 5
	if _, err := svc.AssignRole(ctx, incident.Ref{Number: scribe}, incident.RoleScribe, alice.ID, bob); err != nil {
		t.Fatal(err)
	}
	done := declare("alice resolved", incident.SEV1, alice) // 6
	for i, due := range []string{"", "2026-12-20", "", "2026-12-10"} {
		if _, err := svc.AddFollowup(ctx, incident.Ref{Number: done}, fmt.Sprintf("f%d", i+1), alice); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		for _, c := range []incident.FollowupChange{{ID: i + 1, Op: incident.FollowupAssign, Owner: alice.ID}, {ID: i + 1, Op: incident.FollowupDue, Due: due}} {
			if c.Op == incident.FollowupDue && due == "" {
				continue
			}
			if _, err := svc.ChangeFollowup(ctx, incident.Ref{Number: done}, c, alice); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := svc.Resolve(ctx, incident.Ref{Number: done}, alice, ""); err != nil {
		t.Fatal(err)
	}

	ov, err := svc.Overview(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, inc := range ov.Incidents {
		got = append(got, inc.ID())
	}
	if want := "INC-5 INC-2 INC-3 INC-1 INC-4"; strings.Join(got, " ") != want || ov.Mine != 2 {
		t.Errorf("incidents %v (mine %d), want %s (mine 2)", got, ov.Mine, want)
	}
	got = nil
	for _, f := range ov.Followups {
		got = append(got, fmt.Sprintf("%s#%d", f.Incident.ID(), f.Followup.ID))
	}
	if want := "INC-6#4 INC-6#2 INC-6#1 INC-6#3"; strings.Join(got, " ") != want {
		t.Errorf("follow-ups %v, want %s", got, want)
	}
	if ov, _ := svc.Overview(ctx, "U0NOBODY"); ov.Mine != 0 || len(ov.Incidents) != 5 || len(ov.Followups) != 0 {
		t.Errorf("someone with no part: %+v", ov)
	}
}
