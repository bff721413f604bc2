package pagerduty

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The V3 webhook payload. go-pagerduty has no V3 payload types (its
// WebhookPayload is the legacy V2 format), so these are our own. Decoding is
// lenient: any field may be missing or null, and conference_number may be a
// number (it is in go-pagerduty's test vector) or a string (in the docs).

// Envelope is one V3 delivery: exactly one event.
type Envelope struct {
	Event *WebhookEvent `json:"event"`
}

// WebhookEvent is the event of a V3 delivery.
type WebhookEvent struct {
	ID           string          `json:"id"`
	EventType    string          `json:"event_type"`
	ResourceType string          `json:"resource_type"`
	OccurredAt   string          `json:"occurred_at"`
	Agent        *Reference      `json:"agent"`  // null: PagerDuty's automation
	Client       json.RawMessage `json:"client"` // unused
	Data         json.RawMessage `json:"data"`
}

// Reference is a PagerDuty resource reference (user_reference,
// service_reference, incident_reference...).
type Reference struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Summary string `json:"summary"`
	Self    string `json:"self"`
	HTMLURL string `json:"html_url"`
}

// EventData is event.data for the data types the bot reads: incident,
// incident_note, incident_responder and incident_status_update. Each type
// sets only its own fields.
type EventData struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Self    string `json:"self"`
	HTMLURL string `json:"html_url"`

	// incident
	Number           flexInt       `json:"number"`
	Status           string        `json:"status"`
	IncidentKey      string        `json:"incident_key"`
	CreatedAt        string        `json:"created_at"`
	ReopenedAt       string        `json:"reopened_at"`
	Title            string        `json:"title"`
	Service          *Reference    `json:"service"`
	Assignees        []Reference   `json:"assignees"`
	EscalationPolicy *Reference    `json:"escalation_policy"`
	Teams            []Reference   `json:"teams"`
	Priority         *Reference    `json:"priority"`
	Urgency          string        `json:"urgency"`
	ConferenceBridge *ConfBridge   `json:"conference_bridge"`
	ResolveReason    *ResolveRsn   `json:"resolve_reason"`
	IncidentType     *IncidentType `json:"incident_type"`

	// incident_note, incident_responder, incident_status_update
	Incident *Reference `json:"incident"`
	Content  string     `json:"content"`
	Message  string     `json:"message"`
	User     *Reference `json:"user"`
	State    string     `json:"state"`
	Trimmed  bool       `json:"trimmed"`
}

// ConfBridge is an incident's conference bridge.
type ConfBridge struct {
	ConferenceNumber flexString `json:"conference_number"`
	ConferenceURL    string     `json:"conference_url"`
}

// ResolveRsn is an incident's resolve reason (set when it was merged).
type ResolveRsn struct {
	Type     string     `json:"type"`
	Incident *Reference `json:"incident"`
}

// IncidentType is an incident's type.
type IncidentType struct {
	Name string `json:"name"`
}

// flexString decodes a JSON string, number or boolean as text, and null
// as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		*f = "" // not something we can show; ignore rather than reject
	default:
		*f = flexString(b)
	}
	return nil
}

// flexInt decodes a positive whole JSON number or numeric string (an
// incident number: 2, "2", 2.0); null, NaN, infinities, fractions, values
// beyond int64 and anything else decode as 0 (unknown).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*f = 0
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		if n > 0 {
			*f = flexInt(n)
		}
		return nil
	}
	// A float's conversion to int64 is undefined outside int64's range
	// (NaN and 1e300 became math.MinInt64), so check before converting.
	if x, err := strconv.ParseFloat(string(s), 64); err == nil && x >= 1 && x < math.MaxInt64 && x == math.Trunc(x) {
		*f = flexInt(x)
	}
	return nil
}

// maxIDLength bounds the ids the bot keys store records by (event,
// incident and webhook ids). PagerDuty's are a few dozen characters; a
// store key cannot exceed 32 KiB and a job key cannot hold a NUL, so an id
// that breaks either would fail the store step with a 5xx that PagerDuty
// retries for 48 hours.
const maxIDLength = 256

// validID reports whether id can key a store record: 1 to maxIDLength
// bytes, no control characters.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// ErrMalformed is returned by Decode for a body that is not a V3 delivery.
var ErrMalformed = errors.New("malformed PagerDuty webhook")

// Delivery is a decoded V3 delivery.
type Delivery struct {
	Event *WebhookEvent
	// Data is nil for event types the bot does not handle (their data is
	// not decoded).
	Data *EventData
}

