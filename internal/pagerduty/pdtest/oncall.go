package pdtest

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// This file is the fake's on-call side: schedules, the escalation rules
// that name them, and GET /oncalls, /schedules and /schedules/{id}, with
// PagerDuty's wire format (api-schema reference/REST/openapiv3.json,
// PagerDuty/api-schema@91a06fb: "List all of the on-calls", "List
// schedules", "Get a schedule") and classic pagination (offset, limit,
// more, total).

// Schedule is an on-call schedule: its final shifts, after layers and
// overrides, which is all GET /oncalls shows of a schedule. A schedule is
// on call only through an escalation policy level that names it (Policy
// Levels may hold schedule ids as well as user ids), as in PagerDuty.
type Schedule struct {
	ID, Name string
	// TimeZone renders the shifts' start and end (default UTC), so
	// answers carry offsets as PagerDuty's do.
	TimeZone string
	Shifts   []Shift
}

// Shift is one user's turn on a schedule, [Start, End).
type Shift struct {
	UserID     string
	Start, End time.Time
}

// Rotation returns n back-to-back shifts of length turn from start, the
// users taking turns in order.
func Rotation(start time.Time, turn time.Duration, n int, users ...string) []Shift {
	out := make([]Shift, 0, n)
	for i := range n {
		s := start.Add(time.Duration(i) * turn)
		out = append(out, Shift{UserID: users[i%len(users)], Start: s, End: s.Add(turn)})
	}
	return out
}

// SetShifts replaces a schedule's shifts (an override, a new rotation).
func (s *Server) SetShifts(scheduleID string, shifts []Shift) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc := s.schedule(scheduleID); sc != nil {
		sc.Shifts = slices.Clone(shifts)
	}
}

func (s *Server) schedule(id string) *Schedule {
	for i := range s.cfg.Schedules {
		if s.cfg.Schedules[i].ID == id {
			return &s.cfg.Schedules[i]
		}
	}
	return nil
}

// onCallAt returns the users a schedule has on call at t.
func (sc *Schedule) onCallAt(t time.Time) []string {
	var out []string
	for _, sh := range sc.Shifts {
		if !sh.Start.After(t) && sh.End.After(t) {
			out = append(out, sh.UserID)
		}
	}
	return out
}

// maxLimit is PagerDuty's upper bound on limit (classic pagination).
const maxLimit = 100

// list answers one page of a list the PagerDuty way: limit (default 25, at
// most 100), offset, more, and total only when total=true.
func list(r rec, q url.Values, key string, items []map[string]any) {
	limit, offset := 25, 0
	for _, p := range []struct {
		name string
		v    *int
	}{{"limit", &limit}, {"offset", &offset}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", p.name+" must be a non-negative integer")
				return
			}
			*p.v = n
		}
	}
	if limit == 0 {
		limit = 25
	}
	limit = min(limit, maxLimit)
	page := []map[string]any{}
	if offset < len(items) {
		page = items[offset:min(offset+limit, len(items))]
	}
	var total any
	if q.Get("total") == "true" {
		total = len(items)
	}
	r.json(http.StatusOK, map[string]any{key: page, "limit": limit, "offset": offset, "more": offset+limit < len(items), "total": total})
}

func (s *Server) listSchedules(r rec, q url.Values) {
	var items []map[string]any
	for _, sc := range s.cfg.Schedules {
		if matches(sc.Name, q.Get("query")) {
			items = append(items, s.scheduleJSON(sc))
		}
	}
	list(r, q, "schedules", items)
}

func (s *Server) getSchedule(r rec, id string) {
	sc := s.schedule(id)
	if sc == nil {
		r.error(http.StatusNotFound, 2100, "Not Found")
		return
	}
	r.json(http.StatusOK, map[string]any{"schedule": s.scheduleJSON(*sc)})
}

