package incident

import (
	"fmt"
	"strings"
	"time"
)

// EventKind is the type of a timeline event.
type EventKind string

// Timeline event kinds.
const (
	EventDeclared          EventKind = "declared"
	EventStatusChanged     EventKind = "status_changed"
	EventSeverityChanged   EventKind = "severity_changed"
	EventRoleAssigned      EventKind = "role_assigned"
	EventNote              EventKind = "note"
	EventStatusUpdate      EventKind = "status_update"
	EventMessagePinned     EventKind = "message_pinned"
	EventMemberJoined      EventKind = "member_joined"
	EventPageSent          EventKind = "page_sent"
	EventEscalated         EventKind = "escalated"
	EventReminder          EventKind = "reminder"
	EventRunbookRequested  EventKind = "runbook_requested"
	EventRunbookRan        EventKind = "runbook_ran"
	EventPagerEvent        EventKind = "pager_event"
	EventAlert             EventKind = "alert" // an alert of the incident's alert group fired or resolved (alert.go)
	EventPostmortemDrafted EventKind = "postmortem_drafted"
	EventFollowupAdded     EventKind = "followup_added"
	EventFollowupChanged   EventKind = "followup_changed"
	EventFactChanged       EventKind = "fact_changed" // title, summary, impact, services, start corrected
	EventChannelCreated    EventKind = "channel_created"
	EventError             EventKind = "error" // an outside call failed in a way people should know about
)

// Event.Data keys by kind. Features that read the timeline (postmortems,
// the digest) rely on these:
//
//	declared          severity, status
//	status_changed    from, to
//	severity_changed  from, to
//	role_assigned     role, user, previous
//	message_pinned    author (user id; empty for an app's message), author_name (an app's message), channel, ts (message id), link (the message's address, when known)
//	followup_added    id
//	fact_changed      fact (title, summary, impact, service_added, service_removed, started), from, to (started: RFC 3339)
//	followup_changed  id, change ("done", "reopened", "assigned", "due"), owner, previous_owner, due
//	postmortem_drafted version
//	page_sent         target, pager_incident, url
//	escalated         level, reason ("ack_timeout" or "manual")
//	runbook_requested runbook (absent if none was named), params (name=value, secrets masked), run_id, decision (the audit event name), reason (one line, mentions as @id)
//	runbook_ran       runbook, params, run_id, outcome (succeeded, failed, timed_out, canceled), exit_code (real runs that exited only), duration_ms, dry_run ("true"/"false")
//	pager_event       type (a neutral pager event kind, e.g. acknowledged), pager_incident, url
//	alert             source, group, change (firing, resolved, cleared), fingerprint, alertname, url, offer ("mitigate": show a Mitigated button)
//
// Event is one entry of an incident's timeline.
//
// Key is the idempotency key of the outside event this entry records (a Slack
// message ts, a PagerDuty event id...): recording the same key twice for one
// incident stores it once. Events the bot makes up itself have no key.
type Event struct {
	Incident int64             `json:"incident"`
	Seq      int64             `json:"seq"` // 1, 2, 3... per incident, in recording order
	At       time.Time         `json:"at"`  // when it happened (a pinned message keeps its original time)
	Kind     EventKind         `json:"kind"`
	Actor    Actor             `json:"actor"`
	Text     string            `json:"text,omitempty"`
	Key      string            `json:"key,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
	Recorded time.Time         `json:"recorded"`        // when the bot stored it
	Quiet    bool              `json:"quiet,omitempty"` // recorded, but not told in the channel
}

// Describe renders the event as one line of chat text (see the package doc
// for the markup).
func (e Event) Describe() string {
	who := e.Actor.Mention()
	d := e.Data
	switch e.Kind {
	case EventDeclared:
		return fmt.Sprintf("%s declared %s *%s*: %s", who, FormatID(e.Incident), d["severity"], e.Text)
	case EventStatusChanged:
		s := fmt.Sprintf("%s changed the status from %s to *%s*", who, d["from"], d["to"])
		return withText(s, e.Text)
	case EventSeverityChanged:
		return withText(fmt.Sprintf("%s changed the severity from %s to *%s*", who, d["from"], d["to"]), e.Text)
	case EventRoleAssigned:
		s := fmt.Sprintf("%s made <@%s> the %s", who, d["user"], d["role"])
		if prev := d["previous"]; prev != "" {
			s += fmt.Sprintf(" (was <@%s>)", prev)
		}
		return s
	case EventNote:
		return fmt.Sprintf("Note from %s: %s", who, e.Text)
	case EventStatusUpdate:
		return fmt.Sprintf("*Status update* from %s: %s", who, e.Text)
	case EventMessagePinned:
		from := "<@" + d["author"] + ">"
		if d["author"] == "" && d["author_name"] != "" {
			from = d["author_name"]
		}
		s := fmt.Sprintf("Pinned to the timeline: message from %s: %s", from, e.Text)
		if l := d["link"]; IsWebLink(l) {
			s += fmt.Sprintf(" (<%s>)", l)
		}
		return s
	case EventMemberJoined:
		return fmt.Sprintf("%s joined the channel", who)
	case EventFollowupAdded:
		return fmt.Sprintf("Follow-up #%s added by %s: %s", d["id"], who, e.Text)
	case EventFactChanged:
		return withText(fmt.Sprintf("%s %s", who, FactChangeText(d)), e.Text)
	case EventFollowupChanged:
		return fmt.Sprintf("Follow-up #%s %s by %s: %s", d["id"], FollowupChangeText(d, func(id string) string { return "<@" + id + ">" }), who, e.Text)
	case EventPostmortemDrafted:
		return fmt.Sprintf("%s drafted postmortem version %s", who, d["version"])
	}
	if e.Text != "" {
		return e.Text
	}
	return fmt.Sprintf("%s: %s", e.Kind, who)
}

// IsWebLink reports whether s is an https address that is safe inside the
// markup's <address|label> link: no spaces, angle brackets or bars.
func IsWebLink(s string) bool {
	return strings.HasPrefix(s, "https://") && len(s) > len("https://") && len(s) <= 2000 && !strings.ContainsAny(s, " \t\r\n<>|")
}

func withText(s, text string) string {
	if strings.TrimSpace(text) == "" {
		return s
	}
	return s + ": " + text
}