// Handled reports whether the bot acts on this event type.
func (d *Delivery) Handled() bool { return d.Data != nil }

// Source is PagerDuty as the domain names it; Name is how people do.
const (
	Source = incident.SourcePagerDuty
	Name   = "PagerDuty"
)

// eventKinds maps the V3 webhook event types the bot acts on to the
// domain's neutral pager event kinds; other types are ignored.
// https://developer.pagerduty.com/docs/webhooks-overview#event-types
var eventKinds = map[string]string{
	"incident.triggered":               incident.PagerTriggered,
	"incident.acknowledged":            incident.PagerAcknowledged,
	"incident.unacknowledged":          incident.PagerUnacknowledged,
	"incident.resolved":                incident.PagerResolved,
	"incident.reopened":                incident.PagerReopened,
	"incident.escalated":               incident.PagerEscalated,
	"incident.reassigned":              incident.PagerReassigned,
	"incident.delegated":               incident.PagerDelegated,
	"incident.priority_updated":        incident.PagerPriority,
	"incident.annotated":               incident.PagerAnnotated,
	"incident.responder.added":         incident.PagerResponderAdd,
	"incident.responder.replied":       incident.PagerResponderReply,
	"incident.status_update_published": incident.PagerStatusUpdate,
}

// Kind returns the domain's pager event kind for a V3 event type, and
// whether the bot acts on that type.
func Kind(eventType string) (string, bool) {
	k, ok := eventKinds[eventType]
	return k, ok
}

// label names a PagerDuty incident for chat: "PagerDuty #12".
func label(number int64, id string) string {
	if number != 0 {
		return Name + " #" + strconv.FormatInt(number, 10)
	}
	return Name + " incident " + id
}

// PagerIncidentID is the PagerDuty incident the event is about ("" if
// none).
func (d *Delivery) PagerIncidentID() string {
	if d.Data == nil {
		return ""
	}
	if d.incidentData() {
		return d.Data.ID
	}
	if d.Data.Incident != nil {
		return d.Data.Incident.ID
	}
	return ""
}

// incidentData reports whether event.data is the whole incident (data.type
// "incident"; by the event type when data.type is missing).
func (d *Delivery) incidentData() bool {
	switch eventKinds[d.Event.EventType] {
	case incident.PagerAnnotated, incident.PagerResponderAdd, incident.PagerResponderReply, incident.PagerStatusUpdate:
		return d.Data.Type == "incident"
	}
	return d.Data.Type == "incident" || d.Data.Type == ""
}

// Decode parses a V3 delivery body. The error wraps ErrMalformed (with a
// reason fit for a 400 answer) when the body is not JSON, has no event, or
// the event lacks an id or a type, or, for the types the bot handles, when
// its data names no incident. The event id and the incident id must be ids:
// at most 256 bytes, no control characters.
func Decode(body []byte) (*Delivery, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrMalformed, jsonProblem(err))
	}
	ev := env.Event
	switch {
	case ev == nil:
		return nil, fmt.Errorf("%w: no event", ErrMalformed)
	case strings.TrimSpace(ev.ID) == "":
		return nil, fmt.Errorf("%w: event.id missing", ErrMalformed)
	case strings.TrimSpace(ev.EventType) == "":
		return nil, fmt.Errorf("%w: event.event_type missing", ErrMalformed)
	case !validID(ev.ID):
		return nil, fmt.Errorf("%w: event.id is not an id (over %d bytes or control characters)", ErrMalformed, maxIDLength)
	}
	d := &Delivery{Event: ev}
	if _, ok := eventKinds[ev.EventType]; !ok {
		return d, nil
	}
	var data EventData
	if len(bytes.TrimSpace(ev.Data)) > 0 && !bytes.Equal(bytes.TrimSpace(ev.Data), []byte("null")) {
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, fmt.Errorf("%w: event.data: %v", ErrMalformed, jsonProblem(err))
		}
	}
	d.Data = &data
	switch id := d.PagerIncidentID(); {
	case id == "":
		return nil, fmt.Errorf("%w: %s without an incident id", ErrMalformed, ev.EventType)
	case !validID(id):
		return nil, fmt.Errorf("%w: %s incident id is not an id (over %d bytes or control characters)", ErrMalformed, ev.EventType, maxIDLength)
	}
	return d, nil
}

// jsonProblem shortens a JSON error for a reply: no input is echoed.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s has the wrong type (%s)", typ.Field, typ.Value)
	}
	return "cannot decode"
}

