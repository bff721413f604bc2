package pdtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The public test vector of go-pagerduty v1.8.0 (webhookv3/webhookv3_test.go:
// const secret, defaultBody; case "valid" and the mismatch case). The body
// is one line of 1655 bytes; conference_number is a number in it.
const (
	VectorSecret    = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
	VectorSignature = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
	VectorMismatch  = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
	VectorBody      = `{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},"resolve_reason":null}}}`
)

// DocsPriorityUpdated is the complete sample payload of PagerDuty's V3
// webhook overview (an incident.priority_updated event), as printed there.
const DocsPriorityUpdated = `{
  "event": {
    "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
    "event_type": "incident.priority_updated",
    "resource_type": "incident",
    "occurred_at": "2020-10-02T18:45:22.169Z",
    "agent": {
      "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
      "id": "PLH1HKV",
      "self": "https://api.pagerduty.com/users/PLH1HKV",
      "summary": "Tenex Engineer",
      "type": "user_reference"
    },
    "client": {
      "name": "PagerDuty"
    },
    "data": {
      "id": "PGR0VU2",
      "type": "incident",
      "self": "https://api.pagerduty.com/incidents/PGR0VU2",
      "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
      "number": 2,
      "status": "triggered",
      "incident_key": "d3640fbd41094207a1c11e58e46b1662",
      "created_at": "2020-04-09T15:16:27Z",
      "reopened_at": "2020-10-02T18:45:22Z",
      "title": "A little bump in the road",
      "service": {
        "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
        "id": "PF9KMXH",
        "self": "https://api.pagerduty.com/services/PF9KMXH",
        "summary": "API Service",
        "type": "service_reference"
      },
      "assignees": [
        {
          "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
          "id": "PTUXL6G",
          "self": "https://api.pagerduty.com/users/PTUXL6G",
          "summary": "User 123",
          "type": "user_reference"
        }
      ],
      "escalation_policy": {
        "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
        "id": "PUS0KTE",
        "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
        "summary": "Default",
        "type": "escalation_policy_reference"
      },
      "teams": [
        {
          "html_url": "https://acme.pagerduty.com/teams/PFCVPS0",
          "id": "PFCVPS0",
          "self": "https://api.pagerduty.com/teams/PFCVPS0",
          "summary": "Engineering",
          "type": "team_reference"
        }
      ],
      "priority": {
        "html_url": "https://acme.pagerduty.com/account/incident_priorities",
        "id": "PSO75BM",
        "self": "https://api.pagerduty.com/priorities/PSO75BM",
        "summary": "P1",
        "type": "priority_reference"
      },
      "urgency": "high",
      "conference_bridge": {
        "conference_number": "+1 1234123412,,987654321#",
        "conference_url": "https://example.com"
      },
      "resolve_reason": null
    }
  }
}`

// The data samples of the other event data types, from the same page.
const (
	DocsNoteData = `{ "incident": { "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "id": "PGR0VU2", "self": "https://api.pagerduty.com/incidents/PGR0VU2", "summary": "A little bump in the road", "type": "incident_reference" },
  "id": "P2LA89X", "content": "I sure am glad we are using PagerDuty!", "trimmed": false, "type": "incident_note" }`
	DocsResponderData = `{ "incident": { "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "id": "PGR0VU2", "self": "https://api.pagerduty.com/incidents/PGR0VU2", "summary": "A little bump in the road", "type": "incident_reference" },
  "user": { "html_url": "https://acme.pagerduty.com/users/PVMGSML", "id": "PVMGSML", "self": "https://api.pagerduty.com/users/PVMGSML", "summary": "Maeve", "type": "user_reference" },
  "escalation_policy": { "html_url": "https://acme.pagerduty.com/escalation_policies/PJFWPEP", "id": "PJFWPEP", "self": "https://api.pagerduty.com/escalation_policies/PJFWPEP", "summary": "The Policy", "type": "escalation_policy_reference" },
  "message": "Please help me make the tests pass", "state": "pending", "type": "incident_responder" }`
	DocsStatusUpdateData = `{ "incident": { "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "id": "PGR0VU2", "self": "https://api.pagerduty.com/incidents/PGR0VU2", "summary": "A little bump in the road", "type": "incident_reference" },
  "id": "P2LA89X", "message": "A fix for this incident is being developed", "trimmed": false, "type": "incident_status_update" }`
)

// Ref is a PagerDuty resource reference in a webhook.
type Ref struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Summary string `json:"summary"`
	Self    string `json:"self,omitempty"`
	HTMLURL string `json:"html_url,omitempty"`
}

