package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestCorrectingFacts: each correction is stored, on the timeline with who
// made it, and refused clearly when it changes nothing or makes no sense.
func TestCorrectingFacts(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	ref := incident.Ref{Number: inc.Number}
	changes := []incident.FactChange{
		{Fact: incident.FactTitle, Text: "Checkout\npayments failing"},
		{Fact: incident.FactSummary, Text: "The 09:55 deploy exhausted the DB pool."},
		{Fact: incident.FactImpact, Text: "30% of payments failed for 40 minutes."},
		{Fact: incident.FactServiceAdd, Text: "checkout-api"},
		{Fact: incident.FactServiceAdd, Text: "payments-db"},
		{Fact: incident.FactServiceRemove, Text: "Checkout-API"},
		{Fact: incident.FactStarted, Started: start.Add(-25 * time.Minute)},
	}
	for _, c := range changes {
		clock.Advance(time.Minute)
		if _, err := svc.ChangeFact(ctx, ref, c, bob); err != nil {
			t.Fatalf("%s: %v", c.Fact, err)
		}
	}
	got, events, _ := svc.Timeline(ctx, ref)
	if got.Title != "Checkout payments failing" || got.Description == "" || got.Impact == "" ||
		strings.Join(got.Services, ",") != "payments-db" || !got.StartedAt.Equal(start.Add(-25*time.Minute)) {
		t.Fatalf("incident after corrections: %+v", got)
	}
	var told []string
	for _, ev := range events {
		if ev.Kind == incident.EventFactChanged {
			told = append(told, ev.Describe())
		}
	}
	want := []string{
		"<@U0BOB> changed the title: Checkout payments failing",
		"<@U0BOB> set the summary: The 09:55 deploy exhausted the DB pool.",
		"<@U0BOB> set the impact: 30% of payments failed for 40 minutes.",
		"<@U0BOB> added the service checkout-api",
		"<@U0BOB> added the service payments-db",
		"<@U0BOB> removed the service checkout-api",
		"<@U0BOB> recorded that the problem started at 2026-11-16 02:35 UTC",
	}
	if strings.Join(told, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline:\n%s\nwant:\n%s", strings.Join(told, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		c    incident.FactChange
		code string
	}{
		{incident.FactChange{Fact: incident.FactTitle, Text: "Checkout payments failing"}, incident.ECONFLICT},
		{incident.FactChange{Fact: incident.FactTitle, Text: "  "}, incident.EINVALID},
		{incident.FactChange{Fact: incident.FactServiceAdd, Text: "PAYMENTS-DB"}, incident.ECONFLICT},
		{incident.FactChange{Fact: incident.FactServiceRemove, Text: "search"}, incident.EINVALID},
		{incident.FactChange{Fact: incident.FactImpact, Text: strings.Repeat("x", incident.MaxTextLength+1)}, incident.EINVALID},
	} {
		if _, err := svc.ChangeFact(ctx, ref, tc.c, bob); incident.ErrorCode(err) != tc.code {
			t.Errorf("%+v: %v, want %s", tc.c, err, tc.code)
		}
	}
}

func TestParseTime(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // 11:00 in Berlin
	for in, want := range map[string]time.Time{
		"25m ago":                           now.Add(-25 * time.Minute),
		"25 minutes ago":                    now.Add(-25 * time.Minute),
		"1h30m ago":                         now.Add(-90 * time.Minute),
		"2 hours ago":                       now.Add(-2 * time.Hour),
		"10:30":                             time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC), // Berlin's 10:30
		"12:00":                             time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), // later today: yesterday
		"09:15 UTC":                         time.Date(2026, 12, 2, 9, 15, 0, 0, time.UTC),
		"2026-12-01 14:05":                  time.Date(2026, 12, 1, 13, 5, 0, 0, time.UTC),
		"2026-12-01 14:05 +05:30":           time.Date(2026, 12, 1, 8, 35, 0, 0, time.UTC),
		"2026-12-01 14:05 America/New_York": time.Date(2026, 12, 1, 19, 5, 0, 0, time.UTC),
		"2026-12-01T14:05:00Z":              time.Date(2026, 12, 1, 14, 5, 0, 0, time.UTC),
		"<!date^1795168570^{time}|x>":       time.Unix(1795168570, 0),
	} {
		got, err := incident.ParseTime(in, now, berlin)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "25 parsecs ago", "25:00", "2026-13-01 10:00", "10:00 Mars/Olympus"} {
		if _, err := incident.ParseTime(bad, now, berlin); incident.ErrorCode(err) != incident.EINVALID {
			t.Errorf("ParseTime(%q): %v, want EINVALID", bad, err)
		}
	}
}