func (s *Server) scheduleJSON(sc Schedule) map[string]any {
	var policies, users []any
	for _, p := range s.cfg.Policies {
		for _, lvl := range p.Levels {
			if slices.Contains(lvl, sc.ID) {
				policies = append(policies, ref3(p.ID, "escalation_policy_reference", p.Name, "escalation_policies"))
				break
			}
		}
	}
	var seen []string
	for _, sh := range sc.Shifts {
		if u := s.user(sh.UserID); u != nil && !slices.Contains(seen, u.ID) {
			seen = append(seen, u.ID)
			users = append(users, userRef(u))
		}
	}
	return map[string]any{"id": sc.ID, "type": "schedule", "name": sc.Name, "summary": sc.Name,
		"time_zone": cmp.Or(sc.TimeZone, "UTC"), "description": "",
		"self": "https://api.pagerduty.com/schedules/" + sc.ID, "html_url": "https://acme.pagerduty.com/schedules/" + sc.ID,
		"escalation_policies": orNil(policies), "users": orNil(users)}
}

// ref3 is a reference object to a thing at /{path}/{id}.
func ref3(id, typ, summary, path string) map[string]any {
	return map[string]any{"id": id, "type": typ, "summary": summary,
		"self": "https://api.pagerduty.com/" + path + "/" + id, "html_url": "https://acme.pagerduty.com/" + path + "/" + id}
}

// escalationRules renders a policy's levels as escalation_rules, each
// target a user_reference or a schedule_reference.
func (s *Server) escalationRules(p Policy) []any {
	rules := []any{}
	for i, lvl := range p.Levels {
		targets := []any{}
		for _, id := range lvl {
			if sc := s.schedule(id); sc != nil {
				targets = append(targets, ref3(sc.ID, "schedule_reference", sc.Name, "schedules"))
			} else if u := s.user(id); u != nil {
				targets = append(targets, userRef(u))
			}
		}
		rules = append(rules, map[string]any{"id": p.ID + "R" + strconv.Itoa(i+1), "escalation_delay_in_minutes": 30, "targets": targets})
	}
	return rules
}

// oncall is one entry of GET /oncalls.
type oncall struct {
	policy     *Policy
	level      int
	user       *User
	schedule   *Schedule // nil: the user is a target of the level itself
	start, end time.Time // zero for a permanent on-call
}

// listOnCalls is GET /oncalls: every on-call of every policy level that
// overlaps [since, until] (both default to now), filtered by
// escalation_policy_ids[], schedule_ids[] and user_ids[]; with
// earliest=true only the earliest of each (policy, level, user). A user
// who is a level's target directly is on call permanently (schedule, start
// and end null). include[]=users gives full user objects (with email).
func (s *Server) listOnCalls(r rec, q url.Values) {
	now := s.cfg.Now()
	since, until := now, now
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", p.name+" is not a valid date-time")
				return
			}
			*p.t = t
		}
	}
	switch {
	case until.Before(since):
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "until cannot be before since")
		return
	case until.After(now.Add(90 * 24 * time.Hour)):
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "On-call shifts are limited to 90 days in the future")
		return
	}
	policyIDs, scheduleIDs, userIDs := q["escalation_policy_ids[]"], q["schedule_ids[]"], q["user_ids[]"]
	var entries []oncall
	for pi := range s.cfg.Policies {
		p := &s.cfg.Policies[pi]
		if len(policyIDs) > 0 && !slices.Contains(policyIDs, p.ID) {
			continue
		}
		for li, lvl := range p.Levels {
			for _, id := range lvl {
				if sc := s.schedule(id); sc != nil {
					if len(scheduleIDs) > 0 && !slices.Contains(scheduleIDs, sc.ID) {
						continue
					}
					for _, sh := range sc.Shifts {
						if sh.Start.After(until) || !sh.End.After(since) {
							continue
						}
						if u := s.user(sh.UserID); u != nil {
							entries = append(entries, oncall{policy: p, level: li + 1, user: u, schedule: sc, start: sh.Start, end: sh.End})
						}
					}
				} else if u := s.user(id); u != nil && len(scheduleIDs) == 0 {
					entries = append(entries, oncall{policy: p, level: li + 1, user: u})
				}
			}
		}
	}
	if len(userIDs) > 0 {
		entries = slices.DeleteFunc(entries, func(e oncall) bool { return !slices.Contains(userIDs, e.user.ID) })
	}
	if q.Get("earliest") == "true" {
		type key struct {
			policy string
			level  int
			user   string
		}
		first := map[key]int{}
		var kept []oncall
		for _, e := range entries {
			k := key{e.policy.ID, e.level, e.user.ID}
			if i, ok := first[k]; !ok {
				first[k] = len(kept)
				kept = append(kept, e)
			} else if !kept[i].start.IsZero() && (e.start.IsZero() || e.start.Before(kept[i].start)) {
				kept[i] = e
			}
		}
		entries = kept
	}
	full := slices.Contains(q["include[]"], "users")
	items := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		items = append(items, s.oncallJSON(e, full))
	}
	list(r, q, "oncalls", items)
}