// Event is one V3 webhook event.
type Event struct {
	ID         string
	Type       string
	OccurredAt time.Time
	Agent      *Ref            // nil: null (PagerDuty's automation)
	Data       json.RawMessage // event.data
}

// Body renders the delivery body: {"event":{...}}.
func (e Event) Body() []byte {
	resource := "incident"
	if strings.HasPrefix(e.Type, "service.") {
		resource = "service"
	}
	type wire struct {
		ID           string          `json:"id"`
		EventType    string          `json:"event_type"`
		ResourceType string          `json:"resource_type"`
		OccurredAt   string          `json:"occurred_at"`
		Agent        *Ref            `json:"agent"`
		Client       any             `json:"client"`
		Data         json.RawMessage `json:"data"`
	}
	b, _ := json.Marshal(map[string]wire{"event": {
		ID: e.ID, EventType: e.Type, ResourceType: resource, OccurredAt: e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		Agent: e.Agent, Client: map[string]string{"name": "PagerDuty"}, Data: e.Data,
	}})
	return b
}

// WithEvent returns a copy of the documented sample (DocsPriorityUpdated)
// with its event id and type replaced, for building other incident events.
func WithEvent(id, eventType string) []byte {
	var env map[string]map[string]any
	if err := json.Unmarshal([]byte(DocsPriorityUpdated), &env); err != nil {
		panic(err)
	}
	env["event"]["id"] = id
	env["event"]["event_type"] = eventType
	b, _ := json.Marshal(env)
	return b
}

// Envelope builds a delivery body around a data sample.
func Envelope(id, eventType string, agent *Ref, data string) []byte {
	return Event{ID: id, Type: eventType, OccurredAt: time.Date(2020, 10, 2, 18, 45, 22, 0, time.UTC), Agent: agent, Data: json.RawMessage(data)}.Body()
}

// Sign returns the X-PagerDuty-Signature value for body: one "v1=" entry
// per secret, comma-separated, as PagerDuty sends during a rotation.
func Sign(body []byte, secrets ...string) string {
	entries := make([]string, len(secrets))
	for i, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write(body)
		entries[i] = "v1=" + hex.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(entries, ",")
}

// Sender delivers webhooks as PagerDuty does.
type Sender struct {
	URL     string   // the receiver, e.g. http://127.0.0.1:8080/webhooks/pagerduty
	Secrets []string // signing secrets (none: unsigned)
	Client  *http.Client
	seq     atomic.Int64
}

// Request builds a signed delivery request of body with a webhook id.
func (s *Sender) Request(ctx context.Context, body []byte, webhookID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "PagerDuty-Webhook/V3.0")
	req.Header.Set("X-Webhook-Subscription", "PSUBSCR")
	if webhookID != "" {
		req.Header.Set("X-Webhook-Id", webhookID)
	}
	if len(s.Secrets) > 0 {
		req.Header.Set("X-PagerDuty-Signature", Sign(body, s.Secrets...))
	}
	return req, nil
}

// Deliver sends body with a webhook id and returns the answer's status.
func (s *Sender) Deliver(ctx context.Context, body []byte, webhookID string) (int, error) {
	req, err := s.Request(ctx, body, webhookID)
	if err != nil {
		return 0, err
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// DeliverEvent delivers an event with a new webhook id.
func (s *Sender) DeliverEvent(ctx context.Context, e Event) (int, error) {
	return s.Deliver(ctx, e.Body(), fmt.Sprintf("wh-%s-%d", e.ID, s.seq.Add(1)))
}
