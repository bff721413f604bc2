package incident

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Severity ranks an incident's impact; SEV1 is the worst.
type Severity int

// The four severities. DefaultSeverity applies when a declaration names none.
const (
	SEV1 Severity = 1
	SEV2 Severity = 2
	SEV3 Severity = 3
	SEV4 Severity = 4

	DefaultSeverity = SEV3
)

// Severities lists all severities, worst first.
var Severities = []Severity{SEV1, SEV2, SEV3, SEV4}

func (s Severity) String() string {
	if !s.Valid() {
		return fmt.Sprintf("SEV?(%d)", int(s))
	}
	return "SEV" + strconv.Itoa(int(s))
}

// Valid reports whether s is one of SEV1–SEV4.
func (s Severity) Valid() bool { return s >= SEV1 && s <= SEV4 }

// SeverityWords are the words accepted for severities (README.md lists
// them): critical, major, minor, low.
var SeverityWords = map[string]Severity{"critical": SEV1, "major": SEV2, "minor": SEV3, "low": SEV4}

// ParseSeverity accepts a severity as people write it, in any letter case:
// "sev2", "SEV-2", "sev_2", "P2", "2", and the SeverityWords.
func ParseSeverity(text string) (Severity, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	if s, ok := SeverityWords[t]; ok {
		return s, nil
	}
	if rest, ok := strings.CutPrefix(t, "sev"); ok {
		t = rest
		if len(t) > 1 && (t[0] == '-' || t[0] == '_') {
			t = t[1:]
		}
	} else if rest, ok := strings.CutPrefix(t, "p"); ok {
		t = rest
	}
	n, err := strconv.Atoi(t)
	if err != nil || !Severity(n).Valid() || strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-") {
		return 0, Errorf(EINVALID, "%q is not a severity: use sev1 (worst) to sev4, P1 to P4, or critical, major, minor, low.", truncate(text, 32))
	}
	return Severity(n), nil
}

