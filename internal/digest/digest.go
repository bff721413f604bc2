// Package digest builds the weekly incident digest, renders it with
// digest.md.tmpl, and posts it once a week on a cron schedule.
//
// Build is a pure function of the incidents, their timelines and a period.
// Periods are [From, To) between local midnights in BOT_TIMEZONE; a week is
// an ISO week (Monday to Sunday, "2026-W47"). The digest counts:
//
//   - Opened: incidents declared in the period (Incident.DeclaredAt, the
//     moment the bot opened them; detection can be a little earlier).
//   - Resolved: incidents whose status at the end of the period is resolved
//     and whose last resolution before that moment falls in the period. An
//     incident resolved and reopened within the period, open at its end, is
//     not resolved in it. One resolved in a period counts there even if it
//     is reopened later, and counts again in the period where it is
//     resolved again, so a past period's digest does not change afterwards.
//   - Reopened: incidents reopened (moved out of resolved) in the period.
//   - Severity: the worst severity an incident reached, so an incident
//     downgraded after its peak still counts as it was felt.
//   - Response times are incident.Incident's (README.md states them): from
//     the start of the problem (`started`, else detection).
//   - MTTA: over incidents first acknowledged in the period that were opened
//     unacknowledged (a PagerDuty trigger), or whose start was recorded; the
//     time from the start to the first acknowledgement. An incident declared
//     by a person in chat is acknowledged by that act and, without a
//     recorded start, has no time to acknowledge. An incident opened last
//     week and acknowledged this week counts this week.
//   - MTTR: over the incidents resolved in the period; the time from the
//     start to that resolution, including any time the incident spent
//     resolved before a reopen (the problem was not fixed).
//   - Median and p90: the median is the middle value (the mean of the two
//     middle values for an even count); p90 is the nearest-rank percentile,
//     the value at position ceil(0.9·n) of the sorted samples. No samples:
//     no value ("n/a"). The change is this period's value minus the
//     previous period's (the week before, or as many days before).
//   - Longest incidents: the incidents resolved in the period with the
//     longest time to resolve (at most 5).
//   - Still open: incidents declared before the end of the period whose
//     status at that moment was not resolved, with how long they had been
//     open then.
//   - Without a postmortem: incidents resolved in the period whose worst
//     severity was SEV1 or SEV2 and that have no postmortem draft yet (no
//     postmortem_drafted event on their timeline).
//   - Open follow-ups: follow-ups of any incident, added before the end of
//     the period and not done now (oldest first; the first 15 are listed).
//   - Runbooks: runs finished in the period (runbook_ran events), by
//     runbook, most used first (at most 5).
//
// Exactly once per week: a post is recorded under the idempotency key
// "digest:<week>" before its job is queued, and its state ("posting",
// "posted") around the post itself; see Scheduler and Poster.
package digest

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Record is one incident as Build needs it. Timeline is the incident's
// timeline in time order; it may be nil only for an incident that has not
// changed since before the previous period began (Load leaves those out to
// save reading), because Build then takes its current state as its state
// throughout both periods.
type Record struct {
	Incident *incident.Incident
	Timeline []incident.Event
}

// Input is what Build needs.
type Input struct {
	Period    Period
	Records   []Record
	Generated time.Time // when the digest is made; bounds "open for"
	// Names are the display names of the people the digest names
	// (follow-up owners); the mention stands in for anyone missing.
	Names incident.Names
}

