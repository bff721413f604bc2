// Package postmortem renders blameless postmortem drafts from an incident
// and its timeline, stores each draft as a new version with the incident,
// and posts it to the incident's channel as a Markdown file.
//
// Everything in a draft comes from the store: the incident's key times,
// roles, members, services and PagerDuty link, and its full timeline. What
// the bot cannot know (impact, contributing factors, what went well...) is
// left as prompts for the people who write the postmortem. A blameless
// review lists phrases in what people wrote that assign blame, with a
// suggested reframing; the people's text itself is quoted, never rewritten.
//
// The draft is the template postmortem.md.tmpl (see package templates)
// executed on Data. An operator's copy in BOT_TEMPLATES_DIR replaces the
// built-in one; a broken copy falls back to the built-in template with a
// warning.
package postmortem

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Data is what postmortem.md.tmpl receives. Times and durations are
// pre-formatted in the configured time zone; Incident and Events give custom
// templates the raw values.
type Data struct {
	ID          string // "INC-7"
	Title       string
	Description string
	// Severity is the current severity; WorstSeverity the worst it reached.
	Severity      string
	WorstSeverity string
	// SeverityChanges starts with the severity at declaration.
	SeverityChanges []Change
	Status          string
	// StatusChanges starts with the status at declaration.
	StatusChanges []Change
	Source        string // who opened it: "PagerDuty", "Slack", "the local shell"
	DeclaredBy    string
	Services      []string
	Roles         []Holder // every role, Person "" when nobody holds it
	Participants  []string
	PagerLinks    []Link
	Channel       string // "#inc-7-checkout-down", or ""
	Reopened      int

	KeyTimes []KeyTime
	// Durations from detection; "" when the moment has not happened.
	TimeToAcknowledge, TimeToMitigate, TimeToResolve string

	Timeline   []Day
	EventCount int
	Runbooks   []RunbookRun
	Followups  []Followup
	Review     []Finding
	ReviewMore int // findings beyond the first MaxFindings, not listed

	Version   int    // the stored version this draft becomes; 0 for a preview
	Generated string // when the draft was rendered
	Zone      string // the time zone of every time shown

	Incident *incident.Incident
	Events   []incident.Event
}

// Change is one step of the severity or status history.
type Change struct {
	At   string
	By   string
	From string // "" for the value at declaration
	To   string
	Text string
}

// Holder is a role and the person holding it.
type Holder struct {
	Role   string
	Person string
}

// Link is a labelled URL.
type Link struct {
	Label string
	URL   string
}

// KeyTime is one of the moments the metrics derive from.
type KeyTime struct {
	Name  string // Detected, Declared, Acknowledged, Mitigated, Resolved
	At    string // "" when it has not happened
	Since string // time since detection, "" for detection itself or when unknown
}

// Day groups the timeline by calendar day in the configured zone.
type Day struct {
	Date    string // "2026-11-20 (Friday)"
	Entries []Entry
}

// Entry is one timeline event.
type Entry struct {
	Time string // "10:02:13"
	Kind string // "Note", "Status", "Pinned message"...
	Who  string
	Text string // may span lines; indent it in lists
}

// RunbookRun is one finished runbook run.
type RunbookRun struct {
	At       string
	Runbook  string
	Outcome  string
	ExitCode string
	Duration string
	DryRun   bool
	By       string
}

// Followup is an action item recorded with `/incident followup`.
type Followup struct {
	ID      int
	Text    string
	Owner   string // "" when nobody owns it
	Due     string // "2026-12-15", or ""
	Overdue bool   // open and past its due date when the draft was made
	By      string
	At      string
	Done    bool
	DoneAt  string // when it was marked done, "" while open
	DoneBy  string
}

// Options adjust Build.
type Options struct {
	Location *time.Location // default UTC
	Now      time.Time      // when the draft is generated
	Version  int            // 0: a preview that is not stored
}

// MaxFindings caps the blameless review checklist; a longer one is noise.
const MaxFindings = 100

const (
	timeFormat = "2006-01-02 15:04:05"
	dayFormat  = "2006-01-02 (Monday)"
	clockOnly  = "15:04:05"
)