// MarshalText encodes the severity as "SEV1".."SEV4", and an unset
// severity as "".
func (s Severity) MarshalText() ([]byte, error) {
	if s == 0 {
		return nil, nil
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes "SEV1".."SEV4" ("" is unset).
func (s *Severity) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Status is where an incident is in its lifecycle.
type Status string

// Statuses in lifecycle order. Triggered, acknowledged and mitigated are open.
const (
	StatusTriggered    Status = "triggered"
	StatusAcknowledged Status = "acknowledged"
	StatusMitigated    Status = "mitigated"
	StatusResolved     Status = "resolved"
)

// Open reports whether the incident still needs attention.
func (s Status) Open() bool { return s != StatusResolved }

// Role is a named responsibility in an incident, held by one chat user.
type Role string

// The incident roles.
const (
	RoleCommander Role = "commander"
	RoleComms     Role = "comms"
	RoleScribe    Role = "scribe"
)

// Roles lists the roles in display order.
var Roles = []Role{RoleCommander, RoleComms, RoleScribe}

// ParseRole accepts a role name in any letter case, plus the common aliases
// "ic" and "lead" for commander.
func ParseRole(text string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "commander", "ic", "lead", "incident-commander":
		return RoleCommander, nil
	case "comms", "communications", "communication":
		return RoleComms, nil
	case "scribe":
		return RoleScribe, nil
	}
	return "", Errorf(EINVALID, "%q is not a role: use commander, comms or scribe.", truncate(text, 32))
}

// Source says which system an incident or an event came from: a chat
// platform, the bot itself, or an alert source (a pager such as PagerDuty,
// an alert router such as Alertmanager or Grafana). Alert sources are named
// by their adapters (pagerduty.Source, alertmanager.Source, ...): the
// domain only knows which sources are people in chat.
type Source string

// The sources the domain itself knows.
const (
	SourceSlack   Source = "slack"
	SourceShell   Source = "shell"
	SourceBot     Source = "bot"     // the bot itself: timers, escalations
	SourceRunbook Source = "runbook" // runbook actions
	// SourcePagerDuty is kept because stored records and the reports
	// (digest, postmortem) name it; nothing in this package branches on
	// it. New alert sources declare their Source in their own adapter.
	SourcePagerDuty Source = "pagerduty"
)

// Chat reports whether actors of this source are chat users: people who
// can be mentioned, invited and given roles.
func (s Source) Chat() bool { return s == SourceSlack || s == SourceShell }

// External reports whether the source is an outside system (an alert
// source), not chat, the bot or a runbook.
func (s Source) External() bool {
	return s != "" && !s.Chat() && s != SourceBot && s != SourceRunbook
}

// Actor is who caused a change: a chat user, a user or the automation of
// an alert source, or the bot.
type Actor struct {
	ID     string `json:"id,omitempty"`   // chat user id, alert-source user id, or "bot"
	Name   string `json:"name,omitempty"` // display name snapshot, may be empty
	Source Source `json:"source"`
}

// ChatUser reports whether the actor is a known chat user.
func (a Actor) ChatUser() bool { return a.ID != "" && a.Source.Chat() }

// BotActor is the actor for changes the bot makes on its own.
var BotActor = Actor{ID: "bot", Name: "incident-bot", Source: SourceBot}

// Mention renders the actor for chat: a user mention for chat users, the name
// otherwise.
func (a Actor) Mention() string {
	switch {
	case a.Source.Chat():
		return "<@" + a.ID + ">"
	case a.Name != "":
		return a.Name
	case a.ID != "":
		return a.ID
	}
	return string(a.Source)
}

// ChatRef is where an incident lives in chat. It is written by the chat sync
// use case as it converges the chat platform on the incident's state.
type ChatRef struct {
	ChannelID   string   `json:"channel_id,omitempty"`
	ChannelName string   `json:"channel_name,omitempty"`
	NamesTried  []string `json:"names_tried,omitempty"` // channel names we asked the platform to create
	NamesTaken  []string `json:"names_taken,omitempty"` // of those, names that turned out to be someone else's
	Topic       string   `json:"topic,omitempty"`       // last topic set
	Invited     []string `json:"invited,omitempty"`     // users already invited
	// InvitedAtCreation are the people the incident had when its channel
	// was created: the bot invites them at once, so they are never late
	// joiners (see OfferCatchup). Empty, not nil, when there was nobody;
	// nil in records made before it was kept.
	InvitedAtCreation []string `json:"invited_at_creation,omitzero"`
	SummaryID         string   `json:"summary_id,omitempty"`  // message id (Slack ts) of the summary
	SummaryRev        int64    `json:"summary_rev,omitempty"` // incident revision the summary shows
	// SummaryShows and AnnounceShows fingerprint what the summary and the
	// announcement last showed (see SummaryFingerprint), so they are
	// updated when that changes, not on every note.
	SummaryShows  string `json:"summary_shows,omitempty"`
	AnnounceShows string `json:"announce_shows,omitempty"`
	AnnounceCh    string `json:"announce_channel,omitempty"`
	AnnounceID    string `json:"announce_id,omitempty"`
	AnnounceRev   int64  `json:"announce_rev,omitempty"`
	PostedSeq     int64  `json:"posted_seq,omitempty"` // last timeline event told in the channel
	// SharedSeq is the last event told in the channel that was considered
	// for a copy in the announcement's thread (status updates are copied);
	// 0 in records made before copies had their own progress, which
	// copied along with the channel post (so up to PostedSeq).
	SharedSeq   int64 `json:"shared_seq,omitempty"`
	BookmarkSet bool  `json:"bookmark_set,omitempty"`
	// Sending records the posts begun and not yet recorded, by slot
	// (summary, announce, events, share): a kill or a lost answer may have
	// left such a post in the channel without its id here, so the next
	// sync looks for it before posting it again.
	Sending map[string]Sending `json:"sending,omitempty"`
	// AnnounceFailed stops retrying an announcement the platform refused
	// for good (a wrong announce channel); the refusal is on the timeline.
	AnnounceFailed bool `json:"announce_failed,omitempty"`
}

// Sending is a post begun and not yet recorded (ChatRef.Sending).
type Sending struct {
	Key     PostKey   `json:"key"`
	Channel string    `json:"channel"`
	Thread  string    `json:"thread,omitempty"`
	Since   time.Time `json:"since"`          // when the post began
	Last    int64     `json:"last,omitempty"` // events and copies: the last timeline event it tells
}

// PagerRef links an incident to the incident that represents it in an
// outside pager (System, named SystemName for people): the one that paged
// for it, or the one the bot opened by paging. The pager-specific fields
// (service, escalation policy, urgency, priority) are filled by pagers
// that have them.
type PagerRef struct {
	// System is the pager's Source ("pagerduty"); SystemName is how people
	// name it ("PagerDuty"). Records written before alert sources were
	// neutral are given both by the store's migration.
	System             string `json:"system,omitempty"`
	SystemName         string `json:"system_name,omitempty"`
	IncidentID         string `json:"incident_id,omitempty"`
	Number             int64  `json:"number,omitempty"`
	URL                string `json:"url,omitempty"`
	ServiceID          string `json:"service_id,omitempty"`
	ServiceName        string `json:"service_name,omitempty"`
	EscalationPolicyID string `json:"escalation_policy_id,omitempty"`
	EscalationLevel    int    `json:"escalation_level,omitempty"`
	Status             string `json:"status,omitempty"`
	Urgency            string `json:"urgency,omitempty"`
	Priority           string `json:"priority,omitempty"`
	DedupKey           string `json:"dedup_key,omitempty"` // Events API v2 dedup key, when paged that way
}

// Followup is an action item recorded during an incident for its postmortem.
// Its number (ID) is its position in the incident's list, from 1; follow-ups
// are never deleted, so the number stays valid.
type Followup struct {
	ID        int       `json:"id"`
	Text      string    `json:"text"`
	Owner     string    `json:"owner,omitempty"` // chat user id
	CreatedBy Actor     `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Done      bool      `json:"done,omitempty"`
	DoneAt    time.Time `json:"done_at,omitzero"`
	DoneBy    Actor     `json:"done_by,omitzero"`
	// Due is a calendar date, "2026-12-15", in BOT_TIMEZONE: a follow-up
	// is overdue from the day after it (see Overdue).
	Due string `json:"due,omitempty"`
}

// Overdue reports whether the follow-up is open and its due date is before
// today's date in loc.
func (f Followup) Overdue(now time.Time, loc *time.Location) bool {
	return !f.Done && f.Due != "" && f.Due < now.In(loc).Format(DateFormat)
}

// Incident is one incident. Its history is its timeline (Events); the fields
// here are the current state plus the key times the metrics derive from.
type Incident struct {
	Number      int64             `json:"number"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"` // the summary: `summary <text>` or the declare form
	Impact      string            `json:"impact,omitempty"`
	Severity    Severity          `json:"severity"`
	Status      Status            `json:"status"`
	Source      Source            `json:"source"`
	DeclaredBy  Actor             `json:"declared_by"`
	Roles       map[Role]string   `json:"roles,omitempty"`
	Members     []string          `json:"members,omitempty"` // participants: chat user ids
	Services    []string          `json:"services,omitempty"`
	Followups   []Followup        `json:"followups,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`

	// StartedAt is when the problem really began, as people later say
	// with `started`; zero when nobody said. See Start.
	StartedAt      time.Time `json:"started_at,omitzero"`
	DetectedAt     time.Time `json:"detected_at"` // when the problem was first seen (pager trigger time, or declaration)
	DeclaredAt     time.Time `json:"declared_at"` // when the bot opened the incident
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	AcknowledgedBy Actor     `json:"acknowledged_by,omitzero"`
	MitigatedAt    time.Time `json:"mitigated_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	LastUpdateAt   time.Time `json:"last_update_at,omitzero"` // last stakeholder status update
	Reopened       int       `json:"reopened,omitempty"`
	Escalations    int       `json:"escalations,omitempty"` // automatic escalations so far in this episode
	UpdatedAt      time.Time `json:"updated_at"`

	// Revision increases with every stored change; chat sync uses it to
	// know whether a rendered message is stale.
	Revision int64 `json:"revision"`

	Chat  ChatRef  `json:"chat,omitzero"`
	Pager PagerRef `json:"pager,omitzero"`
}

// ID is the incident's public id, "INC-<n>".
func (inc *Incident) ID() string { return FormatID(inc.Number) }

// FormatID renders an incident number as "INC-<n>".
func FormatID(n int64) string { return "INC-" + strconv.FormatInt(n, 10) }

// ParseID accepts "INC-7" in any letter case and returns 7.
func ParseID(text string) (int64, bool) {
	t := strings.TrimSpace(text)
	if len(t) < 5 || !strings.EqualFold(t[:4], "INC-") {
		return 0, false
	}
	digits := t[4:]
	if digits == "" || len(digits) > 12 || digits[0] == '0' {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// Commander returns the commander's user id, or "".
func (inc *Incident) Commander() string { return inc.Roles[RoleCommander] }

// RolesOf returns the roles user holds in the incident.
func (inc *Incident) RolesOf(user string) []Role {
	var roles []Role
	for _, r := range Roles {
		if user != "" && inc.Roles[r] == user {
			roles = append(roles, r)
		}
	}
	return roles
}

// People returns everybody who should be in the incident's channel: the
// declarer (when a chat user), the role holders and the members, without
// duplicates, in a stable order.
func (inc *Incident) People() []string {
	var out []string
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if inc.DeclaredBy.Source.Chat() {
		add(inc.DeclaredBy.ID)
	}
	for _, r := range Roles {
		add(inc.Roles[r])
	}
	for _, m := range inc.Members {
		add(m)
	}
	return out
}

// addMember records user as a participant; it reports whether they were new.
func (inc *Incident) addMember(user string) bool {
	if user == "" || slices.Contains(inc.Members, user) {
		return false
	}
	inc.Members = append(inc.Members, user)
	return true
}

// WorstSeverity is the worst severity the incident reached: its current one
// or any its timeline records (at declaration, before or after a change).
func WorstSeverity(inc *Incident, events []Event) Severity {
	worst := inc.Severity
	consider := func(text string) {
		if s, err := ParseSeverity(text); err == nil && (!worst.Valid() || s < worst) {
			worst = s
		}
	}
	for _, ev := range events {
		switch ev.Kind {
		case EventDeclared:
			consider(ev.Data["severity"])
		case EventSeverityChanged:
			consider(ev.Data["from"])
			consider(ev.Data["to"])
		}
	}
	return worst
}

// The response times. They are defined once, here, and README.md states
// the same definitions; every report (status, postmortem, digest) uses
// these methods. Each is false when it does not apply.
//
//   - Start is when the problem began: StartedAt if someone said (`started`),
//     else DetectedAt.
//   - Time to detect: StartedAt to DetectedAt, only when StartedAt is set.
//   - Time to acknowledge: Start to the first acknowledgement. An incident a
//     person declared is acknowledged by that act, so without StartedAt it
//     has no time to acknowledge (not 0 s); with StartedAt it is the time
//     from the start to the declaration.
//   - Time to mitigate: Start to mitigation; an incident resolved without
//     `mitigate` has no time to mitigate.
//   - Time to resolve: Start to the (last) resolution.

// Start is when the problem began: StartedAt, or DetectedAt when nobody
// said.
func (inc *Incident) Start() time.Time {
	if !inc.StartedAt.IsZero() {
		return inc.StartedAt
	}
	return inc.DetectedAt
}

// AcknowledgedOnDeclare reports whether the incident was acknowledged by
// being declared (a person opened it), not by someone answering a page.
func (inc *Incident) AcknowledgedOnDeclare() bool {
	return !inc.AcknowledgedAt.IsZero() && inc.AcknowledgedAt.Equal(inc.DeclaredAt)
}

// TimeToDetect is the time from the start of the problem to its
// detection, known only when StartedAt is set.
func (inc *Incident) TimeToDetect() (time.Duration, bool) {
	if inc.StartedAt.IsZero() {
		return 0, false
	}
	return span(inc.StartedAt, inc.DetectedAt)
}

// TimeToAcknowledge is the time from the start to the first
// acknowledgement (see above for declared incidents).
func (inc *Incident) TimeToAcknowledge() (time.Duration, bool) {
	if inc.StartedAt.IsZero() && inc.AcknowledgedOnDeclare() {
		return 0, false
	}
	return span(inc.Start(), inc.AcknowledgedAt)
}

// TimeToMitigate is the time from the start to mitigation.
func (inc *Incident) TimeToMitigate() (time.Duration, bool) {
	return span(inc.Start(), inc.MitigatedAt)
}

// TimeToResolve is the time from the start to the (last) resolution.
func (inc *Incident) TimeToResolve() (time.Duration, bool) {
	return span(inc.Start(), inc.ResolvedAt)
}

func span(from, to time.Time) (time.Duration, bool) {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return 0, false
	}
	return to.Sub(from), true
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