// Digest is the data digest.md.tmpl receives. Its text fields (titles,
// follow-ups, services, owners) are escaped for Markdown with templates.Text
// or templates.Line, and runbook names are code spans, so templates place
// them as they are (in a table cell through cell).
type Digest struct {
	Label     string // "2026-W47" or "2026-11-01 to 2026-11-07"
	Range     string // "Mon 16 Nov to Sun 22 Nov 2026"
	PrevLabel string
	Zone      string
	Generated string

	Opened, Resolved, Reopened int
	PrevOpened, PrevResolved   int
	// BySeverity has a row for every severity, worst first; ByService and
	// BySource have the rows with something opened or resolved.
	BySeverity, ByService, BySource []Row

	MTTA, MTTR Stat

	Longest           []Item
	StillOpen         []Item
	WithoutPostmortem []Item
	Followups         []FollowupItem
	FollowupsOpen     int // all open follow-ups; Followups lists the oldest
	FollowupsOverdue  int // of those, past their due date at the end of the period
	// ByOwner groups the listed follow-ups by owner, oldest first within
	// each and owners by their oldest; the follow-ups nobody owns come
	// last.
	ByOwner  []OwnerFollowups
	Runbooks []RunbookUse
	// Quiet: nothing opened, resolved, reopened or open in the period; the
	// template then says so in a line instead of empty tables.
	Quiet bool

	Period, Previous Period
}

// Row counts incidents opened and resolved in the period for one value.
type Row struct {
	Name             string
	Opened, Resolved int
}

// Stat is a response-time metric over the period and the previous one.
type Stat struct {
	N, PrevN            int
	Median, P90         time.Duration // zero when N is 0
	PrevMedian, PrevP90 time.Duration
}

// Item is an incident in a list.
type Item struct {
	ID       string
	Number   int64
	Severity string // worst reached
	Status   string // at the end of the period
	Title    string
	Duration time.Duration // time to resolve, or open so far
}

// FollowupItem is an open follow-up.
type FollowupItem struct {
	Incident  string
	ID        int
	Text      string
	Owner     string // chat user id, "" if none
	OwnerName string // the owner for people, escaped for Markdown
	Added     time.Time
	Due       string // "2026-12-15", or ""
	Overdue   bool   // past its due date at the end of the period
}

// OwnerFollowups is one owner's open follow-ups.
type OwnerFollowups struct {
	Owner     string // chat user id, "" for nobody
	OwnerName string // escaped for Markdown; "nobody" when Owner is ""
	Items     []FollowupItem
	Overdue   int
}

// RunbookUse counts a runbook's runs in the period.
type RunbookUse struct {
	Runbook                          string
	Runs, Succeeded, Failed, DryRuns int
}

const (
	maxLongest   = 5
	maxRunbooks  = 5
	maxFollowups = 15
)