// Build gathers the draft's data from an incident and its timeline (in time
// order, as Tx.Timeline returns it).
func Build(inc *incident.Incident, events []incident.Event, opts Options) *Data {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	raw, rawEvents := inc, events
	inc, events = decoded(inc, events)
	ppl := peopleOf(inc, events)
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(timeFormat)
	}
	d := &Data{
		ID:          inc.ID(),
		Title:       inc.Title,
		Description: inc.Description,
		Severity:    inc.Severity.String(),
		Status:      string(inc.Status),
		Source:      sourceName(inc.Source),
		DeclaredBy:  ppl.actor(inc.DeclaredBy),
		Services:    inc.Services,
		Reopened:    inc.Reopened,
		EventCount:  len(events),
		Version:     opts.Version,
		Generated:   when(opts.Now),
		Zone:        loc.String(),
		Incident:    raw,
		Events:      rawEvents,
	}
	if inc.Chat.ChannelName != "" {
		d.Channel = "#" + inc.Chat.ChannelName
	}
	for _, r := range incident.Roles {
		d.Roles = append(d.Roles, Holder{Role: string(r), Person: ppl.person(inc.Roles[r])})
	}
	for _, id := range inc.People() {
		d.Participants = append(d.Participants, ppl.person(id))
	}
	d.PagerLinks = pagerLinks(inc, events)

	worst := incident.WorstSeverity(inc, events)
	for _, ev := range events {
		switch ev.Kind {
		case incident.EventDeclared:
			d.SeverityChanges = append(d.SeverityChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), To: ev.Data["severity"]})
			d.StatusChanges = append(d.StatusChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), To: ev.Data["status"]})
		case incident.EventSeverityChanged:
			d.SeverityChanges = append(d.SeverityChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), From: ev.Data["from"], To: ev.Data["to"], Text: ev.Text})
		case incident.EventStatusChanged:
			d.StatusChanges = append(d.StatusChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), From: ev.Data["from"], To: ev.Data["to"], Text: ev.Text})
		case incident.EventRunbookRan:
			d.Runbooks = append(d.Runbooks, runbookRun(ev, when(ev.At), ppl))
		}
	}
	d.WorstSeverity = worst.String()

	d.KeyTimes = []KeyTime{
		{Name: "Detected", At: when(inc.DetectedAt)},
		{Name: "Declared", At: when(inc.DeclaredAt), Since: since(inc.DetectedAt, inc.DeclaredAt)},
		{Name: "Acknowledged", At: when(inc.AcknowledgedAt), Since: since(inc.DetectedAt, inc.AcknowledgedAt)},
		{Name: "Mitigated", At: when(inc.MitigatedAt), Since: since(inc.DetectedAt, inc.MitigatedAt)},
		{Name: "Resolved", At: when(inc.ResolvedAt), Since: since(inc.DetectedAt, inc.ResolvedAt)},
	}
	d.TimeToAcknowledge = since(inc.DetectedAt, inc.AcknowledgedAt)
	d.TimeToMitigate = since(inc.DetectedAt, inc.MitigatedAt)
	d.TimeToResolve = since(inc.DetectedAt, inc.ResolvedAt)

	for _, ev := range events {
		t := ev.At.In(loc)
		date := t.Format(dayFormat)
		if len(d.Timeline) == 0 || d.Timeline[len(d.Timeline)-1].Date != date {
			d.Timeline = append(d.Timeline, Day{Date: date})
		}
		day := &d.Timeline[len(d.Timeline)-1]
		kind, who, text := describe(ev, ppl)
		day.Entries = append(day.Entries, Entry{Time: t.Format(clockOnly), Kind: kind, Who: who, Text: text})
	}

	for _, f := range inc.Followups {
		fu := Followup{
			ID: f.ID, Text: f.Text, Owner: ppl.person(f.Owner), Due: f.Due, By: ppl.actor(f.CreatedBy),
			At: when(f.CreatedAt), Done: f.Done, DoneAt: when(f.DoneAt),
			Overdue: !opts.Now.IsZero() && f.Overdue(opts.Now, loc),
		}
		if f.Done && f.DoneBy.Source != "" {
			fu.DoneBy = ppl.actor(f.DoneBy)
		}
		d.Followups = append(d.Followups, fu)
	}
	d.Review = review(inc, events, ppl, when)
	if len(d.Review) > MaxFindings {
		d.ReviewMore = len(d.Review) - MaxFindings
		d.Review = d.Review[:MaxFindings]
	}
	return d
}

func since(from, to time.Time) string {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return ""
	}
	return templates.Duration(to.Sub(from))
}

