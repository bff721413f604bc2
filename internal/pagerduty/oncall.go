package pagerduty

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/PagerDuty/go-pagerduty"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// OnCallConfig configures an OnCall.
type OnCallConfig struct {
	Client *Client
	// Directory finds the chat user of an on-call person by email; nil:
	// people are shown by name.
	Directory UserDirectory
	Clock     incident.Clock // default incident.SystemClock
	Logger    *zap.Logger
	// TTL is how long an answer is reused for the same query (default
	// 60s): a channel running `oncall` over and over costs PagerDuty one
	// answer a minute per query. Failures are never reused.
	TTL time.Duration
	// Ahead is how far ahead the next shift of each schedule is looked for
	// (default 30 days; PagerDuty answers at most 90 days ahead).
	Ahead time.Duration
	// MaxEntries bounds the on-call entries read for one answer (default
	// 1000, ten pages of 100); beyond it the answer says it is incomplete.
	MaxEntries int
	// Timeout bounds one answer's PagerDuty and chat look-ups (default 10s;
	// Slack gets "working on it" after 3s and the answer later).
	Timeout time.Duration
	// MaxPeople bounds the chat look-ups of one answer (default 50); the
	// others are shown by name.
	MaxPeople int
}

// OnCall answers who is on call from PagerDuty's REST API
// (incident.OnCallDirectory): escalation policies and schedules are
// resolved by name or id, and one GET /oncalls (every page) over
// [now, now+Ahead] with earliest=true gives, for each policy level and
// user, the current or else the next on-call; a schedule's next shift is
// the earliest one that starts after now.
//
// Known limit of earliest=true: PagerDuty keeps only the earliest on-call
// of each (policy, level, user), so a person on call now who is also next
// after a gap hides that later turn; the next shift shown is then someone
// else's.
type OnCall struct {
	cfg OnCallConfig
	log *zap.Logger

	mu       sync.Mutex
	cache    map[string]cachedOnCall
	inflight map[string]*onCallFlight
}

var _ incident.OnCallDirectory = (*OnCall)(nil)

type cachedOnCall struct {
	at  time.Time
	val *incident.OnCall
}

// onCallFlight is one PagerDuty round for a query that concurrent askers
// of the same query wait for instead of asking again.
type onCallFlight struct {
	done chan struct{}
	val  *incident.OnCall
	err  error
}

// maxCachedQueries bounds the answer cache (queries are typed by people).
const maxCachedQueries = 256

// NewOnCall returns an OnCall.
func NewOnCall(cfg OnCallConfig) *OnCall {
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Ahead <= 0 {
		cfg.Ahead = 30 * 24 * time.Hour
	}
	cfg.Ahead = min(cfg.Ahead, 89*24*time.Hour)
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxPeople <= 0 {
		cfg.MaxPeople = 50
	}
	return &OnCall{cfg: cfg, log: cfg.Logger.Named("pagerduty.oncall"), cache: map[string]cachedOnCall{}, inflight: map[string]*onCallFlight{}}
}

// OnCall answers who is on call on the escalation policies query names
// (a schedule or an escalation policy, by id or by name), or on every
// policy when query is empty. The answer is shared with other askers of the
// same query for TTL: do not change it.
func (o *OnCall) OnCall(ctx context.Context, query string) (*incident.OnCall, error) {
	query = incident.CleanLine(query)
	key := strings.ToLower(query)
	now := o.cfg.Clock.Now()
	o.mu.Lock()
	if c, ok := o.cache[key]; ok && o.cfg.TTL > 0 && !now.Before(c.at) && now.Sub(c.at) < o.cfg.TTL {
		o.mu.Unlock()
		return c.val, nil
	}
	if f := o.inflight[key]; f != nil {
		o.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return nil, incident.Errorf(incident.EINTERNAL, "PagerDuty did not answer in time; try again in a minute.")
		}
	}
	f := &onCallFlight{done: make(chan struct{}), err: errOnCallPanicked}
	o.inflight[key] = f
	o.mu.Unlock()
	// The waiters are released whatever happens, a panic included (it
	// goes on up to whoever recovers the command).
	defer func() {
		o.mu.Lock()
		delete(o.inflight, key)
		delete(o.cache, key) // a failure drops the previous answer too
		if f.err == nil && o.cfg.TTL > 0 {
			if len(o.cache) >= maxCachedQueries {
				clear(o.cache)
			}
			o.cache[key] = cachedOnCall{at: now, val: f.val}
		}
		o.mu.Unlock()
		close(f.done)
	}()
	val, err := o.fetch(ctx, query, now)
	if err != nil {
		err = o.userError(query, err)
	}
	f.val, f.err = val, err
	return val, err
}

