package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LateJoin is how long after its declaration someone joining an
// incident's channel counts as joining late: from then on they are
// offered the catch-up (see OfferCatchup).
const LateJoin = 10 * time.Minute

// How many entries each catch-up section keeps, newest first; older ones
// are counted (CatchupSection.Earlier) and left to `timeline`. The caps
// keep the catch-up a summary and well inside a chat message.
const (
	catchupMoments   = 8
	catchupPins      = 5
	catchupRunbooks  = 5
	catchupFollowups = 10
	catchupChanges   = 15
	// catchupItemText caps what one entry repeats of a person's text
	// (a note, a pinned message), in characters.
	catchupItemText = 280
)

// Catchup is the summary of an incident for someone who joins late: its
// current state, who holds which role, the impact, the last status update,
// the key moments and pins, runbook runs, open follow-ups, and what changed
// since they joined (or since a time they chose). It is built from the
// record alone (BuildCatchup): the same record, time and options give the
// same Catchup. Text is in the package's light markup and is repeated as
// people wrote it: adapters escape it for their medium.
type Catchup struct {
	Number     int64
	Title      string
	Severity   Severity
	Status     Status
	Roles      []RoleHolder // every role, in display order; User "" when nobody holds it
	DeclaredAt time.Time
	DeclaredBy Actor
	Now        time.Time // when it was made
	Summary    string
	Impact     string
	Services   []string
	// LastUpdate is the last status update for stakeholders, if any.
	LastUpdate *CatchupItem
	// Since is where "what changed" starts; zero when neither a time was
	// asked for nor the reader's joining is on the timeline.
	Since time.Time
	// SinceJoined says Since is when the reader joined the channel.
	SinceJoined bool
	// Sections are the lists, in display order: key moments, pins,
	// runbook runs, open follow-ups, and what changed.
	Sections []CatchupSection
	Location *time.Location `json:"-"` // times in Text; UTC when nil
}

// RoleHolder is who holds a role ("" for nobody).
type RoleHolder struct {
	Role Role
	User string
}

// CatchupItem is one entry of a catch-up: when (zero for entries with no
// one time, such as follow-ups) and what, in light markup.
type CatchupItem struct {
	At   time.Time
	Text string
}

// Catch-up section kinds (CatchupSection.Kind).
const (
	CatchupMoments   = "moments"
	CatchupPins      = "pins"
	CatchupRunbooks  = "runbooks"
	CatchupFollowups = "followups"
	CatchupChanges   = "changes"
)

// CatchupSection is one list of a catch-up. Items are oldest first (the
// follow-ups in number order); Earlier counts the older entries left out.
// Empty is what to show when there are no items ("" : show nothing).
type CatchupSection struct {
	Kind    string
	Title   string
	Items   []CatchupItem
	Earlier int
	Empty   string
}

// ID is the incident's id, "INC-<n>".
func (c Catchup) ID() string { return FormatID(c.Number) }

// CatchupOptions say whom a catch-up is for and from when.
type CatchupOptions struct {
	Now time.Time
	// User is the reader (a chat user id): without Since, what changed is
	// told from when they last joined the channel.
	User string
	// Since, if set, is where "what changed" starts.
	Since    time.Time
	Location *time.Location
}