func sourceName(s incident.Source) string {
	switch s {
	case incident.SourcePagerDuty:
		return "PagerDuty"
	case incident.SourceSlack:
		return "Slack"
	case incident.SourceShell:
		return "the local shell"
	case incident.SourceBot:
		return "the bot"
	}
	return string(s)
}

// pagerLinks collects the PagerDuty incidents linked to inc: its own link
// and any incident a page or a pager event named.
func pagerLinks(inc *incident.Incident, events []incident.Event) []Link {
	var out []Link
	add := func(label, url string) {
		if url == "" || slices.ContainsFunc(out, func(l Link) bool { return l.URL == url }) {
			return
		}
		out = append(out, Link{Label: label, URL: url})
	}
	if p := inc.Pager; p.URL != "" {
		label := "PagerDuty incident " + p.IncidentID
		if p.Number != 0 {
			label = "PagerDuty incident #" + strconv.FormatInt(p.Number, 10)
		}
		if p.ServiceName != "" {
			label += " (" + p.ServiceName + ")"
		}
		add(label, p.URL)
	}
	for _, ev := range events {
		if ev.Kind == incident.EventPageSent || ev.Kind == incident.EventPagerEvent {
			add("PagerDuty incident "+cmp.Or(ev.Data["pager_incident"], "link"), ev.Data["url"])
		}
	}
	return out
}

func runbookRun(ev incident.Event, at string, ppl people) RunbookRun {
	r := RunbookRun{
		At: at, Runbook: ev.Data["runbook"], Outcome: ev.Data["outcome"], ExitCode: ev.Data["exit_code"],
		DryRun: ev.Data["dry_run"] == "true", By: ppl.actor(ev.Actor),
	}
	if ms, err := strconv.ParseInt(ev.Data["duration_ms"], 10, 64); err == nil {
		r.Duration = runDuration(time.Duration(ms) * time.Millisecond)
	}
	return r
}

// runbookName is the runbook of a runbook event with its (redacted)
// parameters, in a code span; "a runbook" when the request named none.
func runbookName(d map[string]string) string {
	if d["runbook"] == "" {
		return "a runbook"
	}
	s := "`" + d["runbook"] + "`"
	if p := d["params"]; p != "" {
		s += " " + p
	}
	return s
}

// runDuration shows runs under a second in milliseconds and short runs to
// a tenth of a second.
func runDuration(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	}
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return templates.Duration(d)
}

// describe renders an event for the timeline: its kind, who did it, and
// what happened. People's text is kept verbatim.
func describe(ev incident.Event, ppl people) (kind, who, text string) {
	d := ev.Data
	who = ppl.actor(ev.Actor)
	with := func(s string) string {
		if strings.TrimSpace(ev.Text) == "" {
			return s
		}
		return s + ": " + ev.Text
	}
	switch ev.Kind {
	case incident.EventDeclared:
		state := "acknowledged"
		if d["status"] == string(incident.StatusTriggered) {
			state = "unacknowledged"
		}
		return "Declared", who, fmt.Sprintf("%s, %s: %s", d["severity"], state, ev.Text)
	case incident.EventStatusChanged:
		s := fmt.Sprintf("%s → %s", d["from"], d["to"])
		if d["from"] == string(incident.StatusResolved) {
			s = "reopened (" + s + ")"
		}
		return "Status", who, with(s)
	case incident.EventSeverityChanged:
		return "Severity", who, with(fmt.Sprintf("%s → %s", d["from"], d["to"]))
	case incident.EventRoleAssigned:
		s := fmt.Sprintf("%s is now the %s", ppl.person(d["user"]), d["role"])
		if prev := d["previous"]; prev != "" {
			s += fmt.Sprintf(" (was %s)", ppl.person(prev))
		}
		return "Role", who, s
	case incident.EventNote:
		return "Note", who, ev.Text
	case incident.EventStatusUpdate:
		return "Status update", who, ev.Text
	case incident.EventMessagePinned:
		if a := d["author"]; a != "" {
			who = ppl.person(a)
		}
		return "Pinned message", who, ev.Text
	case incident.EventMemberJoined:
		return "Joined", who, "joined the channel"
	case incident.EventPageSent:
		s := "paged " + cmp.Or(d["target"], "PagerDuty")
		if u := d["url"]; u != "" {
			s += " (" + u + ")"
		}
		return "Page", who, with(s)
	case incident.EventEscalated:
		s := "escalated"
		if l := d["level"]; l != "" {
			s += " to level " + l
		}
		switch d["reason"] {
		case "ack_timeout":
			s += ", as nobody acknowledged in time"
		case "manual":
			s += " by hand"
		}
		return "Escalation", who, with(s)
	case incident.EventReminder:
		return "Reminder", who, ev.Text
	case incident.EventRunbookRequested:
		// One line per decision from the data (ev.Text is the chat line,
		// with mentions, and would repeat it).
		s := runbookName(d)
		if dec := d["decision"]; dec != "" {
			s += " " + strings.ReplaceAll(dec, "_", " ")
		}
		if r := d["reason"]; r != "" {
			s += " (" + r + ")"
		}
		return "Runbook", who, s
	case incident.EventRunbookRan:
		r := runbookRun(ev, "", ppl)
		s := runbookName(d) + " " + cmp.Or(r.Outcome, "finished")
		var facts []string
		if r.ExitCode != "" && !r.DryRun {
			facts = append(facts, "exit "+r.ExitCode)
		}
		if r.Duration != "" {
			facts = append(facts, r.Duration)
		}
		if r.DryRun {
			facts = append(facts, "dry run")
		}
		if len(facts) > 0 {
			s += " (" + strings.Join(facts, ", ") + ")"
		}
		return "Runbook", who, s
	case incident.EventPagerEvent:
		return "PagerDuty", who, with(cmp.Or(d["type"], "event"))
	case incident.EventPostmortemDrafted:
		return "Postmortem", who, "draft version " + d["version"]
	case incident.EventFollowupAdded:
		return "Follow-up", who, fmt.Sprintf("#%s: %s", d["id"], ev.Text)
	case incident.EventFollowupChanged:
		return "Follow-up", who, fmt.Sprintf("#%s %s: %s", d["id"], incident.FollowupChangeText(d, ppl.person), ev.Text)
	case incident.EventChannelCreated:
		return "Channel", who, ev.Text
	case incident.EventError:
		return "Problem", who, ev.Text
	}
	return string(ev.Kind), who, ev.Text
}

