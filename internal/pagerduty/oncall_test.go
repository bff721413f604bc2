package pagerduty_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// onCallPD is an account with two escalation policies: Payments (level 1
// a weekly schedule; level 2 a daily schedule and a person directly) and
// Search (a weekly schedule), a policy whose name looks like an id, and a
// schedule no policy uses. At t0 Alice holds the weekly Payments shift
// until t0+5d, then Bob.
func onCallPD(t *testing.T, clock incident.Clock) *pdtest.Server {
	t.Helper()
	return pdtest.New(t, pdtest.Config{
		Token: apiToken,
		Now:   clock.Now,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: fromEmail},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
			{ID: "PCAROL1", Name: "Carol Third", Email: "carol@example.com"},
			{ID: "PDAVE01", Name: "Dave Daily", Email: "dave@example.com"},
			{ID: "PERIN01", Name: "Erin Daily", Email: "erin@example.com"},
			{ID: "PFRANK1", Name: "Frank Manager", Email: "frank@example.com"},
		},
		Schedules: []pdtest.Schedule{
			{ID: "PSCH001", Name: "Payments Primary", TimeZone: "America/New_York",
				Shifts: pdtest.Rotation(t0.Add(-2*24*time.Hour), 7*24*time.Hour, 10, "PALICE1", "PBOB001", "PCAROL1")},
			{ID: "PSCH002", Name: "Payments Secondary", Shifts: pdtest.Rotation(t0.Add(-time.Hour), 24*time.Hour, 20, "PDAVE01", "PERIN01")},
			{ID: "PSCH003", Name: "Search Secondary", Shifts: pdtest.Rotation(t0.Add(-24*time.Hour), 7*24*time.Hour, 4, "PCAROL1")},
			{ID: "PSCH004", Name: "Orphan rotation", Shifts: pdtest.Rotation(t0, time.Hour, 4, "PALICE1")},
		},
		Policies: []pdtest.Policy{
			{ID: "PEP0001", Name: "Payments", Levels: [][]string{{"PSCH001"}, {"PSCH002", "PFRANK1"}}},
			{ID: "PEP0002", Name: "Search", Levels: [][]string{{"PSCH003"}}},
			{ID: "PEP0003", Name: "PLATFORM", Levels: [][]string{{"PFRANK1"}}},
		},
	})
}

func newOnCall(srv *pdtest.Server, clock incident.Clock, dir pagerduty.UserDirectory) *pagerduty.OnCall {
	return pagerduty.NewOnCall(pagerduty.OnCallConfig{Client: newClient(srv, prometheus.NewRegistry(), apiToken, ""), Directory: dir, Clock: clock})
}

