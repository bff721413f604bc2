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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Data is what postmortem.md.tmpl receives. Times and durations are
// pre-formatted in the configured time zone. Every string that holds what
// people or PagerDuty wrote (titles, text, names, services, labels) is
// already escaped for Markdown with templates.Text (Title with
// templates.Line; runbook names are code spans), so a template can place
// it as inline text or, through cell, in a table cell, and it adds no
// structure. Incident and Events give custom templates the raw values,
// unescaped: a template that uses them must escape them itself (md, line,
// code).
type Data struct {
	ID          string // "INC-7"
	Title       string
	Description string // the summary people wrote (`summary`), or ""
	Impact      string // the impact people wrote (`impact`), or ""
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
	// The response times (incident.Incident.TimeToDetect and the others,
	// defined in README.md): from the start of the problem (`started`, else
	// detection); "" when one does not apply or has not happened.
	TimeToDetect, TimeToAcknowledge, TimeToMitigate, TimeToResolve string
	// StartedSet says the start was recorded with `started`; otherwise the
	// times are measured from detection.
	StartedSet bool
	// AckByDeclaring: a person declared the incident, which acknowledged it.
	AckByDeclaring bool
	DetectedAt     string

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
	Name  string // Started (when recorded), Detected, Declared, Acknowledged, Mitigated, Resolved
	At    string // "" when it has not happened
	Since string // time since the start of the problem, "" for the start itself or when unknown
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
	// Names are people's display names (see PeopleIDs); they replace the
	// names the timeline recorded and the mentions in what people wrote.
	Names incident.Names
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
	ppl := peopleOf(inc, events)
	for id, name := range opts.Names {
		if name != "" {
			ppl[id] = name
		}
	}
	inc, events = decoded(inc, events, ppl)
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(timeFormat)
	}
	d := &Data{
		ID:             inc.ID(),
		Title:          templates.Line(inc.Title),
		Description:    templates.Text(inc.Description),
		Impact:         templates.Text(inc.Impact),
		StartedSet:     !inc.StartedAt.IsZero(),
		AckByDeclaring: inc.AcknowledgedOnDeclare(),
		DetectedAt:     when(inc.DetectedAt),
		Severity:       inc.Severity.String(),
		Status:         string(inc.Status),
		Source:         sourceName(inc.Source),
		DeclaredBy:     ppl.actor(inc.DeclaredBy),
		Services:       escapeAll(inc.Services),
		Reopened:       inc.Reopened,
		Version:        opts.Version,
		Generated:      when(opts.Now),
		Zone:           loc.String(),
		Incident:       raw,
		Events:         rawEvents,
	}
	if inc.Chat.ChannelName != "" {
		d.Channel = "#" + templates.Text(inc.Chat.ChannelName)
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
			d.SeverityChanges = append(d.SeverityChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), To: templates.Line(ev.Data["severity"])})
			d.StatusChanges = append(d.StatusChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), To: templates.Line(ev.Data["status"])})
		case incident.EventSeverityChanged:
			d.SeverityChanges = append(d.SeverityChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), From: templates.Line(ev.Data["from"]), To: templates.Line(ev.Data["to"]), Text: templates.Text(ev.Text)})
		case incident.EventStatusChanged:
			d.StatusChanges = append(d.StatusChanges, Change{At: when(ev.At), By: ppl.actor(ev.Actor), From: templates.Line(ev.Data["from"]), To: templates.Line(ev.Data["to"]), Text: templates.Text(ev.Text)})
		case incident.EventRunbookRan:
			d.Runbooks = append(d.Runbooks, runbookRun(ev, when(ev.At), ppl))
		}
	}
	d.WorstSeverity = worst.String()

	start := inc.Start()
	if d.StartedSet {
		d.KeyTimes = append(d.KeyTimes, KeyTime{Name: "Started", At: when(inc.StartedAt)})
	}
	d.KeyTimes = append(d.KeyTimes,
		KeyTime{Name: "Detected", At: when(inc.DetectedAt), Since: since(start, inc.DetectedAt, d.StartedSet)},
		KeyTime{Name: "Declared", At: when(inc.DeclaredAt), Since: since(start, inc.DeclaredAt, true)},
		KeyTime{Name: "Acknowledged", At: when(inc.AcknowledgedAt), Since: since(start, inc.AcknowledgedAt, true)},
		KeyTime{Name: "Mitigated", At: when(inc.MitigatedAt), Since: since(start, inc.MitigatedAt, true)},
		KeyTime{Name: "Resolved", At: when(inc.ResolvedAt), Since: since(start, inc.ResolvedAt, true)},
	)
	d.TimeToDetect = duration(inc.TimeToDetect())
	d.TimeToAcknowledge = duration(inc.TimeToAcknowledge())
	d.TimeToMitigate = duration(inc.TimeToMitigate())
	d.TimeToResolve = duration(inc.TimeToResolve())

	for _, ev := range events {
		if askedOnly(ev) {
			continue
		}
		d.EventCount++
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
			ID: f.ID, Text: templates.Text(f.Text), Owner: ppl.person(f.Owner), Due: templates.Line(f.Due), By: ppl.actor(f.CreatedBy),
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
	for i := range d.Review {
		f := &d.Review[i]
		// Where is made of describe's escaped names and the bot's words.
		f.Phrase, f.Quote = templates.Line(f.Phrase), templates.Line(f.Quote)
		f.Rule, f.Suggestion = templates.Line(f.Rule), templates.Line(f.Suggestion)
	}
	return d
}