// errOnCallPanicked is what waiters get when the round they waited for
// panicked.
var errOnCallPanicked = incident.Errorf(incident.EINTERNAL, "Something went wrong on our side; the details are in the bot's log.")

// userError turns a failure into a message for the person who asked; the
// details go to the log.
func (o *OnCall) userError(query string, err error) error {
	var dom *incident.Error
	if errors.As(err, &dom) {
		return err
	}
	o.log.Warn("cannot read on-calls from PagerDuty", zap.String("query", query), zap.Error(err))
	var api *APIError
	after, retry := incident.IsRetryable(err)
	switch {
	case errors.As(err, &api) && api.Status == http.StatusTooManyRequests:
		wait := "in a minute"
		if after > 0 {
			wait = fmt.Sprintf("in %d seconds", int(after.Round(time.Second)/time.Second))
		}
		return incident.Errorf(incident.EINTERNAL, "PagerDuty is rate limiting the bot right now (too many requests); try `oncall` again %s.", wait)
	case errors.As(err, &api) && !retry:
		return incident.Errorf(incident.EINTERNAL, "PagerDuty did not let the bot read who is on call: %s.", api.Plain())
	}
	return incident.Errorf(incident.EINTERNAL, "PagerDuty did not answer; try `oncall` again in a minute.")
}

// onCallTarget is what a query resolved to.
type onCallTarget struct {
	kind string // KindSchedule or KindEscalationPolicy
	id   string
	name string
}

// KindSchedule is an on-call schedule (a target of `oncall`).
const KindSchedule = "schedule"

func (t onCallTarget) String() string {
	return fmt.Sprintf("%s %s (%s)", kindName(t.kind), t.name, t.id)
}

func kindName(kind string) string { return strings.ReplaceAll(kind, "_", " ") }

func (o *OnCall) fetch(ctx context.Context, query string, now time.Time) (*incident.OnCall, error) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	c := o.cfg.Client
	opts := pagerduty.ListOnCallOptions{
		// One entry per (policy, level, user): whoever is on call now, and
		// everyone else's next turn within the window ("useful for
		// determining when the "next" on-calls are", api-schema
		// openapiv3.json, GET /oncalls, parameter earliest).
		Earliest: true,
		Includes: []string{"users"}, // emails, for the chat look-up, in the same answer
		Since:    now.UTC().Format(time.RFC3339),
		Until:    now.Add(o.cfg.Ahead).UTC().Format(time.RFC3339),
	}
	out := &incident.OnCall{System: Name, At: now, Ahead: o.cfg.Ahead}
	if query != "" {
		t, err := c.findOnCallTarget(ctx, query)
		if err != nil {
			return nil, err
		}
		out.Asked = fmt.Sprintf("the %s %s", kindName(t.kind), t.name)
		switch t.kind {
		case KindSchedule:
			opts.ScheduleIDs = []string{t.id}
		default:
			opts.EscalationPolicyIDs = []string{t.id}
		}
	}
	entries, truncated, err := c.listOnCalls(ctx, opts, o.cfg.MaxEntries)
	if err != nil {
		return nil, err
	}
	out.Truncated = truncated
	out.Paths = o.group(ctx, entries, now)
	return out, nil
}

// listOnCalls reads every page of GET /oncalls (classic pagination:
// offset += limit while more, api-schema Pagination), at most max entries.
func (c *Client) listOnCalls(ctx context.Context, opts pagerduty.ListOnCallOptions, max int) ([]pagerduty.OnCall, bool, error) {
	var out []pagerduty.OnCall
	opts.Limit = 100 // PagerDuty's largest page
	for {
		cctx, info := withCall(ctx)
		resp, err := c.pd.ListOnCallsWithContext(cctx, opts)
		if err := classify("GET /oncalls", info, err); err != nil {
			return nil, false, err
		}
		out = append(out, resp.OnCalls...)
		switch {
		case len(out) >= max:
			return out[:max], len(out) > max || resp.More, nil
		case !resp.More || len(resp.OnCalls) == 0:
			return out, false, nil
		}
		opts.Offset += uint(len(resp.OnCalls))
	}
}

