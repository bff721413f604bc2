package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestFollowupLifecycle walks one follow-up through the commands people
// use: assign, due date, done, reopen; each change is stored, on the
// timeline with who did it, and survives a reload from the real store.
func TestFollowupLifecycle(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	inc, err := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	if err != nil {
		t.Fatal(err)
	}
	ref := incident.Ref{Number: inc.Number}
	if _, err := svc.AddFollowup(ctx, ref, "add a canary stage", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resolve(ctx, ref, alice, "fixed"); err != nil {
		t.Fatal(err)
	}
	// Follow-ups are worked on after the incident is resolved.
	steps := []incident.FollowupChange{
		{ID: 1, Op: incident.FollowupAssign, Owner: bob.ID},
		{ID: 1, Op: incident.FollowupDue, Due: "2026-11-20"},
		{ID: 1, Op: incident.FollowupDone},
	}
	for _, c := range steps {
		clock.Advance(time.Minute)
		if _, err := svc.ChangeFollowup(ctx, ref, c, bob); err != nil {
			t.Fatalf("%s: %v", c.Op, err)
		}
	}
	got, events, err := svc.Timeline(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	f := got.Followups[0]
	if !f.Done || f.Owner != bob.ID || f.Due != "2026-11-20" || !f.DoneAt.Equal(start.Add(3*time.Minute)) || f.DoneBy.ID != bob.ID {
		t.Fatalf("follow-up after the changes: %+v", f)
	}
	var told []string
	for _, ev := range events {
		if ev.Kind == incident.EventFollowupChanged {
			told = append(told, ev.Describe())
		}
	}
	want := []string{
		"Follow-up #1 assigned to <@U0BOB> by <@U0BOB>: add a canary stage",
		"Follow-up #1 due 2026-11-20 by <@U0BOB>: add a canary stage",
		"Follow-up #1 marked done by <@U0BOB>: add a canary stage",
	}
	if strings.Join(told, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline:\n%s\nwant:\n%s", strings.Join(told, "\n"), strings.Join(want, "\n"))
	}

	// Illegal or mistyped changes are refused and change nothing.
	for _, tc := range []struct {
		c    incident.FollowupChange
		code string
		msg  string
	}{
		{incident.FollowupChange{ID: 1, Op: incident.FollowupDone}, incident.ECONFLICT, "already done"},
		{incident.FollowupChange{ID: 2, Op: incident.FollowupDone}, incident.EINVALID, "has only follow-up #1"},
		{incident.FollowupChange{ID: 1, Op: incident.FollowupAssign, Owner: bob.ID}, incident.ECONFLICT, "already owns"},
		{incident.FollowupChange{ID: 1, Op: incident.FollowupDue, Due: "2026-13-45"}, incident.EINVALID, "not a date"},
	} {
		_, err := svc.ChangeFollowup(ctx, ref, tc.c, alice)
		if incident.ErrorCode(err) != tc.code || !strings.Contains(incident.ErrorMessage(err), tc.msg) {
			t.Errorf("%+v: %v, want %s %q", tc.c, err, tc.code, tc.msg)
		}
	}
	if _, err := svc.ChangeFollowup(ctx, ref, incident.FollowupChange{ID: 1, Op: incident.FollowupReopen}, alice); err != nil {
		t.Fatal(err)
	}
	got, _ = svc.Get(ctx, ref)
	if f := got.Followups[0]; f.Done || !f.DoneAt.IsZero() || f.Owner != bob.ID {
		t.Fatalf("reopened follow-up: %+v", f)
	}
}

func TestFollowupOverdue(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// 23:30 UTC on the 20th is already the 21st in Berlin.
	now := time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		f    incident.Followup
		loc  *time.Location
		want bool
	}{
		{incident.Followup{Due: "2026-11-20"}, time.UTC, false},
		{incident.Followup{Due: "2026-11-20"}, berlin, true},
		{incident.Followup{Due: "2026-11-19"}, time.UTC, true},
		{incident.Followup{Due: "2026-11-19", Done: true}, time.UTC, false},
		{incident.Followup{}, time.UTC, false},
	} {
		if got := tc.f.Overdue(now, tc.loc); got != tc.want {
			t.Errorf("%+v in %s: overdue %v, want %v", tc.f, tc.loc, got, tc.want)
		}
	}
}

func TestParseDueDate(t *testing.T) {
	now := time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC) // a Wednesday
	for in, want := range map[string]string{
		"2026-12-15": "2026-12-15",
		"today":      "2026-11-18",
		"Tomorrow":   "2026-11-19",
		"friday":     "2026-11-20",
		"wed":        "2026-11-25", // today's weekday means next week's
		"in 3 days":  "2026-11-21",
		"3d":         "2026-11-21",
		"+2w":        "2026-12-02",
		"in 1 week":  "2026-11-25",
		"none":       "",
	} {
		got, err := incident.ParseDueDate(in, now, time.UTC)
		if err != nil || got != want {
			t.Errorf("ParseDueDate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "2026-02-30", "next blue moon"} {
		if _, err := incident.ParseDueDate(bad, now, time.UTC); incident.ErrorCode(err) != incident.EINVALID {
			t.Errorf("ParseDueDate(%q): %v, want EINVALID", bad, err)
		}
	}
}
