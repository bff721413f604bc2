package runbook

import "time"

// EventKind names an audited decision or state change (§4.8).
type EventKind string

// Audit event kinds.
const (
	EventRequestReceived   EventKind = "request_received"
	EventValidationFailed  EventKind = "validation_failed"
	EventAuthzDenied       EventKind = "authz_denied"
	EventConfirmRequested  EventKind = "confirm_requested"
	EventConfirmed         EventKind = "confirmed"
	EventApprovalRequested EventKind = "approval_requested"
	EventApproved          EventKind = "approved"
	EventDenied            EventKind = "denied"
	EventExpired           EventKind = "expired"
	EventStarted           EventKind = "started"
	EventStepFinished      EventKind = "step_finished"
	EventFinished          EventKind = "finished"
	EventCanceled          EventKind = "canceled"
)

// Actor identifies the person behind an event.
type Actor struct {
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	UserID       string `json:"user_id"`
	DisplayName  string `json:"display_name,omitempty"` // snapshot for readers; never used to decide
}

// AuditParam is one parameter as audited: secrets masked, enum label and
// mapped value both recorded.
type AuditParam struct {
	Name      string `json:"name"`
	Label     string `json:"label"`
	Value     string `json:"value"`
	Defaulted bool   `json:"defaulted,omitempty"`
}

// Event is one append-only audit record. It never contains raw secrets,
// unredacted output or the raw request text. Marshal it with encoding/json.
type Event struct {
	Time           time.Time    `json:"ts"`
	Kind           EventKind    `json:"event"`
	RunID          string       `json:"run_id,omitempty"`
	RunbookID      string       `json:"runbook_id,omitempty"`
	RunbookVersion string       `json:"runbook_version,omitempty"`
	RequestHash    string       `json:"request_hash,omitempty"`
	Actor          Actor        `json:"actor"`
	ChannelID      string       `json:"channel_id,omitempty"`
	IncidentID     string       `json:"incident_id,omitempty"`
	Params         []AuditParam `json:"params,omitempty"`
	DryRun         bool         `json:"dry_run"`
	Approvers      []string     `json:"approvers,omitempty"`
	Step           string       `json:"step,omitempty"`
	// Argv is the rendered argv of Step (step_finished) or of every step
	// joined for display (started), with secrets masked and redacted.
	Argv       []string     `json:"argv,omitempty"`
	Status     Status       `json:"status,omitempty"`
	ExitCode   *int         `json:"exit_code,omitempty"`
	DurationMS int64        `json:"duration_ms,omitempty"`
	Output     *OutputStats `json:"output,omitempty"`
	Reason     string       `json:"reason,omitempty"`
}

// AuditFunc receives every audit event, synchronously and in order per
// request. It must not block for long or call back into the Engine.
type AuditFunc func(Event)

func auditParams(ps Params) []AuditParam {
	out := make([]AuditParam, len(ps))
	for i, v := range ps {
		out[i] = AuditParam{Name: v.Name, Label: v.Label, Value: v.Value, Defaulted: v.Defaulted}
		if v.Secret {
			out[i].Label, out[i].Value = masked, masked
		}
	}
	return out
}
