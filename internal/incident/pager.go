package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the pager side of the domain: how events from a pager (an
// alert source with incidents of its own and people on call: PagerDuty,
// Opsgenie...) change incidents, and the outbound pager work that changes
// in the bot cause (pages, escalations, acknowledgements, notes). Each
// pager's adapter turns its wire format into a PagerEvent, mapping its own
// event names onto the neutral kinds below, and runs the jobs declared
// here; nothing here knows any pager's API. Alert routers whose unit is a
// group of alerts (Alertmanager, Grafana) use alert.go instead.

// Pager event kinds the bot acts on, in neutral words; adapters map their
// pager's event names onto them (PagerDuty's "incident.triggered" is
// PagerTriggered) and drop the ones that have no kind here.
const (
	PagerTriggered      = "triggered"
	PagerAcknowledged   = "acknowledged"
	PagerUnacknowledged = "unacknowledged"
	PagerResolved       = "resolved"
	PagerReopened       = "reopened"
	PagerEscalated      = "escalated"
	PagerReassigned     = "reassigned"
	PagerDelegated      = "delegated"
	PagerPriority       = "priority changed"
	PagerAnnotated      = "note added"
	PagerResponderAdd   = "responder requested"
	PagerResponderReply = "responder replied"
	PagerStatusUpdate   = "status update published"
)

var pagerEventTypes = []string{
	PagerTriggered, PagerAcknowledged, PagerUnacknowledged, PagerResolved, PagerReopened,
	PagerEscalated, PagerReassigned, PagerDelegated, PagerPriority, PagerAnnotated,
	PagerResponderAdd, PagerResponderReply, PagerStatusUpdate,
}

// PagerEventHandled reports whether ApplyPagerEvent acts on events of type t.
func PagerEventHandled(t string) bool { return slices.Contains(pagerEventTypes, t) }

// Job kinds of the pager integration. The domain enqueues them; the pager
// adapter registers their handlers.
const (
	// JobPagerAction runs one outbound pager call (PagerAction payload).
	JobPagerAction = "pager.action"
	// JobPagerUsers resolves pager users to chat users and adds them to an
	// incident (PagerUsersJob payload).
	JobPagerUsers = "pager.users"
)

// PagerUser is a pager user (or another agent: a service, an integration)
// as an event names it.
type PagerUser struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// PagerIncident is the pager incident an event is about.
type PagerIncident struct {
	ID     string
	Number int64
	URL    string
	// Label names it for people ("PagerDuty #12"); empty: the event's
	// SourceName and the ID.
	Label       string
	Title       string // the incident's title, or the reference's summary
	Status      string // triggered, acknowledged or resolved
	IncidentKey string
	CreatedAt   time.Time

	ServiceID, ServiceName                   string
	EscalationPolicyID, EscalationPolicyName string
	Urgency                                  string // high or low
	Priority                                 string // e.g. "P1"; empty: none
	Assignees                                []PagerUser
	ConferenceURL, ConferenceNumber          string
	ResolveReason                            string

	// Full is set when the event carried the whole incident; otherwise only
	// ID, URL and Title (the reference's summary) are known.
	Full bool
}

// PagerEvent is one event from the pager, in the domain's terms.
type PagerEvent struct {
	// Source is the pager ("pagerduty"), SourceName how people name it
	// ("PagerDuty"). Event ids are unique within a Source.
	Source     Source
	SourceName string
	ID         string // the pager's event id: applying an id twice changes nothing
	Type       string // one of the Pager* kinds; others are refused
	OccurredAt time.Time
	// Agent caused the event; zero for the pager's own automation.
	Agent    PagerUser
	Incident PagerIncident
	// Severity is the incident's priority (or urgency) mapped to a
	// severity by the adapter's configuration; zero when unknown.
	Severity Severity
	// Text is a note's content, a status update's message or a responder
	// request's message.
	Text string
	// Responder and ResponderState describe responder events.
	Responder      PagerUser
	ResponderState string
}

// Actor returns who caused the event, as an Actor of the event's source
// (the pager itself when no agent is named).
func (ev PagerEvent) Actor() Actor {
	if ev.Agent.ID == "" && ev.Agent.Name == "" {
		return Actor{Name: ev.sourceName(), Source: ev.Source}
	}
	return Actor{ID: ev.Agent.ID, Name: ev.Agent.Name, Source: ev.Source}
}

func (ev PagerEvent) sourceName() string {
	if ev.SourceName != "" {
		return ev.SourceName
	}
	return string(ev.Source)
}

// label names the event's pager incident for chat.
func (ev PagerEvent) label() string {
	if ev.Incident.Label != "" {
		return ev.Incident.Label
	}
	return ev.sourceName() + " incident " + ev.Incident.ID
}

// PagerTarget is who a page goes to: a service or an escalation policy.
type PagerTarget struct {
	Kind string `json:"kind,omitempty"` // "service" or "escalation_policy"; empty with Events API v2
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

func (t PagerTarget) String() string {
	switch {
	case t.Name != "":
		return t.Name
	case t.ID != "":
		return t.ID
	}
	return "the pager"
}

// Pager action operations.
const (
	PagerOpPage        = "page"
	PagerOpEscalate    = "escalate"
	PagerOpAcknowledge = "acknowledge"
	PagerOpResolve     = "resolve"
	PagerOpNote        = "note"
)

// PagerAction is the payload of a JobPagerAction job: one call to the pager
// on behalf of incident Incident. Actions of one incident run one at a
// time, in order (their job key is PagerJobKey).
type PagerAction struct {
	Incident int64  `json:"incident"`
	Op       string `json:"op"`
	By       Actor  `json:"by"`
	// PagerIncidentID and DedupKey are the incident's pager link when the
	// action was decided (escalate, acknowledge, resolve, note).
	PagerIncidentID string `json:"pager_incident,omitempty"`
	DedupKey        string `json:"dedup_key,omitempty"`
	// Page: the target, the message, and the page's number within the
	// incident (0 for the bot's automatic page), which makes the pager-side
	// idempotency key (PageKey).
	Target  PagerTarget `json:"target,omitzero"`
	Message string      `json:"message,omitempty"`
	Page    int         `json:"page,omitempty"`
	// Escalate: the escalation level to move to, and why.
	Level  int    `json:"level,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Note: the text to add.
	Text string `json:"text,omitempty"`
}

// PagerJobKey orders the outbound pager work of incident n.
func PagerJobKey(n int64) string { return "pager:" + FormatID(n) }

// EnqueuePagerAction schedules a pager action in tx.
func EnqueuePagerAction(tx Tx, a PagerAction, now time.Time) error {
	payload, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding pager action: %w", err)
	}
	return tx.Enqueue(&Job{Kind: JobPagerAction, Key: PagerJobKey(a.Incident), Due: now, Payload: payload})
}

// PagerUsersJob is the payload of a JobPagerUsers job.
type PagerUsersJob struct {
	Incident int64       `json:"incident"`
	Users    []PagerUser `json:"users"`
}

const pageKeyPrefix = "incidentbot-"

// PageKey is the pager-side idempotency key (PagerDuty's incident_key) of
// page number page of incident n: a retried page reuses it, so the pager
// opens one incident however often the call is repeated. Page 0 is the
// bot's automatic page.
func PageKey(n int64, page int) string {
	if page == 0 {
		return pageKeyPrefix + FormatID(n) + "-auto"
	}
	return pageKeyPrefix + FormatID(n) + "-page-" + strconv.Itoa(page)
}

// incidentFromPageKey returns the incident number a pager incident key
// names: one made by PageKey, or a bare "INC-n" (the Events API v2 dedup
// key the bot uses).
func incidentFromPageKey(key string) (int64, bool) {
	if n, ok := ParseID(key); ok {
		return n, true
	}
	rest, ok := strings.CutPrefix(key, pageKeyPrefix)
	if !ok {
		return 0, false
	}
	if i := strings.Index(rest, "-page-"); i > 0 {
		rest = rest[:i]
	} else if r, ok := strings.CutSuffix(rest, "-auto"); ok {
		rest = r
	} else {
		return 0, false
	}
	return ParseID(rest)
}

// Clip cuts s to at most n characters, marking a cut with "…".
func Clip(s string, n int) string { return truncate(s, n) }

// Linked reports whether the incident is linked to a pager incident (by its
// id, or by the Events API dedup key it was paged with).
func (p PagerRef) Linked() bool { return p.IncidentID != "" || p.DedupKey != "" }

// PagerIndexKey is the key stores index pager links under: the pager's
// system and its incident id ("pagerduty:PABC123"), so that one pager's
// incident id never finds an incident linked to another pager's. Systems
// hold no ':'. "" without an incident id.
func PagerIndexKey(system Source, pagerIncidentID string) string {
	if pagerIncidentID == "" {
		return ""
	}
	return string(system) + ":" + pagerIncidentID
}

// IndexKey is the link's PagerIndexKey.
func (p PagerRef) IndexKey() string { return PagerIndexKey(Source(p.System), p.IncidentID) }

// Label names the pager incident for chat: "PagerDuty #12".
func (p PagerRef) Label() string { return p.Name() + " " + p.incidentLabel() }

// Name is how people name the pager: its SystemName, else "the pager".
func (p PagerRef) Name() string {
	if p.SystemName != "" {
		return p.SystemName
	}
	return "the pager"
}

// AppliedKeyPrefix starts the idempotency keys of applied alert-source
// events ("applied:<source>:<event id>"); they are pruned with the other
// delivery keys.
const AppliedKeyPrefix = "applied:"

// Idempotency keys of the pager use cases. Databases written before they
// were neutral had "pd:applied:", "pd:last:" and "pd:pages:" keys; the
// store's migration renames them.
func pagerAppliedKey(src Source, eventID string) string {
	return AppliedKeyPrefix + string(src) + ":" + eventID
}
func pagerLastKey(src Source, pagerID string) string { return "last:" + string(src) + ":" + pagerID }
func pagerPagesKey(n int64) string                   { return "pages:" + FormatID(n) }

// ApplyPagerEvent applies one pager event to the incident linked to its
// pager incident, in one transaction, and returns that incident.
//
//   - An event whose id was applied before changes nothing.
//   - An event for a pager incident the bot does not know opens an incident
//     for it, whatever the event type: events can arrive out of order, and
//     the first one to arrive carries enough to open it (a pager incident
//     whose key says the bot paged it for INC-n is linked to INC-n instead).
//     So re-deliveries, re-triggers and late triggers yield one incident.
//   - Status changes become the incident's own transitions, made by the
//     pager's agent. A transition that is not legal in the bot's state (the
//     incident was already acknowledged in chat, say) or that is older than
//     an event already applied is recorded quietly as a pager event.
//   - Pager users who are new assignees or responders are resolved to chat
//     users by a JobPagerUsers job, which adds them to the incident.
//
// Every timeline entry carries the key "<source>:<event id>", so no replay
// records anything twice.
func (s *Service) ApplyPagerEvent(ctx context.Context, ev PagerEvent) (*Incident, error) {
	if ev.ID == "" || ev.Incident.ID == "" || !ev.Source.External() {
		return nil, Errorf(EINVALID, "pager event without an id, an incident or an outside source")
	}
	if !PagerEventHandled(ev.Type) {
		return nil, Errorf(EINVALID, "pager event type %q is not handled", ev.Type)
	}
	var out *Incident
	// Events of different pager incidents are applied concurrently by the
	// job workers; they share commits (see Service.write).
	err := s.write(ctx, func(tx Tx) error {
		out = nil
		now := s.clock.Now()
		if raw, ok, err := tx.Key(pagerAppliedKey(ev.Source, ev.ID)); err != nil {
			return err
		} else if ok {
			n, _ := strconv.ParseInt(string(raw), 10, 64)
			inc, err := tx.Incident(n)
			out = inc
			return err
		}
		inc, primary, err := pagerIncidentFor(tx, ev)
		if err != nil {
			return err
		}
		var events []Event
		if inc == nil {
			if inc, err = openFromPager(tx, ev, now); err != nil {
				return err
			}
			primary = true
			// The declaration is dated when the pager opened the incident, so
			// the timeline reads in the order things happened.
			events = append(events, inc.newEvent(EventDeclared, ev.Actor(), inc.DetectedAt, inc.Title, map[string]string{
				"severity": inc.Severity.String(), "status": string(inc.Status), "pager_incident": ev.Incident.ID,
			}))
			events[0].Key = string(ev.Source) + ":declared:" + ev.Incident.ID
		}
		stale, err := pagerStale(tx, ev)
		if err != nil {
			return err
		}
		applied, users := applyPager(inc, ev, primary, stale, now)
		events = append(events, applied...)
		if err := tx.PutKey(pagerAppliedKey(ev.Source, ev.ID), []byte(strconv.FormatInt(inc.Number, 10)), now); err != nil {
			return err
		}
		if !stale && !ev.OccurredAt.IsZero() {
			if err := tx.PutKey(pagerLastKey(ev.Source, ev.Incident.ID), []byte(ev.OccurredAt.UTC().Format(time.RFC3339Nano)), now); err != nil {
				return err
			}
		}
		if err := s.commit(tx, inc, events, now); err != nil {
			return err
		}
		if len(users) > 0 {
			payload, _ := json.Marshal(PagerUsersJob{Incident: inc.Number, Users: users})
			if err := tx.Enqueue(&Job{Kind: JobPagerUsers, Due: now, Payload: payload}); err != nil {
				return err
			}
		}
		out = inc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("applying pager event %s (%s): %w", ev.ID, ev.Type, err)
	}
	return out, nil
}

// pagerIncidentFor finds the bot incident for ev's pager incident: the one
// linked to it, or the one its incident key says the bot paged it for. That
// one is linked now if it has no pager incident yet (primary); otherwise the
// pager incident is a second page of the same incident, whose events are
// recorded but do not move the incident. nil: none.
func pagerIncidentFor(tx Tx, ev PagerEvent) (*Incident, bool, error) {
	inc, err := tx.IncidentByPager(ev.Source, ev.Incident.ID)
	if err == nil {
		return inc, true, nil
	} else if ErrorCode(err) != ENOTFOUND {
		return nil, false, err
	}
	n, ok := incidentFromPageKey(ev.Incident.IncidentKey)
	if !ok {
		return nil, false, nil
	}
	inc, err = tx.Incident(n)
	if ErrorCode(err) == ENOTFOUND {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	if inc.Pager.IncidentID != "" {
		return inc, false, nil
	}
	inc.Pager.IncidentID = ev.Incident.ID
	inc.Pager.System, inc.Pager.SystemName = string(ev.Source), ev.SourceName
	if inc.Pager.EscalationLevel == 0 {
		inc.Pager.EscalationLevel = 1
	}
	return inc, true, nil
}

// openFromPager builds a new triggered incident for ev's pager incident;
// the caller stores it.
func openFromPager(tx Tx, ev PagerEvent, now time.Time) (*Incident, error) {
	n, err := tx.NextIncidentNumber()
	if err != nil {
		return nil, err
	}
	pi := ev.Incident
	title := strings.TrimSpace(pi.Title)
	if title == "" {
		title = ev.label()
	}
	title = truncate(title, MaxTitleLength)
	sev := ev.Severity
	if !sev.Valid() {
		sev = DefaultSeverity
	}
	detected := pi.CreatedAt
	if detected.IsZero() {
		detected = ev.OccurredAt
	}
	if detected.IsZero() || detected.After(now) {
		detected = now
	}
	inc := &Incident{
		Number:     n,
		Title:      title,
		Severity:   sev,
		Status:     StatusTriggered,
		Source:     ev.Source,
		DeclaredBy: ev.Actor(),
		DetectedAt: detected,
		DeclaredAt: now,
		Roles:      map[Role]string{},
		Pager:      PagerRef{System: string(ev.Source), SystemName: ev.SourceName, IncidentID: pi.ID, EscalationLevel: 1},
	}
	if pi.ServiceName != "" {
		inc.Services = []string{pi.ServiceName}
	}
	inc.Pager.update(pi)
	if !pi.Full {
		inc.Pager.Priority = ""
	}
	return inc, nil
}

// update copies what the pager incident says about itself into the link.
func (p *PagerRef) update(pi PagerIncident) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	if pi.Number != 0 {
		p.Number = pi.Number
	}
	set(&p.URL, pi.URL)
	if !pi.Full {
		return
	}
	set(&p.ServiceID, pi.ServiceID)
	set(&p.ServiceName, pi.ServiceName)
	set(&p.EscalationPolicyID, pi.EscalationPolicyID)
	set(&p.Status, pi.Status)
	set(&p.Urgency, pi.Urgency)
	p.Priority = pi.Priority
}

// pagerStale reports whether ev is older than an event already applied to
// its pager incident (a late re-delivery).
func pagerStale(tx Tx, ev PagerEvent) (bool, error) {
	if ev.OccurredAt.IsZero() {
		return false, nil
	}
	raw, ok, err := tx.Key(pagerLastKey(ev.Source, ev.Incident.ID))
	if err != nil || !ok {
		return false, err
	}
	last, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return false, nil
	}
	return ev.OccurredAt.Before(last), nil
}

// applyPager changes inc for ev and returns the timeline events that record
// it, and the pager users to resolve and add to the incident.
func applyPager(inc *Incident, ev PagerEvent, primary, stale bool, now time.Time) ([]Event, []PagerUser) {
	by := ev.Actor()
	at := ev.OccurredAt
	if at.IsZero() || at.After(now) {
		at = now
	}
	pi := ev.Incident
	label := ev.label()
	if inc.Pager.IncidentID == pi.ID && inc.Pager.Number != 0 && pi.Number == 0 {
		label = inc.Pager.Label()
	}
	data := func() map[string]string {
		d := map[string]string{"type": ev.Type, "pager_incident": pi.ID}
		if pi.URL != "" {
			d["url"] = pi.URL
		}
		return d
	}
	key := string(ev.Source) + ":" + ev.ID
	note := func(text string, quiet bool) Event {
		e := inc.newEvent(EventPagerEvent, by, at, text, data())
		e.Key, e.Quiet = key, quiet
		return e
	}
	moved := func(e Event, err error, what string) []Event {
		if err != nil {
			return []Event{note(fmt.Sprintf("%s: %s by %s (already %s here, so nothing changed)", label, what, by.Mention(), inc.Status), true)}
		}
		e.Key = key
		if e.Data == nil {
			e.Data = map[string]string{}
		}
		for k, v := range data() {
			e.Data[k] = v
		}
		return []Event{e}
	}
	if primary && !stale {
		prevPriority := inc.Pager.Priority
		inc.Pager.update(pi)
		if pi.Full && pi.Priority != prevPriority && ev.Type != PagerPriority && ev.Severity.Valid() && ev.Severity != inc.Severity {
			// A priority we had not seen (the trigger arrived after another
			// event opened the incident): follow it.
			inc.Severity = ev.Severity
		}
	}
	var users []PagerUser
	addUsers := func(us ...PagerUser) {
		for _, u := range us {
			if u.ID != "" && !slices.ContainsFunc(users, func(x PagerUser) bool { return x.ID == u.ID }) {
				users = append(users, u)
			}
		}
	}
	if inc.Revision == 0 && primary {
		addUsers(pi.Assignees...) // just opened: invite whoever is on it
	}

	// Notes, status updates and responder events are records, whatever the
	// incident's state; transitions apply only from the linked pager
	// incident and only when the event is not older than one applied.
	switch ev.Type {
	case PagerAnnotated:
		text := truncate(strings.TrimSpace(ev.Text), MaxTextLength)
		if text == "" {
			return []Event{note(label+": an empty note was added by "+by.Mention(), true)}, nil
		}
		if strings.HasSuffix(text, mirroredNoteMark) {
			return []Event{note(label+": a note from here was copied to "+ev.sourceName(), true)}, nil
		}
		e := inc.newEvent(EventNote, by, at, text, data())
		e.Key = key
		return []Event{e}, nil
	case PagerStatusUpdate:
		text := truncate(strings.TrimSpace(ev.Text), MaxTextLength)
		e, err := inc.StatusUpdate(text, by, at)
		if err != nil {
			return []Event{note(label+": an empty status update was published", true)}, nil
		}
		e.Key = key
		e.Data = data()
		return []Event{e}, nil
	case PagerResponderAdd:
		text := fmt.Sprintf("%s: %s asked %s to respond", label, by.Mention(), responderName(ev.Responder))
		if msg := strings.TrimSpace(ev.Text); msg != "" {
			text += ": " + truncate(msg, MaxTextLength)
		}
		addUsers(ev.Responder)
		return []Event{note(text, false)}, users
	case PagerResponderReply:
		state := ev.ResponderState
		if state == "" {
			state = "replied"
		}
		text := fmt.Sprintf("%s: %s %s the request to respond", label, responderName(ev.Responder), state)
		if state == "accepted" || state == "joined" {
			addUsers(ev.Responder)
		}
		return []Event{note(text, false)}, users
	}

	if !primary {
		return []Event{note(fmt.Sprintf("%s (another page of %s): %s by %s", label, inc.ID(), ev.Type, by.Mention()), false)}, nil
	}
	if stale {
		return []Event{note(fmt.Sprintf("%s: %s by %s arrived late and was not applied", label, ev.Type, by.Mention()), true)}, nil
	}
	switch ev.Type {
	case PagerTriggered:
		if inc.Revision == 0 {
			return nil, users // just opened: the declaration says it all
		}
		return []Event{note(label+" triggered again; it is the same incident", true)}, users
	case PagerAcknowledged:
		e, err := inc.Acknowledge(by, at)
		return moved(e, err, "acknowledged"), nil
	case PagerUnacknowledged:
		e, err := inc.Unacknowledge(by, at)
		if err == nil {
			inc.Escalations = 0
		}
		return moved(e, err, "unacknowledged"), nil
	case PagerResolved:
		e, err := inc.Resolve(by, at, pi.ResolveReason)
		return moved(e, err, "resolved"), nil
	case PagerReopened:
		addUsers(pi.Assignees...)
		e, err := inc.Reopen(by, at, "reopened in "+ev.sourceName())
		return moved(e, err, "reopened"), users
	case PagerEscalated, PagerReassigned, PagerDelegated:
		addUsers(pi.Assignees...)
		verb := map[string]string{PagerEscalated: "escalated", PagerReassigned: "reassigned", PagerDelegated: "delegated"}[ev.Type]
		text := fmt.Sprintf("%s %s by %s", label, verb, by.Mention())
		if ev.Type == PagerDelegated && pi.EscalationPolicyName != "" {
			text += " to escalation policy " + pi.EscalationPolicyName
		}
		if names := userNames(pi.Assignees); names != "" {
			text += "; assigned to " + names
		}
		return []Event{note(text, false)}, users
	case PagerPriority:
		prio := pi.Priority
		if prio == "" {
			prio = "none"
		}
		if ev.Severity.Valid() && ev.Severity != inc.Severity {
			e, err := inc.SetSeverity(ev.Severity, by, at, ev.sourceName()+" priority "+prio)
			return moved(e, err, "priority changed"), nil
		}
		return []Event{note(fmt.Sprintf("%s: priority changed to %s by %s", label, prio, by.Mention()), false)}, nil
	}
	return nil, nil
}

func responderName(u PagerUser) string {
	if u.Name != "" {
		return u.Name
	}
	if u.ID != "" {
		return u.ID
	}
	return "a responder"
}

func userNames(us []PagerUser) string {
	names := make([]string, 0, len(us))
	for _, u := range us {
		names = append(names, responderName(u))
	}
	return strings.Join(names, ", ")
}

// AddMembers adds chat users to the incident's participants (the chat sync
// invites them to its channel). Users already in it are skipped; if none is
// new nothing is stored.
func (s *Service) AddMembers(ctx context.Context, ref Ref, users []string) (*Incident, error) {
	var out *Incident
	err := s.store.Update(ctx, func(tx Tx) error {
		inc, err := s.lookup(tx, ref)
		if err != nil {
			return err
		}
		out = inc
		added := false
		for _, u := range users {
			if inc.addMember(u) {
				added = true
			}
		}
		if !added {
			return nil
		}
		return s.commit(tx, inc, nil, s.clock.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("adding members to %s: %w", ref, err)
	}
	return out, nil
}

// RequestPage checks that incident ref can be paged and schedules the page
// to target; the PagerAction it returns says which page number it is. The
// result (a linked pager incident, or the reason it failed) is told in the
// incident's channel when the job has run.
func (s *Service) RequestPage(ctx context.Context, ref Ref, target PagerTarget, message string, by Actor) (*Incident, PagerAction, error) {
	message = strings.TrimSpace(message)
	if err := checkText(message); err != nil {
		return nil, PagerAction{}, err
	}
	var (
		out    *Incident
		action PagerAction
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		inc, err := s.lookup(tx, ref)
		if err != nil {
			return err
		}
		if !inc.Status.Open() {
			return Errorf(ECONFLICT, "%s is resolved; reopen it before paging anyone.", inc.ID())
		}
		now := s.clock.Now()
		page := 1
		if raw, ok, err := tx.Key(pagerPagesKey(inc.Number)); err != nil {
			return err
		} else if ok {
			prev, _ := strconv.Atoi(string(raw))
			page = prev + 1
		}
		if err := tx.PutKey(pagerPagesKey(inc.Number), []byte(strconv.Itoa(page)), now); err != nil {
			return err
		}
		action = PagerAction{Incident: inc.Number, Op: PagerOpPage, By: by, Target: target, Message: message, Page: page}
		out = inc
		return EnqueuePagerAction(tx, action, now)
	})
	if err != nil {
		return nil, PagerAction{}, err
	}
	return out, action, nil
}

// RequestEscalation raises incident ref's linked pager incident to its next
// escalation level: in one transaction it records the escalation on the
// timeline and schedules the pager call. It returns the incident and the
// level asked for.
func (s *Service) RequestEscalation(ctx context.Context, ref Ref, by Actor) (*Incident, int, error) {
	var (
		out   *Incident
		level int
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		inc, err := s.lookup(tx, ref)
		if err != nil {
			return err
		}
		switch {
		case inc.Pager.IncidentID == "":
			return Errorf(EINVALID, "%s is not linked to a pager incident, so there is nothing to escalate. Page someone with `page <service>` first.", inc.ID())
		case !inc.Status.Open():
			return Errorf(ECONFLICT, "%s is resolved; there is nobody left to escalate to.", inc.ID())
		}
		now := s.clock.Now()
		level = max(inc.Pager.EscalationLevel, 1) + 1
		inc.Pager.EscalationLevel = level
		ev := inc.newEvent(EventEscalated, by, now,
			fmt.Sprintf("%s escalated %s to escalation level %d", by.Mention(), inc.Pager.Label(), level),
			map[string]string{"level": strconv.Itoa(level), "reason": "manual", "pager_incident": inc.Pager.IncidentID})
		if err := s.commit(tx, inc, []Event{ev}, now); err != nil {
			return err
		}
		out = inc
		return EnqueuePagerAction(tx, PagerAction{
			Incident: inc.Number, Op: PagerOpEscalate, By: by, PagerIncidentID: inc.Pager.IncidentID,
			Level: level, Reason: "manual",
		}, now)
	})
	if err != nil {
		return nil, 0, err
	}
	return out, level, nil
}

// LinkPager records that action (a page) opened pager incident ref: the
// incident is linked to it unless it is linked already, and the page is
// recorded on the timeline once per page number.
func (s *Service) LinkPager(ctx context.Context, action PagerAction, ref PagerRef) (*Incident, error) {
	var out *Incident
	err := s.store.Update(ctx, func(tx Tx) error {
		inc, err := tx.Incident(action.Incident)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		linked := false
		switch {
		case inc.Pager.IncidentID == "" && ref.IncidentID != "":
			if other, err := tx.IncidentByPager(Source(ref.System), ref.IncidentID); err == nil && other.Number != inc.Number {
				break // that pager incident already belongs to another incident
			} else if err != nil && ErrorCode(err) != ENOTFOUND {
				return err
			}
			dedup := inc.Pager.DedupKey
			inc.Pager = ref
			if inc.Pager.DedupKey == "" {
				inc.Pager.DedupKey = dedup
			}
			linked = true
		case !inc.Pager.Linked():
			inc.Pager = ref
			linked = true
		case inc.Pager.IncidentID == ref.IncidentID || (ref.IncidentID == "" && inc.Pager.DedupKey == ref.DedupKey):
			inc.Pager.update(PagerIncident{Number: ref.Number, URL: ref.URL})
		}
		if linked && inc.Pager.EscalationLevel == 0 {
			inc.Pager.EscalationLevel = 1
		}
		what := ref.Label()
		if ref.IncidentID == "" {
			what = ref.Name() + " (dedup key " + ref.DedupKey + ")"
		}
		text := fmt.Sprintf("%s paged %s: %s", action.By.Mention(), action.Target, what)
		if action.Page == 0 {
			text = fmt.Sprintf("Nobody acknowledged %s, so the bot paged %s: %s", inc.ID(), action.Target, what)
		}
		if action.Message != "" {
			text += ": " + action.Message
		}
		ev := inc.newEvent(EventPageSent, action.By, now, text, map[string]string{
			"target": action.Target.String(), "pager_incident": ref.IncidentID, "url": ref.URL,
		})
		ev.Key = "page:" + strconv.Itoa(action.Page)
		out = inc
		return s.commit(tx, inc, []Event{ev}, now)
	})
	if err != nil {
		return nil, fmt.Errorf("linking %s to its pager incident: %w", FormatID(action.Incident), err)
	}
	return out, nil
}

// ReportPagerFailure tells the incident's channel, in plain words, that a
// pager action failed for good (key makes the report idempotent: the job's
// id). An escalation that failed gives its level back.
func (s *Service) ReportPagerFailure(ctx context.Context, action PagerAction, key, reason string) error {
	_, err := s.Change(ctx, Ref{Number: action.Incident}, func(inc *Incident, now time.Time) ([]Event, error) {
		var what string
		pager := inc.Pager.Name()
		switch action.Op {
		case PagerOpPage:
			what = "could not page " + action.Target.String()
		case PagerOpEscalate:
			what = fmt.Sprintf("could not escalate %s to level %d", inc.Pager.Label(), action.Level)
			if inc.Pager.EscalationLevel == action.Level {
				inc.Pager.EscalationLevel = action.Level - 1
			}
		case PagerOpAcknowledge:
			what = "could not acknowledge " + inc.Pager.Label() + " in " + pager
		case PagerOpResolve:
			what = "could not resolve " + inc.Pager.Label() + " in " + pager
		case PagerOpNote:
			what = "could not copy a note to " + inc.Pager.Label()
		default:
			what = "a call to " + pager + " failed"
		}
		ev := inc.newEvent(EventError, BotActor, now, pager+": "+what+": "+reason, map[string]string{"op": action.Op})
		ev.Key = "pager-error:" + key
		return []Event{ev}, nil
	})
	return err
}

// mirroredNoteMark ends every note the bot copies to the pager, so that the
// pager's webhook for it (incident.annotated, made by the bot's own pager
// user) is known for the echo it is.
const mirroredNoteMark = ", via incident-bot)"

func mirroredNote(text string, by Actor) string {
	who := by.Name
	if who == "" {
		who = by.ID
	}
	return truncate(text, MaxTextLength) + " (" + who + mirroredNoteMark
}

// PagerSync configures the hook that mirrors changes made in the bot to
// the linked pager incident.
type PagerSync struct {
	// Status: acknowledging (or mitigating a triggered incident) and
	// resolving in the bot do the same in the pager.
	Status bool
	// Notes: notes added in the bot are added to the pager incident.
	Notes bool
}

// PagerSyncHook returns the change hook that enqueues pager actions for
// changes made by anyone but the pager itself, so a change that came from
// the pager is never sent back to it (no echo loops).
func PagerSyncHook(cfg PagerSync) ChangeHook {
	return func(tx Tx, inc *Incident, events []Event) error {
		for _, ev := range events {
			// A change the pager made is never sent back to it (a record
			// without a System predates neutral sources: any outside source).
			if !inc.Pager.Linked() || ev.Actor.Source == Source(inc.Pager.System) || (inc.Pager.System == "" && ev.Actor.Source.External()) {
				continue
			}
			a := PagerAction{Incident: inc.Number, By: ev.Actor, PagerIncidentID: inc.Pager.IncidentID, DedupKey: inc.Pager.DedupKey}
			switch {
			case ev.Kind == EventStatusChanged && cfg.Status:
				from, to := Status(ev.Data["from"]), Status(ev.Data["to"])
				switch {
				case to == StatusResolved:
					a.Op = PagerOpResolve
				case from == StatusTriggered && (to == StatusAcknowledged || to == StatusMitigated):
					a.Op = PagerOpAcknowledge
				}
			case ev.Kind == EventNote && cfg.Notes && inc.Pager.IncidentID != "" && ev.Data["previous_title"] == "":
				a.Op, a.Text = PagerOpNote, mirroredNote(ev.Text, ev.Actor)
			}
			if a.Op == "" {
				continue
			}
			if err := EnqueuePagerAction(tx, a, ev.Recorded); err != nil {
				return err
			}
		}
		return nil
	}
}