func TestOnCallByPolicyNameShowsNowAndNextLevelByLevel(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	dir := &directory{users: map[string]string{"alice@example.com": "U0ALICE", "erin@example.com": "U0ERIN"}}
	oc, err := newOnCall(srv, clock, dir).OnCall(context.Background(), "  payments ")
	if err != nil {
		t.Fatal(err)
	}
	// "payments" matches two schedules and the policy in part; the policy's
	// name is exactly it.
	if oc.System != "PagerDuty" || oc.Asked != "the escalation policy Payments" || len(oc.Paths) != 1 {
		t.Fatalf("answer: %+v", oc)
	}
	p := oc.Paths[0]
	if p.ID != "PEP0001" || p.Name != "Payments" || p.URL != "https://acme.pagerduty.com/escalation_policies/PEP0001" || len(p.Levels) != 2 {
		t.Fatalf("path: %+v", p)
	}
	l1 := p.Levels[0]
	if l1.Level != 1 || len(l1.Rotations) != 1 {
		t.Fatalf("level 1: %+v", l1)
	}
	weekly := l1.Rotations[0]
	// Alice's shift started at t0-2d and lasts a week; the answer is in
	// New York time on the wire and must mean the same instants.
	if weekly.Name != "Payments Primary" || len(weekly.Now) != 1 || weekly.Now[0].Person != (incident.OnCallPerson{Name: "Alice Oncall", ChatID: "U0ALICE"}) ||
		!weekly.Now[0].End.Equal(t0.Add(5*24*time.Hour)) {
		t.Errorf("weekly now: %+v", weekly)
	}
	if n := weekly.Next; n == nil || n.Person != (incident.OnCallPerson{Name: "Bob Secondary"}) || !n.Start.Equal(t0.Add(5*24*time.Hour)) || !n.End.Equal(t0.Add(12*24*time.Hour)) {
		t.Errorf("weekly next: %+v", weekly.Next)
	}
	l2 := p.Levels[1]
	if l2.Level != 2 || len(l2.Rotations) != 2 {
		t.Fatalf("level 2: %+v", l2)
	}
	direct, daily := l2.Rotations[0], l2.Rotations[1]
	if direct.Name != "" || len(direct.Now) != 1 || direct.Now[0].Person.Name != "Frank Manager" || !direct.Now[0].End.IsZero() || direct.Next != nil {
		t.Errorf("direct target: %+v", direct)
	}
	if daily.Name != "Payments Secondary" || len(daily.Now) != 1 || daily.Now[0].Person.Name != "Dave Daily" ||
		daily.Next == nil || daily.Next.Person != (incident.OnCallPerson{Name: "Erin Daily", ChatID: "U0ERIN"}) || !daily.Next.Start.Equal(t0.Add(23*time.Hour)) {
		t.Errorf("daily: %+v next %+v", daily, daily.Next)
	}
	calls := srv.CallsTo("GET /oncalls")
	if len(calls) != 1 {
		t.Fatalf("GET /oncalls calls: %d", len(calls))
	}
	q := calls[0].Query
	if q.Get("escalation_policy_ids[]") != "PEP0001" || q.Get("earliest") != "true" || q.Get("include[]") != "users" ||
		q.Get("since") != t0.Format(time.RFC3339) || q.Get("until") != t0.Add(30*24*time.Hour).Format(time.RFC3339) || q.Get("limit") != "100" {
		t.Errorf("GET /oncalls query: %v", q)
	}
	// Only the people shown are looked up in chat, each once.
	if want := []string{"alice@example.com", "dave@example.com", "frank@example.com", "bob@example.com", "erin@example.com"}; fmt.Sprint(dir.lookup) != fmt.Sprint(want) {
		t.Errorf("chat look-ups %v, want %v", dir.lookup, want)
	}
}

func TestOnCallResolvesSchedulesAndPoliciesByIDAndName(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	o := newOnCall(srv, clock, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		query, asked, filter, id string
		paths                    []string
	}{
		{"PSCH003", "the schedule Search Secondary", "schedule_ids[]", "PSCH003", []string{"Search"}},
		{"PEP0002", "the escalation policy Search", "escalation_policy_ids[]", "PEP0002", []string{"Search"}},
		{"payments PRIMARY", "the schedule Payments Primary", "schedule_ids[]", "PSCH001", []string{"Payments"}},
		{"search", "the escalation policy Search", "escalation_policy_ids[]", "PEP0002", []string{"Search"}},
		// Looks like an id, is a name: PagerDuty answers 404 for the id,
		// then the name search finds it.
		{"PLATFORM", "the escalation policy PLATFORM", "escalation_policy_ids[]", "PEP0003", []string{"PLATFORM"}},
	} {
		before := len(srv.CallsTo("GET /oncalls"))
		oc, err := o.OnCall(ctx, tc.query)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		var names []string
		for _, p := range oc.Paths {
			names = append(names, p.Name)
		}
		calls := srv.CallsTo("GET /oncalls")
		if oc.Asked != tc.asked || fmt.Sprint(names) != fmt.Sprint(tc.paths) || len(calls) != before+1 || calls[len(calls)-1].Query.Get(tc.filter) != tc.id {
			t.Errorf("%q: asked %q paths %v, calls %d, last query %v", tc.query, oc.Asked, names, len(calls)-before, calls[len(calls)-1].Query)
		}
	}
	if n := len(srv.CallsTo("GET /schedules/{id}")); n != 3 { // PSCH003, PEP0002, PLATFORM
		t.Errorf("GET /schedules/{id} calls: %d", n)
	}
}