// findOnCallTarget resolves what `oncall` names: a schedule or an
// escalation policy, by id (GET /schedules/{id}, GET
// /escalation_policies/{id}) or by name (GET /schedules?query=, GET
// /escalation_policies?query=: "showing only the records whose name
// matches the query", api-schema openapiv3.json). An id-like word that is
// no id is looked up as a name too.
func (c *Client) findOnCallTarget(ctx context.Context, name string) (onCallTarget, error) {
	if pdID.MatchString(name) {
		cctx, info := withCall(ctx)
		if s, err := c.pd.GetScheduleWithContext(cctx, name, pagerduty.GetScheduleOptions{}); err == nil {
			return onCallTarget{kind: KindSchedule, id: s.ID, name: cmp.Or(s.Name, s.Summary)}, nil
		} else if err := classify("GET /schedules/{id}", info, err); !notFound(err) {
			return onCallTarget{}, err
		}
		cctx, info = withCall(ctx)
		if p, err := c.pd.GetEscalationPolicyWithContext(cctx, name, nil); err == nil {
			return onCallTarget{kind: KindEscalationPolicy, id: p.ID, name: cmp.Or(p.Name, p.Summary)}, nil
		} else if err := classify("GET /escalation_policies/{id}", info, err); !notFound(err) {
			return onCallTarget{}, err
		}
	}
	var candidates []onCallTarget
	cctx, info := withCall(ctx)
	schedules, err := c.pd.ListSchedulesWithContext(cctx, pagerduty.ListSchedulesOptions{Query: name, Limit: 100})
	if err := classify("GET /schedules", info, err); err != nil {
		return onCallTarget{}, err
	}
	for _, s := range schedules.Schedules {
		candidates = append(candidates, onCallTarget{kind: KindSchedule, id: s.ID, name: cmp.Or(s.Name, s.Summary)})
	}
	cctx, info = withCall(ctx)
	policies, err := c.pd.ListEscalationPoliciesWithContext(cctx, pagerduty.ListEscalationPoliciesOptions{Query: name, Limit: 100})
	if err := classify("GET /escalation_policies", info, err); err != nil {
		return onCallTarget{}, err
	}
	for _, p := range policies.EscalationPolicies {
		candidates = append(candidates, onCallTarget{kind: KindEscalationPolicy, id: p.ID, name: cmp.Or(p.Name, p.Summary)})
	}
	t, matched := choose(name, candidates, func(t onCallTarget) (string, string) { return t.name, t.id })
	switch {
	case len(matched) == 1:
		return t, nil
	case len(matched) == 0:
		return onCallTarget{}, incident.Errorf(incident.ENOTFOUND,
			"PagerDuty has no schedule or escalation policy named “%s”. `oncall` alone shows who is on call on every escalation policy.", incident.Clip(name, 64))
	}
	names := make([]string, 0, 10)
	for _, m := range matched[:min(len(matched), 10)] {
		names = append(names, m.String())
	}
	more := ""
	if n := len(matched) - len(names); n > 0 || schedules.More || policies.More {
		more = " and more"
	}
	return onCallTarget{}, incident.Errorf(incident.EINVALID, "“%s” matches more than one: %s%s. Name one exactly, or give its id (`oncall %s`).",
		incident.Clip(name, 64), strings.Join(names, "; "), more, matched[0].id)
}

// choose picks what a name means among candidates found by a partial-name
// search: the one whose name is exactly it (any letter case) or whose id
// it is, else the only candidate. It returns the choice and the candidates
// that matched equally well: exactly one when the choice stands, none when
// nothing matched, several when the name is ambiguous.
func choose[T any](name string, candidates []T, key func(T) (name, id string)) (T, []T) {
	var exact []T
	for _, c := range candidates {
		if n, id := key(c); strings.EqualFold(n, name) || id == name {
			exact = append(exact, c)
		}
	}
	var zero T
	switch {
	case len(exact) == 1:
		return exact[0], exact
	case len(exact) > 1:
		return zero, exact
	case len(candidates) == 1:
		return candidates[0], candidates
	}
	return zero, candidates
}

// person is someone an answer shows, with their PagerDuty user id and
// email.
type person struct {
	shift     incident.OnCallShift
	id, email string
}