// BuildCatchup makes the catch-up of inc from its timeline (events, in
// time order).
func BuildCatchup(inc *Incident, events []Event, opt CatchupOptions) Catchup {
	loc := opt.Location
	if loc == nil {
		loc = time.UTC
	}
	c := Catchup{
		Number: inc.Number, Title: inc.Title, Severity: inc.Severity, Status: inc.Status,
		DeclaredAt: inc.DeclaredAt, DeclaredBy: inc.DeclaredBy, Now: opt.Now,
		Summary: inc.Description, Impact: inc.Impact, Services: inc.Services,
		Since: opt.Since, Location: loc,
	}
	for _, r := range Roles {
		c.Roles = append(c.Roles, RoleHolder{Role: r, User: inc.Roles[r]})
	}
	if c.Since.IsZero() && opt.User != "" {
		for _, ev := range events {
			if ev.Kind == EventMemberJoined && ev.Actor.ID == opt.User && ev.Actor.Source.Chat() {
				c.Since, c.SinceJoined = ev.At, true
			}
		}
	}
	var moments, pins, runs, changes []CatchupItem
	for _, ev := range events {
		switch ev.Kind {
		case EventStatusUpdate:
			c.LastUpdate = &CatchupItem{At: ev.At, Text: fmt.Sprintf("%s: %s", ev.Actor.Mention(), clip(ev.Text))}
		case EventStatusChanged, EventSeverityChanged, EventRoleAssigned, EventEscalated, EventPageSent:
			moments = append(moments, CatchupItem{At: ev.At, Text: clip(ev.Describe())})
		case EventFactChanged:
			if f := ev.Data["fact"]; f == string(FactTitle) || f == string(FactImpact) {
				moments = append(moments, CatchupItem{At: ev.At, Text: clip(ev.Describe())})
			}
		case EventMessagePinned:
			pins = append(pins, CatchupItem{At: ev.At, Text: fmt.Sprintf("<@%s>: %s", ev.Data["author"], clip(ev.Text))})
		case EventRunbookRan:
			runs = append(runs, CatchupItem{At: ev.At, Text: runbookRunText(ev)})
		}
		if !c.Since.IsZero() && ev.At.After(c.Since) && told(ev) {
			text := clip(ev.Describe())
			if ev.Kind == EventRunbookRan {
				text = runbookRunText(ev)
			}
			changes = append(changes, CatchupItem{At: ev.At, Text: text})
		}
	}
	var open []CatchupItem
	for _, f := range inc.Followups {
		if !f.Done {
			open = append(open, CatchupItem{Text: followupText(f, opt.Now, loc)})
		}
	}
	c.Sections = []CatchupSection{
		newest(CatchupSection{Kind: CatchupMoments, Title: "Key moments"}, moments, catchupMoments),
		newest(CatchupSection{Kind: CatchupPins, Title: "Pinned"}, pins, catchupPins),
		newest(CatchupSection{Kind: CatchupRunbooks, Title: "Runbook runs"}, runs, catchupRunbooks),
		oldest(CatchupSection{Kind: CatchupFollowups, Title: "Open follow-ups"}, open, catchupFollowups),
	}
	if !c.Since.IsZero() {
		s := CatchupSection{Kind: CatchupChanges, Title: "Since " + c.When(c.Since), Empty: "Nothing new on the timeline."}
		if c.SinceJoined {
			s.Title = "Since you joined (" + c.When(c.Since) + ")"
		}
		c.Sections = append(c.Sections, newest(s, changes, catchupChanges))
	}
	return c
}

// told reports whether an event is news for the catch-up: told in the
// channel, and not the bot's own nagging (reminders) or someone joining.
func told(ev Event) bool {
	return !ev.Quiet && ev.Kind != EventMemberJoined && ev.Kind != EventChannelCreated && ev.Kind != EventReminder
}

// newest keeps the last max items.
func newest(s CatchupSection, items []CatchupItem, max int) CatchupSection {
	if len(items) > max {
		s.Earlier = len(items) - max
		items = items[len(items)-max:]
	}
	s.Items = items
	return s
}

// oldest keeps the first max items (follow-ups, by number).
func oldest(s CatchupSection, items []CatchupItem, max int) CatchupSection {
	if len(items) > max {
		s.Earlier = len(items) - max // here: the later ones left out
		items = items[:max]
	}
	s.Items = items
	return s
}

func clip(s string) string { return truncate(CleanLine(s), catchupItemText) }

func runbookRunText(ev Event) string {
	d := ev.Data
	name := d["runbook"]
	if name == "" {
		name = "a runbook"
	} else {
		name = "`" + strings.ReplaceAll(name, "`", "'") + "`"
	}
	outcome := d["outcome"]
	if outcome == "" {
		outcome = "finished"
	}
	s := fmt.Sprintf("%s *%s*", name, strings.ReplaceAll(outcome, "_", " "))
	if code := d["exit_code"]; code != "" && outcome != "succeeded" {
		s += " (exit " + code + ")"
	}
	if d["dry_run"] == "true" {
		s += ", dry run"
	}
	if ev.Actor.ID != "" {
		s += ", run by " + ev.Actor.Mention()
	}
	return s
}

func followupText(f Followup, now time.Time, loc *time.Location) string {
	s := fmt.Sprintf("#%d %s", f.ID, clip(f.Text))
	if f.Owner != "" {
		s += " · <@" + f.Owner + ">"
	} else {
		s += " · no owner"
	}
	if f.Due != "" {
		s += " · due " + f.Due
		if f.Overdue(now, loc) {
			s += " *(overdue)*"
		}
	}
	return s
}