func TestOnCallAmbiguousAndUnknownNamesAreHelpful(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	o := newOnCall(srv, clock, nil)
	ctx := context.Background()

	_, err := o.OnCall(ctx, "secondary")
	if incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("ambiguous: %v", err)
	}
	msg := incident.ErrorMessage(err)
	for _, want := range []string{"“secondary” matches more than one", "schedule Payments Secondary (PSCH002)", "schedule Search Secondary (PSCH003)", "`oncall PSCH002`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ambiguous reply %q lacks %q", msg, want)
		}
	}
	_, err = o.OnCall(ctx, "nope-team")
	if incident.ErrorCode(err) != incident.ENOTFOUND || !strings.Contains(incident.ErrorMessage(err), "no schedule or escalation policy named “nope-team”") ||
		!strings.Contains(incident.ErrorMessage(err), "`oncall` alone") {
		t.Fatalf("unknown: %v", err)
	}
	if n := len(srv.CallsTo("GET /oncalls")); n != 0 {
		t.Errorf("on-calls read for names that resolve to nothing: %d", n)
	}
	// A schedule no escalation policy uses has nobody on call in PagerDuty.
	oc, err := o.OnCall(ctx, "orphan")
	if err != nil || oc.Asked != "the schedule Orphan rotation" || len(oc.Paths) != 0 {
		t.Fatalf("orphan schedule: %+v, %v", oc, err)
	}
}