// group turns on-call entries into paths, levels and rotations, with the
// people's chat users.
func (o *OnCall) group(ctx context.Context, entries []pagerduty.OnCall, now time.Time) []incident.OnCallPath {
	type rotation struct {
		policy, level int // indexes into paths and their levels
		rot           incident.OnCallRotation
		now           []person
		next          *person
	}
	type rotKey struct {
		policy string
		level  uint
		sched  string
	}
	var paths []incident.OnCallPath
	pathIdx := map[string]int{}
	var rots []*rotation
	rotIdx := map[rotKey]*rotation{}
	for _, e := range entries {
		ep := e.EscalationPolicy
		pi, ok := pathIdx[ep.ID]
		if !ok {
			pi = len(paths)
			pathIdx[ep.ID] = pi
			paths = append(paths, incident.OnCallPath{ID: ep.ID, Name: cmp.Or(ep.Name, ep.Summary, ep.ID), URL: ep.HTMLURL})
		}
		k := rotKey{ep.ID, e.EscalationLevel, e.Schedule.ID}
		r := rotIdx[k]
		if r == nil {
			r = &rotation{policy: pi, level: int(e.EscalationLevel), rot: incident.OnCallRotation{
				ID: e.Schedule.ID, Name: cmp.Or(e.Schedule.Name, e.Schedule.Summary, e.Schedule.ID), URL: e.Schedule.HTMLURL,
			}}
			rotIdx[k] = r
			rots = append(rots, r)
		}
		pp := person{
			shift: incident.OnCallShift{
				Person: incident.OnCallPerson{Name: cmp.Or(e.User.Name, e.User.Summary, e.User.ID)},
				Start:  parseTime(e.Start), End: parseTime(e.End),
			},
			id: e.User.ID, email: e.User.Email,
		}
		switch start, end := pp.shift.Start, pp.shift.End; {
		case !start.IsZero() && start.After(now):
			if r.next == nil || start.Before(r.next.shift.Start) {
				r.next = &pp
			}
		case end.IsZero() || end.After(now): // not over already (clocks differ)
			r.now = append(r.now, pp)
		}
	}

	// Chat users only for the people shown, the current ones first.
	var shown []*person
	for _, r := range rots {
		for i := range r.now {
			shown = append(shown, &r.now[i])
		}
	}
	for _, r := range rots {
		if r.next != nil {
			shown = append(shown, r.next)
		}
	}
	chat := o.chatUsers(ctx, shown)

	levels := make([]map[int]*incident.OnCallLevel, len(paths))
	for _, r := range rots {
		for _, pp := range r.now {
			pp.shift.Person.ChatID = chat[pp.id]
			r.rot.Now = append(r.rot.Now, pp.shift)
		}
		if r.next != nil {
			next := r.next.shift
			next.Person.ChatID = chat[r.next.id]
			r.rot.Next = &next
		}
		slices.SortFunc(r.rot.Now, func(a, b incident.OnCallShift) int { return strings.Compare(a.Person.Name, b.Person.Name) })
		if levels[r.policy] == nil {
			levels[r.policy] = map[int]*incident.OnCallLevel{}
		}
		l := levels[r.policy][r.level]
		if l == nil {
			l = &incident.OnCallLevel{Level: r.level}
			levels[r.policy][r.level] = l
		}
		l.Rotations = append(l.Rotations, r.rot)
	}
	byName := func(a, b string, ida, idb string) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), strings.Compare(ida, idb))
	}
	for pi := range paths {
		p := &paths[pi]
		for _, l := range levels[pi] {
			// A person on the level directly (no schedule) comes first.
			slices.SortFunc(l.Rotations, func(a, b incident.OnCallRotation) int { return byName(a.Name, b.Name, a.ID, b.ID) })
			p.Levels = append(p.Levels, *l)
		}
		slices.SortFunc(p.Levels, func(a, b incident.OnCallLevel) int { return cmp.Compare(a.Level, b.Level) })
	}
	slices.SortFunc(paths, func(a, b incident.OnCallPath) int { return byName(a.Name, b.Name, a.ID, b.ID) })
	return paths
}

// chatUsers finds the chat users of people by their PagerDuty email (the
// chat adapter's cached look-up), at most MaxPeople look-ups, and returns
// them by PagerDuty user id. A person whose look-up fails is shown by name.
func (o *OnCall) chatUsers(ctx context.Context, people []*person) map[string]string {
	out := map[string]string{}
	if o.cfg.Directory == nil {
		return out
	}
	// Someone is waiting for the answer: a look-up that would wait long
	// for the chat platform's rate limit is given up, and so are the rest.
	ctx = incident.WithWaitBudget(ctx, time.Second)
	looked := 0
	for _, p := range people {
		if _, done := out[p.id]; done || p.email == "" || looked >= o.cfg.MaxPeople || ctx.Err() != nil {
			continue
		}
		looked++
		id, err := o.cfg.Directory.LookupUserByEmail(ctx, p.email)
		if err != nil {
			if incident.ErrorCode(err) != incident.ENOTFOUND {
				o.log.Debug("cannot find the chat user of an on-call person", zap.String("pager_user", p.id), zap.Error(err))
			}
			if _, limited := incident.IsRetryable(err); limited {
				return out
			}
			id = ""
		}
		out[p.id] = id
	}
	return out
}