// When formats a time of the catch-up for its reader: the time of day in
// its location, with the date when it is not the day of Now.
func (c Catchup) When(t time.Time) string {
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	t, now := t.In(loc), c.Now.In(loc)
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04")
	}
	return t.Format("Jan 2 15:04")
}

// Headline is the catch-up's first line: id, severity, status, and for
// how long the incident has been open (or when it was resolved).
func (c Catchup) Headline() string {
	s := fmt.Sprintf("*Catch-up: %s* %s · %s", c.ID(), c.Severity, c.Status)
	if c.Status.Open() {
		s += " · open " + SinceText(c.Now, c.DeclaredAt)
	}
	return s
}

// RolesText lists the roles and their holders: "commander <@U1> · comms
// nobody · scribe nobody".
func (c Catchup) RolesText() string {
	parts := make([]string, 0, len(c.Roles))
	for _, r := range c.Roles {
		who := "nobody"
		if r.User != "" {
			who = "<@" + r.User + ">"
		}
		parts = append(parts, string(r.Role)+" "+who)
	}
	return strings.Join(parts, " · ")
}

// Facts are the catch-up's lines about the incident itself, in light
// markup: summary, impact, services and the last status update (the
// headline, title and roles come first, see Text).
func (c Catchup) Facts() []string {
	var out []string
	if c.Summary != "" {
		out = append(out, "*Summary:* "+c.Summary)
	}
	impact := c.Impact
	if impact == "" {
		impact = "not recorded yet (`impact <text>`)"
	}
	out = append(out, "*Impact:* "+impact)
	if len(c.Services) > 0 {
		out = append(out, "*Services:* "+strings.Join(c.Services, ", "))
	}
	if u := c.LastUpdate; u != nil {
		out = append(out, fmt.Sprintf("*Last status update* (%s) from %s", c.When(u.At), u.Text))
	} else {
		out = append(out, "*Last status update:* none yet")
	}
	return out
}

// TimelinePointer is the closing line of a catch-up that left entries
// out.
const TimelinePointer = "More in `/incident timeline`."

// Text renders the whole catch-up in light markup, one entry a line; the
// local shell shows it as it is and it is the text fallback elsewhere.
func (c Catchup) Text() string {
	var b strings.Builder
	b.WriteString(c.Headline())
	b.WriteString("\n*" + c.Title + "*")
	b.WriteString("\nRoles: " + c.RolesText())
	for _, f := range c.Facts() {
		b.WriteString("\n" + f)
	}
	more := false
	for _, s := range c.Sections {
		lines := s.Lines(c)
		if len(lines) == 0 {
			continue
		}
		b.WriteString("\n*" + s.Title + "*")
		for _, l := range lines {
			b.WriteString("\n" + l)
		}
		more = more || s.Earlier > 0
	}
	fmt.Fprintf(&b, "\n(Times in %s.", c.Location)
	if more {
		b.WriteString(" " + TimelinePointer)
	}
	b.WriteString(")")
	return b.String()
}

// Lines renders a section's entries as bullet lines ("• 14:05 text"),
// with a line for the entries left out; none for an empty section
// without an Empty text.
func (s CatchupSection) Lines(c Catchup) []string {
	var out []string
	if s.Earlier > 0 && s.Kind != CatchupFollowups {
		out = append(out, fmt.Sprintf("(…%d earlier)", s.Earlier))
	}
	for _, it := range s.Items {
		out = append(out, s.Line(c, it))
	}
	if s.Earlier > 0 && s.Kind == CatchupFollowups {
		out = append(out, fmt.Sprintf("(…%d more: `followups`)", s.Earlier))
	}
	if len(out) == 0 && s.Empty != "" {
		out = append(out, s.Empty)
	}
	return out
}

// Line renders one entry of the section.
func (s CatchupSection) Line(c Catchup, it CatchupItem) string {
	if it.At.IsZero() {
		return "• " + it.Text
	}
	return "• " + c.When(it.At) + " " + it.Text
}

var bareDuration = regexp.MustCompile(`^(\d{1,5})\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)$`)