// parseTime reads an ISO-8601 time; anything else is the zero time.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.000Z0700"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Severities maps PagerDuty priorities, then urgencies, to severities.
type Severities struct {
	Priorities map[string]incident.Severity // by upper-case priority name
	Urgencies  map[string]incident.Severity // by upper-case urgency
}

// For returns the severity of an incident with this priority (name, e.g.
// "P1") and urgency: the priority's if it is mapped, else the urgency's,
// else 0 (unknown).
func (s Severities) For(priority, urgency string) incident.Severity {
	if sev, ok := s.Priorities[strings.ToUpper(strings.TrimSpace(priority))]; ok && priority != "" {
		return sev
	}
	if sev, ok := s.Urgencies[strings.ToUpper(strings.TrimSpace(urgency))]; ok && urgency != "" {
		return sev
	}
	return 0
}

func user(r *Reference) incident.PagerUser {
	if r == nil {
		return incident.PagerUser{}
	}
	return incident.PagerUser{ID: r.ID, Name: incident.CleanLine(r.Summary)}
}

// PagerEvent converts a handled delivery to the domain's event. Every
// text a person or an alert wrote (titles, names, notes, messages) passes
// through incident.CleanText (CleanLine for one-line values) here, where it
// enters the bot; ids are checked where the delivery is read.
func (d *Delivery) PagerEvent(sev Severities) incident.PagerEvent {
	ev, data := d.Event, d.Data
	out := incident.PagerEvent{
		Source:     Source,
		SourceName: Name,
		ID:         ev.ID,
		Type:       eventKinds[ev.EventType],
		OccurredAt: parseTime(ev.OccurredAt),
		Agent:      user(ev.Agent),
	}
	pi := incident.PagerIncident{ID: d.PagerIncidentID()}
	if d.incidentData() {
		pi.Full = true
		pi.Number = int64(data.Number)
		pi.URL = data.HTMLURL
		pi.Title = incident.CleanLine(data.Title)
		pi.Status = data.Status
		pi.IncidentKey = data.IncidentKey
		pi.CreatedAt = parseTime(data.CreatedAt)
		pi.Urgency = data.Urgency
		if data.Service != nil {
			pi.ServiceID, pi.ServiceName = data.Service.ID, incident.CleanLine(data.Service.Summary)
		}
		if data.EscalationPolicy != nil {
			pi.EscalationPolicyID, pi.EscalationPolicyName = data.EscalationPolicy.ID, incident.CleanLine(data.EscalationPolicy.Summary)
		}
		if data.Priority != nil {
			pi.Priority = incident.CleanLine(data.Priority.Summary)
		}
		pi.Assignees = d.assignees()
		if cb := data.ConferenceBridge; cb != nil {
			pi.ConferenceURL, pi.ConferenceNumber = incident.CleanLine(cb.ConferenceURL), incident.CleanLine(string(cb.ConferenceNumber))
		}
		if rr := data.ResolveReason; rr != nil && rr.Incident != nil {
			pi.ResolveReason = "merged into " + incident.CleanLine(firstNonEmpty(rr.Incident.Summary, rr.Incident.ID))
		}
		out.Severity = sev.For(pi.Priority, pi.Urgency)
	} else if data.Incident != nil {
		pi.URL = data.Incident.HTMLURL
		pi.Title = incident.CleanLine(data.Incident.Summary)
	}
	switch data.Type {
	case "incident_note":
		out.Text = incident.CleanText(data.Content)
	case "incident_status_update":
		out.Text = incident.CleanText(data.Message)
	case "incident_responder":
		out.Text = incident.CleanText(data.Message)
		out.Responder = user(data.User)
		out.ResponderState = data.State
	}
	pi.Label = label(pi.Number, pi.ID)
	out.Incident = pi
	return out
}

// MaxInvitesPerEvent bounds the PagerDuty users one webhook event asks
// the bot to invite (the first assignees listed, without repeats). A real
// incident has a handful; a payload with thousands would otherwise cost a
// user look-up each. The rest are counted in the log, once per event.
const MaxInvitesPerEvent = 20

// assignees returns the incident's distinct assignees, at most
// MaxInvitesPerEvent of them.
func (d *Delivery) assignees() []incident.PagerUser {
	var out []incident.PagerUser
	seen := map[string]bool{}
	for i := range d.Data.Assignees {
		u := user(&d.Data.Assignees[i])
		if u.ID == "" || seen[u.ID] {
			continue
		}
		if len(out) == MaxInvitesPerEvent {
			break
		}
		seen[u.ID] = true
		out = append(out, u)
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