// Build computes the digest of in.Period.
func Build(in Input) *Digest {
	p := in.Period
	prev := p.Previous()
	d := &Digest{
		Label: p.Label(), Range: p.Range(), PrevLabel: prev.Label(),
		Zone: p.From.Location().String(), Generated: in.Generated.In(p.From.Location()).Format("2006-01-02 15:04 MST"),
		Period: p, Previous: prev,
	}
	bySev := map[string]*Row{}
	for _, s := range incident.Severities {
		bySev[s.String()] = &Row{Name: s.String()}
	}
	byService, bySource := map[string]*Row{}, map[string]*Row{}
	row := func(m map[string]*Row, name string) *Row {
		if m[name] == nil {
			m[name] = &Row{Name: name}
		}
		return m[name]
	}
	var tta, ttr, prevTTA, prevTTR []time.Duration
	runbooks := map[string]*RunbookUse{}
	end := p.To
	if !in.Generated.IsZero() && in.Generated.Before(end) {
		end = in.Generated // a period still running: open "so far"
	}

	names := in.Names
	for _, r := range in.Records {
		f := factsOf(r)
		inc := r.Incident
		services := escapeAll(inc.Services)
		if len(services) == 0 {
			services = []string{"(none)"}
		}
		count := func(add func(*Row)) {
			add(bySev[f.worst.String()])
			for _, s := range services {
				add(row(byService, s))
			}
			add(row(bySource, sourceName(inc.Source)))
		}
		if p.Contains(inc.DeclaredAt) {
			d.Opened++
			count(func(r *Row) { r.Opened++ })
		}
		if prev.Contains(inc.DeclaredAt) {
			d.PrevOpened++
		}
		if v, ok := f.acknowledgedIn(prev); ok {
			prevTTA = append(prevTTA, v)
		}
		if v, ok := f.acknowledgedIn(p); ok {
			tta = append(tta, v)
		}
		if v, ok := f.resolvedIn(prev); ok {
			d.PrevResolved++
			prevTTR = append(prevTTR, v)
		}
		if v, ok := f.resolvedIn(p); ok {
			d.Resolved++
			ttr = append(ttr, v)
			count(func(r *Row) { r.Resolved++ })
			item := f.item(p.To, v)
			d.Longest = append(d.Longest, item)
			if f.worst <= incident.SEV2 && !f.postmortem {
				d.WithoutPostmortem = append(d.WithoutPostmortem, item)
			}
		}
		if f.reopenedIn(p) {
			d.Reopened++
		}
		if inc.DeclaredAt.Before(p.To) && f.statusAt(p.To).Open() {
			d.StillOpen = append(d.StillOpen, f.item(p.To, end.Sub(inc.Start())))
		}
		for _, fu := range inc.Followups {
			// Open at the end of the period: added before it, and not done
			// or done only later.
			if fu.CreatedAt.Before(p.To) && (!fu.Done || !fu.DoneAt.Before(p.To)) {
				d.FollowupsOpen++
				fu.Done = false
				item := FollowupItem{
					Incident: inc.ID(), ID: fu.ID, Text: templates.Text(entities.Replace(fu.Text)),
					Owner: fu.Owner, Added: fu.CreatedAt, Due: fu.Due, Overdue: fu.Overdue(end, p.From.Location()),
				}
				if fu.Owner != "" {
					item.OwnerName = templates.Line(names.Name(fu.Owner))
				}
				if item.Overdue {
					d.FollowupsOverdue++
				}
				d.Followups = append(d.Followups, item)
			}
		}
		for _, ev := range r.Timeline {
			if ev.Kind != incident.EventRunbookRan || !p.Contains(ev.At) {
				continue
			}
			name := templates.Code(cmp.Or(ev.Data["runbook"], "(unnamed)"))
			u := runbooks[name]
			if u == nil {
				u = &RunbookUse{Runbook: name}
				runbooks[name] = u
			}
			u.Runs++
			switch {
			case ev.Data["dry_run"] == "true":
				u.DryRuns++
			case ev.Data["outcome"] == "succeeded":
				u.Succeeded++
			default:
				u.Failed++
			}
		}
	}

	d.MTTA = stat(tta, prevTTA)
	d.MTTR = stat(ttr, prevTTR)
	for _, s := range incident.Severities {
		d.BySeverity = append(d.BySeverity, *bySev[s.String()])
	}
	d.ByService = rows(byService)
	d.BySource = rows(bySource)

	slices.SortFunc(d.Longest, func(a, b Item) int {
		return cmp.Or(cmp.Compare(b.Duration, a.Duration), cmp.Compare(a.Number, b.Number))
	})
	d.Longest = d.Longest[:min(len(d.Longest), maxLongest)]
	byNumber := func(a, b Item) int { return cmp.Compare(a.Number, b.Number) }
	slices.SortFunc(d.StillOpen, byNumber)
	slices.SortFunc(d.WithoutPostmortem, byNumber)
	slices.SortFunc(d.Followups, func(a, b FollowupItem) int {
		return cmp.Or(a.Added.Compare(b.Added), strings.Compare(a.Incident, b.Incident), cmp.Compare(a.ID, b.ID))
	})
	d.Followups = d.Followups[:min(len(d.Followups), maxFollowups)]
	d.ByOwner = byOwner(d.Followups)
	d.Quiet = d.Opened == 0 && d.Resolved == 0 && d.Reopened == 0 && len(d.StillOpen) == 0
	for _, u := range runbooks {
		d.Runbooks = append(d.Runbooks, *u)
	}
	slices.SortFunc(d.Runbooks, func(a, b RunbookUse) int {
		return cmp.Or(cmp.Compare(b.Runs, a.Runs), strings.Compare(a.Runbook, b.Runbook))
	})
	d.Runbooks = d.Runbooks[:min(len(d.Runbooks), maxRunbooks)]
	return d
}