// people names the chat users of an incident. The store keeps user ids;
// display names are known only where an event's actor carried one.
type people map[string]string

func peopleOf(inc *incident.Incident, events []incident.Event) people {
	p := people{}
	learn := func(a incident.Actor) {
		if a.ID != "" && a.Name != "" && (a.Source == incident.SourceSlack || a.Source == incident.SourceShell) {
			p[a.ID] = a.Name
		}
	}
	learn(inc.DeclaredBy)
	learn(inc.AcknowledgedBy)
	for _, f := range inc.Followups {
		learn(f.CreatedBy)
		learn(f.DoneBy)
	}
	for _, ev := range events {
		learn(ev.Actor)
	}
	return p
}

// person names a chat user: their display name when known, otherwise a
// mention that Slack resolves when the text is pasted there.
func (p people) person(id string) string {
	if id == "" {
		return ""
	}
	if n := p[id]; n != "" {
		return n
	}
	return "<@" + id + ">"
}

func (p people) actor(a incident.Actor) string {
	switch a.Source {
	case incident.SourceSlack, incident.SourceShell:
		if a.ID != "" {
			return p.person(a.ID)
		}
	case incident.SourcePagerDuty:
		return cmp.Or(a.Name, a.ID, "someone") + " (PagerDuty)"
	case incident.SourceBot:
		return "incident-bot"
	}
	return cmp.Or(a.Name, a.ID, string(a.Source))
}

// names returns the known display names and ids, longest first, for
// spotting a person named in text.
func (p people) names() []string {
	var out []string
	for id, name := range p {
		for _, s := range []string{id, name} {
			if len([]rune(s)) >= 3 && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return out
}

// entities are the three characters Slack escapes in message text (and the
// shell escapes the same way).
var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// decoded returns copies of inc and events whose people-written text has
// Slack's entity escaping undone, so the draft shows "a < b" as written.
// Mentions (<@U123>) are kept.
func decoded(inc *incident.Incident, events []incident.Event) (*incident.Incident, []incident.Event) {
	c := *inc
	c.Title = entities.Replace(c.Title)
	c.Description = entities.Replace(c.Description)
	c.Followups = slices.Clone(c.Followups)
	for i := range c.Followups {
		c.Followups[i].Text = entities.Replace(c.Followups[i].Text)
	}
	evs := slices.Clone(events)
	for i := range evs {
		evs[i].Text = entities.Replace(evs[i].Text)
	}
	return &c, evs
}