// ParseSince reads where a catch-up's "what changed" starts: a duration
// back from now ("30m", "2h", "1h30m", "90 minutes", with or without
// "ago") or a moment as ParseTime reads it ("14:05", "2026-12-01T14:05:00Z").
func ParseSince(text string, now time.Time, loc *time.Location) (time.Time, error) {
	t := strings.ToLower(strings.Join(strings.Fields(text), " "))
	bad := Errorf(EINVALID, "%q is not a time I can read: write how long ago (`30m`, `2h`, `1h30m`) or a time (`14:05`, `2026-12-01T14:05:00Z`).", truncate(text, 40))
	if t == "" {
		return time.Time{}, bad
	}
	if m := bareDuration.FindStringSubmatch(t); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n == 0 {
			return time.Time{}, bad
		}
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[m[2][0]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	if d, err := time.ParseDuration(strings.ReplaceAll(t, " ", "")); err == nil {
		if d <= 0 {
			return time.Time{}, bad
		}
		return now.Add(-d), nil
	}
	at, err := ParseTime(text, now, loc)
	if err != nil {
		return time.Time{}, bad
	}
	if at.After(now) {
		return time.Time{}, Errorf(EINVALID, "%q is in the future; a catch-up tells what changed since a past time.", truncate(text, 40))
	}
	return at, nil
}

// Catchup builds the catch-up of the incident ref names for user (see
// BuildCatchup); since, if not zero, is where "what changed" starts.
func (s *Service) Catchup(ctx context.Context, ref Ref, user string, since time.Time, loc *time.Location) (Catchup, error) {
	inc, events, err := s.Timeline(ctx, ref)
	if err != nil {
		return Catchup{}, err
	}
	return BuildCatchup(inc, events, CatchupOptions{Now: s.clock.Now(), User: user, Since: since, Location: loc}), nil
}

// OfferCatchup reports whether ev, someone joining inc's channel, earns
// them the offer of a catch-up: a chat user joining an open incident's
// channel more than LateJoin after it was declared, who is not one of
// the people the bot invited when it created the channel. The offer is
// made once per person and incident (CatchupOfferHook).
func OfferCatchup(inc *Incident, ev Event) bool {
	if ev.Kind != EventMemberJoined || !ev.Actor.ChatUser() || !inc.Status.Open() || ev.At.Sub(inc.DeclaredAt) <= LateJoin {
		return false
	}
	invited := inc.Chat.InvitedAtCreation
	if invited == nil {
		// A channel created before the bot kept this list (nil, not
		// empty): everyone it invited counts as invited at creation, so
		// nobody it brought in is told they are late.
		invited = inc.Chat.Invited
	}
	return !slices.Contains(invited, ev.Actor.ID)
}

// CatchupOffer is the payload of a catch-up offer job: whom to offer it,
// in which channel, and when they joined.
type CatchupOffer struct {
	Incident int64     `json:"incident"`
	Channel  string    `json:"channel"`
	User     string    `json:"user"`
	JoinedAt time.Time `json:"joined_at"`
}

// CatchupOfferKey is the idempotency key recording that user was offered
// incident n's catch-up.
func CatchupOfferKey(n int64, user string) string {
	return "catchup-offer:" + FormatID(n) + ":" + user
}

// CatchupOfferHook returns the change hook that enqueues a job of kind
// jobKind (the chat adapter's) for every late joiner (OfferCatchup), in
// the transaction that records their joining, with a durable key per
// person and incident: a retried event, a second join or a restart never
// makes a second offer. The job carries a CatchupOffer.
func CatchupOfferHook(jobKind string) ChangeHook {
	return func(tx Tx, inc *Incident, events []Event) error {
		for _, ev := range events {
			if !OfferCatchup(inc, ev) {
				continue
			}
			key := CatchupOfferKey(inc.Number, ev.Actor.ID)
			if _, done, err := tx.Key(key); err != nil {
				return err
			} else if done {
				continue
			}
			payload, err := json.Marshal(CatchupOffer{Incident: inc.Number, Channel: inc.Chat.ChannelID, User: ev.Actor.ID, JoinedAt: ev.At})
			if err != nil {
				return err
			}
			if err := tx.PutKey(key, payload, ev.Recorded); err != nil {
				return err
			}
			if err := tx.Enqueue(&Job{Kind: jobKind, Key: "catchup:" + inc.ID(), Due: ev.Recorded, Payload: payload, Created: ev.Recorded}); err != nil {
				return err
			}
		}
		return nil
	}
}