func escapeAll(xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, templates.Line(entities.Replace(x)))
	}
	return out
}

// byOwner groups follow-ups (oldest first) by owner, keeping that order:
// owners by their oldest follow-up, nobody's last.
func byOwner(items []FollowupItem) []OwnerFollowups {
	var out []OwnerFollowups
	index := map[string]int{}
	for _, it := range items {
		i, ok := index[it.Owner]
		if !ok {
			i = len(out)
			index[it.Owner] = i
			name := it.OwnerName
			if it.Owner == "" {
				name = "nobody"
			}
			out = append(out, OwnerFollowups{Owner: it.Owner, OwnerName: name})
		}
		out[i].Items = append(out[i].Items, it)
		if it.Overdue {
			out[i].Overdue++
		}
	}
	slices.SortStableFunc(out, func(a, b OwnerFollowups) int {
		return cmp.Compare(boolInt(a.Owner == ""), boolInt(b.Owner == ""))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rows sorts rows by activity, then name.
func rows(m map[string]*Row) []Row {
	out := make([]Row, 0, len(m))
	for _, r := range m {
		if r.Opened > 0 || r.Resolved > 0 {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(b.Opened+b.Resolved, a.Opened+a.Resolved), strings.Compare(a.Name, b.Name))
	})
	return out
}

func sourceName(s incident.Source) string {
	switch s {
	case incident.SourceSlack:
		return "Slack"
	case incident.SourcePagerDuty:
		return "PagerDuty"
	case incident.SourceShell:
		return "Shell"
	case "":
		return "(unknown)"
	}
	return string(s)
}

func stat(cur, prev []time.Duration) Stat {
	s := Stat{N: len(cur), PrevN: len(prev)}
	s.Median, _ = Median(cur)
	s.P90, _ = Percentile(cur, 90)
	s.PrevMedian, _ = Median(prev)
	s.PrevP90, _ = Percentile(prev, 90)
	return s
}

// Median returns the middle value of xs (the mean of the two middle values
// for an even count), and false when xs is empty.
func Median(xs []time.Duration) (time.Duration, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2, true
}

// Percentile returns the nearest-rank p-th percentile of xs (0 < p <= 100):
// the value at position ceil(p/100·n) in sorted order. It is false when xs
// is empty.
func Percentile(xs []time.Duration, p float64) (time.Duration, bool) {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1], true
}

// MedianText and the methods below format a Stat for templates.

// MedianText is the median, or "n/a" with no samples.
func (s Stat) MedianText() string { return durationOr(s.Median, s.N) }

// P90Text is the p90, or "n/a".
func (s Stat) P90Text() string { return durationOr(s.P90, s.N) }

// PrevMedianText is the previous period's median, or "n/a".
func (s Stat) PrevMedianText() string { return durationOr(s.PrevMedian, s.PrevN) }

// PrevP90Text is the previous period's p90, or "n/a".
func (s Stat) PrevP90Text() string { return durationOr(s.PrevP90, s.PrevN) }

// MedianChange is the change of the median from the previous period:
// "+4m 0s", "-1m 3s", "no change", or "n/a" when either has no samples.
func (s Stat) MedianChange() string { return change(s.Median, s.PrevMedian, s.N, s.PrevN) }

// P90Change is the change of the p90.
func (s Stat) P90Change() string { return change(s.P90, s.PrevP90, s.N, s.PrevN) }

func durationOr(d time.Duration, n int) string {
	if n == 0 {
		return "n/a"
	}
	return templates.Duration(d)
}

func change(cur, prev time.Duration, n, prevN int) string {
	switch delta := (cur - prev).Round(time.Second); {
	case n == 0 || prevN == 0:
		return "n/a"
	case delta == 0:
		return "no change"
	case delta > 0:
		return "+" + templates.Duration(delta)
	default:
		return templates.Duration(delta)
	}
}

// entities undoes Slack's escaping of people's text (the shell escapes the
// same way), so the digest shows "a < b" as it was written.
var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// facts are what Build derives from one record.
type facts struct {
	inc *incident.Incident
	// statuses are the status changes in time order, the declaration
	// first; nil without a timeline.
	statuses   []statusChange
	worst      incident.Severity
	triggered  bool // opened unacknowledged
	postmortem bool
}

type statusChange struct {
	at   time.Time
	from incident.Status
	to   incident.Status
}

func factsOf(r Record) facts {
	inc := r.Incident
	f := facts{inc: inc, worst: incident.WorstSeverity(inc, r.Timeline)}
	declared := false
	for _, ev := range r.Timeline {
		switch ev.Kind {
		case incident.EventDeclared:
			declared = true
			f.triggered = ev.Data["status"] == string(incident.StatusTriggered)
			f.statuses = append(f.statuses, statusChange{at: ev.At, to: incident.Status(ev.Data["status"])})
		case incident.EventStatusChanged:
			f.statuses = append(f.statuses, statusChange{at: ev.At, from: incident.Status(ev.Data["from"]), to: incident.Status(ev.Data["to"])})
		case incident.EventPostmortemDrafted:
			f.postmortem = true
		}
	}
	if !declared {
		// No timeline (or a timeline without its declaration): a person
		// declaring is acknowledged at once, a page is not.
		f.triggered = inc.AcknowledgedAt.After(inc.DeclaredAt) || (inc.AcknowledgedAt.IsZero() && inc.Status == incident.StatusTriggered)
	}
	return f
}

// statusAt is the incident's status just before t.
func (f facts) statusAt(t time.Time) incident.Status {
	if f.statuses == nil {
		return f.inc.Status // unchanged since before the periods
	}
	st := f.statuses[0].to
	for _, c := range f.statuses {
		if !c.at.Before(t) {
			break
		}
		st = c.to
	}
	return st
}

// lastResolution is the time of the last move to resolved before t.
func (f facts) lastResolution(t time.Time) (time.Time, bool) {
	if f.statuses == nil {
		r := f.inc.ResolvedAt
		return r, f.inc.Status == incident.StatusResolved && !r.IsZero() && r.Before(t)
	}
	var last time.Time
	for _, c := range f.statuses {
		if !c.at.Before(t) {
			break
		}
		if c.to == incident.StatusResolved {
			last = c.at
		}
	}
	return last, !last.IsZero()
}

// resolvedIn reports whether the incident counts as resolved in p, and its
// time to resolve.
func (f facts) resolvedIn(p Period) (time.Duration, bool) {
	if f.statusAt(p.To) != incident.StatusResolved {
		return 0, false
	}
	at, ok := f.lastResolution(p.To)
	if !ok || !p.Contains(at) || at.Before(f.inc.Start()) {
		return 0, false
	}
	return at.Sub(f.inc.Start()), true
}

// acknowledgedIn reports whether the incident's first acknowledgement is in
// p and counts for MTTA, and its time to acknowledge.
func (f facts) acknowledgedIn(p Period) (time.Duration, bool) {
	if !f.triggered && f.inc.StartedAt.IsZero() {
		return 0, false // declared by a person: acknowledged by that act
	}
	d, ok := f.inc.TimeToAcknowledge()
	if !ok || !p.Contains(f.inc.AcknowledgedAt) {
		return 0, false
	}
	return d, true
}

func (f facts) reopenedIn(p Period) bool {
	for _, c := range f.statuses {
		if c.from == incident.StatusResolved && c.to != incident.StatusResolved && p.Contains(c.at) {
			return true
		}
	}
	return false
}

func (f facts) item(at time.Time, d time.Duration) Item {
	return Item{
		ID: f.inc.ID(), Number: f.inc.Number, Severity: f.worst.String(), Status: string(f.statusAt(at)),
		Title: templates.Line(entities.Replace(f.inc.Title)), Duration: d,
	}
}