func escapeAll(xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, templates.Line(x))
	}
	return out
}

func duration(d time.Duration, ok bool) string {
	if !ok {
		return ""
	}
	return templates.Duration(d)
}

func since(from, to time.Time, show bool) string {
	if !show || from.IsZero() || to.IsZero() || to.Before(from) {
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
		url = linkTarget(url)
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
		add(templates.Line(label), p.URL)
	}
	for _, ev := range events {
		if ev.Kind == incident.EventPageSent || ev.Kind == incident.EventPagerEvent {
			add(templates.Line("PagerDuty incident "+cmp.Or(ev.Data["pager_incident"], "link")), ev.Data["url"])
		}
	}
	return out
}

// linkTarget returns url if it is an http(s) URL, with the characters that
// could end a Markdown link destination percent-encoded, and "" otherwise
// (a javascript: link from a webhook is dropped, not linked).
func linkTarget(url string) string {
	lower := strings.ToLower(url)
	if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
		return ""
	}
	return strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "\n", "%0A", "\r", "%0D", "\t", "%09", "\\", "%5C", "`", "%60", "[", "%5B", "]", "%5D").Replace(url)
}

// askedOnly reports a runbook event that records only that the bot asked
// for a confirmation or an approval. The postmortem leaves it out: the
// answer (confirmed, canceled, approved, denied, expired) is the decision,
// and the run is its own line, so a run reads as one line per decision and
// one for the run, not "requested" then "ran".
func askedOnly(ev incident.Event) bool {
	if ev.Kind != incident.EventRunbookRequested {
		return false
	}
	switch ev.Data["decision"] {
	case "confirm_requested", "approval_requested":
		return true
	}
	return false
}