func (s *Server) oncallJSON(e oncall, fullUser bool) map[string]any {
	user := userRef(e.user)
	if fullUser {
		user = map[string]any{"id": e.user.ID, "type": "user", "name": e.user.Name, "summary": e.user.Name, "email": e.user.Email,
			"self": "https://api.pagerduty.com/users/" + e.user.ID, "html_url": "https://acme.pagerduty.com/users/" + e.user.ID}
	}
	out := map[string]any{
		"user":              user,
		"escalation_policy": ref3(e.policy.ID, "escalation_policy_reference", e.policy.Name, "escalation_policies"),
		"escalation_level":  e.level,
		"schedule":          nil, "start": nil, "end": nil,
	}
	if e.schedule != nil {
		loc := time.UTC
		if l, err := time.LoadLocation(e.schedule.TimeZone); err == nil {
			loc = l
		}
		out["schedule"] = ref3(e.schedule.ID, "schedule_reference", e.schedule.Name, "schedules")
		out["start"], out["end"] = e.start.In(loc).Format(time.RFC3339), e.end.In(loc).Format(time.RFC3339)
	}
	return out
}

// DemoToken is the REST API token of the Demo account.
const DemoToken = "pdtest-demo-token"

// Demo is an account to try `oncall` against by hand (`loadtest fakes
// --pagerduty-demo`): two escalation policies, Payments (a weekly schedule
// on level 1; a daily schedule and a manager on level 2) and Search (a
// weekly schedule), whose shifts are laid out around now.
func Demo(now time.Time) Config {
	day := 24 * time.Hour
	start := now.Truncate(time.Hour)
	return Config{
		Token: DemoToken,
		Users: []User{
			{ID: "PBOT001", Name: "Incident Bot", Email: "incident-bot@example.com"},
			{ID: "PALICE1", Name: "Alice Example", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Example", Email: "bob@example.com"},
			{ID: "PCAROL1", Name: "Carol Example", Email: "carol@example.com"},
			{ID: "PDAVE01", Name: "Dave Example", Email: "dave@example.com"},
			{ID: "PERIN01", Name: "Erin Example", Email: "erin@example.com"},
		},
		Services: []Service{{ID: "PSVC001", Name: "Payments API", EscalationPolicyID: "PEP0001"}},
		Schedules: []Schedule{
			{ID: "PSCH001", Name: "Payments primary", TimeZone: "Europe/Berlin", Shifts: Rotation(start.Add(-2*day), 7*day, 12, "PALICE1", "PBOB001", "PCAROL1")},
			{ID: "PSCH002", Name: "Payments secondary", Shifts: Rotation(start.Add(-3*time.Hour), day, 40, "PBOB001", "PCAROL1")},
			{ID: "PSCH003", Name: "Search weekly", Shifts: Rotation(start.Add(-4*day), 7*day, 12, "PERIN01", "PALICE1")},
		},
		Policies: []Policy{
			{ID: "PEP0001", Name: "Payments", Levels: [][]string{{"PSCH001"}, {"PSCH002", "PDAVE01"}}},
			{ID: "PEP0002", Name: "Search", Levels: [][]string{{"PSCH003"}}},
		},
	}
}