func TestOnCallReadsEveryPage(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	cfg := pdtest.Config{Token: apiToken, Now: clock.Now}
	// 130 policies of one person each, and a schedule on each of them:
	// 260 on-calls, three pages of at most 100.
	cfg.Schedules = []pdtest.Schedule{{ID: "PSCHALL", Name: "Everyone's weekly", Shifts: pdtest.Rotation(t0.Add(-time.Hour), 7*24*time.Hour, 2, "PU00000")}}
	for i := range 130 {
		id := fmt.Sprintf("PU%05d", i)
		cfg.Users = append(cfg.Users, pdtest.User{ID: id, Name: fmt.Sprintf("User %03d", i), Email: id + "@example.com"})
		cfg.Policies = append(cfg.Policies, pdtest.Policy{ID: fmt.Sprintf("PEP%05d", i), Name: fmt.Sprintf("Team %03d", i), Levels: [][]string{{id}, {"PSCHALL"}}})
	}
	srv := pdtest.New(t, cfg)
	oc, err := newOnCall(srv, clock, nil).OnCall(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(oc.Paths) != 130 || oc.Truncated || oc.Asked != "" {
		t.Fatalf("paths %d truncated %v", len(oc.Paths), oc.Truncated)
	}
	for i, p := range oc.Paths {
		if want := fmt.Sprintf("Team %03d", i); p.Name != want || len(p.Levels) != 2 || p.Levels[0].Rotations[0].Now[0].Person.Name != fmt.Sprintf("User %03d", i) ||
			p.Levels[1].Rotations[0].Name != "Everyone's weekly" {
			t.Fatalf("path %d: %+v", i, p)
		}
	}
	var offsets []string
	for _, c := range srv.CallsTo("GET /oncalls") {
		offsets = append(offsets, c.Query.Get("offset"))
		if c.Query.Has("escalation_policy_ids[]") || c.Query.Has("schedule_ids[]") {
			t.Errorf("no-argument query filters: %v", c.Query)
		}
	}
	if fmt.Sprint(offsets) != "[ 100 200]" {
		t.Errorf("offsets %q", offsets)
	}

	// Past MaxEntries the answer says it is incomplete.
	small := pagerduty.NewOnCall(pagerduty.OnCallConfig{Client: newClient(srv, prometheus.NewRegistry(), apiToken, ""), Clock: clock, MaxEntries: 150})
	oc, err = small.OnCall(context.Background(), "")
	if err != nil || !oc.Truncated {
		t.Fatalf("capped: truncated %v, %v", oc != nil && oc.Truncated, err)
	}
}

func TestOnCallCachesAnswersPerQueryBriefly(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	o := newOnCall(srv, clock, nil)
	ctx := context.Background()
	calls := func() int { return len(srv.CallsTo("GET /oncalls")) }
	ask := func(q string) *incident.OnCall {
		t.Helper()
		oc, err := o.OnCall(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return oc
	}
	ask("payments")
	ask("Payments")
	clock.Advance(59 * time.Second)
	ask(" PAYMENTS  ")
	if calls() != 1 {
		t.Fatalf("within a minute the same query asked PagerDuty %d times", calls())
	}
	ask("search")
	if calls() != 2 {
		t.Fatalf("another query shares the answer: %d calls", calls())
	}
	// The shift changes in PagerDuty: after the minute the answer shows it.
	srv.SetShifts("PSCH001", pdtest.Rotation(t0.Add(-time.Hour), 24*time.Hour, 3, "PCAROL1"))
	clock.Advance(time.Second)
	oc := ask("payments")
	if calls() != 3 || oc.Paths[0].Levels[0].Rotations[0].Now[0].Person.Name != "Carol Third" {
		t.Fatalf("after the minute: %d calls, now %+v", calls(), oc.Paths[0].Levels[0].Rotations[0].Now)
	}
}

func TestOnCallRateLimitIsAClearErrorAndNotCached(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	o := newOnCall(srv, clock, nil)
	ctx := context.Background()
	if _, err := o.OnCall(ctx, "search"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	srv.RateLimit("GET /oncalls", 1, 20)
	_, err := o.OnCall(ctx, "search")
	if err == nil || !strings.Contains(incident.ErrorMessage(err), "PagerDuty is rate limiting the bot") || !strings.Contains(incident.ErrorMessage(err), "in 20 seconds") {
		t.Fatalf("429: %v", err)
	}
	// Neither the failure nor the stale answer is kept: the next ask reads
	// PagerDuty again and succeeds.
	oc, err := o.OnCall(ctx, "search")
	if err != nil || len(oc.Paths) != 1 || len(srv.CallsTo("GET /oncalls")) != 3 {
		t.Fatalf("after the 429: %+v, %v, %d calls", oc, err, len(srv.CallsTo("GET /oncalls")))
	}
	// A refused token says what to fix.
	srv.Fail(pdtest.Fault{Route: "GET /schedules", Status: http.StatusUnauthorized, Code: 2006, Message: "Authentication failed"})
	_, err = o.OnCall(ctx, "elsewhere")
	if err == nil || !strings.Contains(incident.ErrorMessage(err), "PAGERDUTY_API_TOKEN") {
		t.Fatalf("401: %v", err)
	}
}

// TestOnCallSpamCostsOneRound: many people asking the same thing at once
// share one PagerDuty round (or its cached answer).
func TestOnCallSpamCostsOneRound(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	o := newOnCall(srv, clock, nil)
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := o.OnCall(context.Background(), "search")
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.CallsTo("GET /oncalls")); n != 1 {
		t.Errorf("20 concurrent asks made %d GET /oncalls", n)
	}
}

// limitedDirectory is a chat directory that is rate limited.
type limitedDirectory struct{ calls int }

func (d *limitedDirectory) LookupUserByEmail(context.Context, string) (string, error) {
	d.calls++
	return "", incident.Retryable(fmt.Errorf("rate limited"), time.Minute)
}

// TestOnCallChatRateLimitShowsNames: when the chat platform's rate limit
// is reached, the answer names the people instead of waiting, and asks no
// more.
func TestOnCallChatRateLimitShowsNames(t *testing.T) {
	clock := incidenttest.NewClock(t0)
	srv := onCallPD(t, clock)
	dir := &limitedDirectory{}
	oc, err := newOnCall(srv, clock, dir).OnCall(context.Background(), "payments")
	if err != nil {
		t.Fatal(err)
	}
	if now := oc.Paths[0].Levels[0].Rotations[0].Now[0].Person; now != (incident.OnCallPerson{Name: "Alice Oncall"}) || dir.calls != 1 {
		t.Errorf("person %+v after %d look-ups", now, dir.calls)
	}
}