// runbookRun describes a runbook_ran event; Runbook is a code span and the
// other fields are escaped.
func runbookRun(ev incident.Event, at string, ppl people) RunbookRun {
	r := RunbookRun{
		At: at, Runbook: templates.Code(ev.Data["runbook"]), Outcome: templates.Line(ev.Data["outcome"]), ExitCode: templates.Line(ev.Data["exit_code"]),
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
	s := templates.Code(d["runbook"])
	if p := d["params"]; p != "" {
		s += " " + templates.Line(p)
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
// what happened. People's text is kept verbatim, escaped for Markdown;
// the markup around it is the bot's.
func describe(ev incident.Event, ppl people) (kind, who, text string) {
	d := ev.Data
	val := func(k string) string { return templates.Line(d[k]) }
	who = ppl.actor(ev.Actor)
	body := templates.Text(ev.Text)
	with := func(s string) string {
		if body == "" {
			return s
		}
		return s + ": " + body
	}
	switch ev.Kind {
	case incident.EventDeclared:
		state := "acknowledged"
		if d["status"] == string(incident.StatusTriggered) {
			state = "unacknowledged"
		}
		return "Declared", who, fmt.Sprintf("%s, %s: %s", val("severity"), state, body)
	case incident.EventStatusChanged:
		s := fmt.Sprintf("%s → %s", val("from"), val("to"))
		if d["from"] == string(incident.StatusResolved) {
			s = "reopened (" + s + ")"
		}
		return "Status", who, with(s)
	case incident.EventSeverityChanged:
		return "Severity", who, with(fmt.Sprintf("%s → %s", val("from"), val("to")))
	case incident.EventRoleAssigned:
		s := fmt.Sprintf("%s is now the %s", ppl.person(d["user"]), val("role"))
		if prev := d["previous"]; prev != "" {
			s += fmt.Sprintf(" (was %s)", ppl.person(prev))
		}
		return "Role", who, s
	case incident.EventNote:
		return "Note", who, body
	case incident.EventStatusUpdate:
		return "Status update", who, body
	case incident.EventMessagePinned:
		if a := d["author"]; a != "" {
			who = ppl.person(a)
		}
		return "Pinned message", who, body
	case incident.EventMemberJoined:
		return "Joined", who, "joined the channel"
	case incident.EventPageSent:
		s := "paged " + cmp.Or(val("target"), "PagerDuty")
		if u := linkTarget(d["url"]); u != "" {
			s += " (" + u + ")"
		}
		return "Page", who, with(s)
	case incident.EventEscalated:
		s := "escalated"
		if l := val("level"); l != "" {
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
		return "Reminder", who, body
	case incident.EventRunbookRequested:
		// One line per decision from the data (ev.Text is the chat line,
		// with mentions, and would repeat it).
		s := runbookName(d)
		if dec := d["decision"]; dec != "" {
			s += " " + templates.Line(strings.ReplaceAll(dec, "_", " "))
		}
		if r := d["reason"]; r != "" {
			s += " (" + templates.Line(r) + ")"
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
		return "PagerDuty", who, with(cmp.Or(val("type"), "event"))
	case incident.EventPostmortemDrafted:
		return "Postmortem", who, "draft version " + val("version")
	case incident.EventFollowupAdded:
		return "Follow-up", who, fmt.Sprintf("#%s: %s", val("id"), body)
	case incident.EventFactChanged:
		s := templates.Line(incident.FactChangeText(d))
		if incident.Fact(d["fact"]) == incident.FactTitle && d["from"] != "" {
			s += " (was: " + templates.Line(d["from"]) + ")"
		}
		return "Correction", who, with(s)
	case incident.EventFollowupChanged:
		return "Follow-up", who, fmt.Sprintf("#%s %s: %s", val("id"), incident.FollowupChangeText(escapedData(d), ppl.person), body)
	case incident.EventChannelCreated:
		return "Channel", who, body
	case incident.EventError:
		return "Problem", who, body
	}
	return templates.Line(string(ev.Kind)), who, body
}

// escapedData returns a copy of d with every value escaped for Markdown
// except user ids, which people.person escapes when it names them.
func escapedData(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
		if k != "owner" && k != "previous_owner" {
			out[k] = templates.Line(v)
		}
	}
	return out
}

// people names the chat users of an incident. The store keeps user ids;
// display names are known only where an event's actor carried one.
type people map[string]string

func peopleOf(inc *incident.Incident, events []incident.Event) people {
	p := people{}
	learn := func(a incident.Actor) {
		if a.Name != "" && a.ChatUser() {
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
// The name is escaped for Markdown.
func (p people) person(id string) string {
	if id == "" {
		return ""
	}
	if n := p[id]; n != "" {
		return templates.Line(n)
	}
	return templates.Line("<@" + id + ">")
}

// actor names who made a change, escaped for Markdown.
func (p people) actor(a incident.Actor) string {
	switch a.Source {
	case incident.SourceSlack, incident.SourceShell:
		if a.ID != "" {
			return p.person(a.ID)
		}
	case incident.SourcePagerDuty:
		return templates.Line(cmp.Or(a.Name, a.ID, "someone")) + " (PagerDuty)"
	case incident.SourceBot:
		return "incident-bot"
	}
	return templates.Line(cmp.Or(a.Name, a.ID, string(a.Source)))
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
// Slack's entity escaping undone, so the draft shows "a < b" as written,
// and mentions of people it knows (<@U123>) replaced by "@Name"; other
// mentions are kept.
func decoded(inc *incident.Incident, events []incident.Event, ppl people) (*incident.Incident, []incident.Event) {
	text := func(s string) string {
		s = userMention.ReplaceAllStringFunc(s, func(m string) string {
			if name := ppl[userMention.FindStringSubmatch(m)[1]]; name != "" {
				return "@" + name
			}
			return m
		})
		return entities.Replace(s)
	}
	c := *inc
	c.Title = text(c.Title)
	c.Description = text(c.Description)
	c.Impact = text(c.Impact)
	c.Followups = slices.Clone(c.Followups)
	for i := range c.Followups {
		c.Followups[i].Text = text(c.Followups[i].Text)
	}
	evs := slices.Clone(events)
	for i := range evs {
		evs[i].Text = text(evs[i].Text)
	}
	return &c, evs
}

var userMention = regexp.MustCompile(`<@([UW][A-Z0-9]{1,20})(?:\|[^>]*)?>`)

// PeopleIDs lists the chat users a draft of inc names: actors, role
// holders, members, follow-up owners and people mentioned in text.
func PeopleIDs(inc *incident.Incident, events []incident.Event) []string {
	var ids []string
	add := func(id string) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	actor := func(a incident.Actor) {
		if a.Source == incident.SourceSlack || a.Source == incident.SourceShell {
			add(a.ID)
		}
	}
	texts := func(s string) {
		for _, m := range userMention.FindAllStringSubmatch(s, -1) {
			add(m[1])
		}
	}
	for _, id := range inc.People() {
		add(id)
	}
	actor(inc.AcknowledgedBy)
	texts(inc.Title)
	texts(inc.Description)
	texts(inc.Impact)
	for _, f := range inc.Followups {
		add(f.Owner)
		actor(f.CreatedBy)
		actor(f.DoneBy)
		texts(f.Text)
	}
	for _, ev := range events {
		actor(ev.Actor)
		for _, k := range []string{"user", "previous", "author", "owner", "previous_owner"} {
			add(ev.Data[k])
		}
		texts(ev.Text)
	}
	return ids
}
