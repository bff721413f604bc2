package pagerduty_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

var defaultSeverities = pagerduty.Severities{
	Priorities: map[string]incident.Severity{"P1": incident.SEV1, "P2": incident.SEV2, "P3": incident.SEV3, "P4": incident.SEV4, "P5": incident.SEV4},
	Urgencies:  map[string]incident.Severity{"HIGH": incident.SEV2, "LOW": incident.SEV4},
}

func decode(t *testing.T, body string) *pagerduty.Delivery {
	t.Helper()
	d, err := pagerduty.Decode([]byte(body))
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	return d
}

func TestDecodeDocumentedSample(t *testing.T) {
	d := decode(t, pdtest.DocsPriorityUpdated)
	if !d.Handled() || d.PagerIncidentID() != "PGR0VU2" {
		t.Fatalf("handled %v incident %q", d.Handled(), d.PagerIncidentID())
	}
	ev := d.PagerEvent(defaultSeverities)
	want := incident.PagerEvent{
		ID: "5ac64822-4adc-4fda-ade0-410becf0de4f", Type: incident.PagerPriority,
		OccurredAt: time.Date(2020, 10, 2, 18, 45, 22, 169e6, time.UTC),
		Agent:      incident.PagerUser{ID: "PLH1HKV", Name: "Tenex Engineer"},
		Severity:   incident.SEV1,
	}
	if ev.ID != want.ID || ev.Type != want.Type || !ev.OccurredAt.Equal(want.OccurredAt) || ev.Agent != want.Agent || ev.Severity != want.Severity {
		t.Fatalf("event: %+v", ev)
	}
	pi := ev.Incident
	if !pi.Full || pi.Number != 2 || pi.Title != "A little bump in the road" || pi.Status != "triggered" ||
		pi.IncidentKey != "d3640fbd41094207a1c11e58e46b1662" || !pi.CreatedAt.Equal(time.Date(2020, 4, 9, 15, 16, 27, 0, time.UTC)) ||
		pi.ServiceID != "PF9KMXH" || pi.ServiceName != "API Service" || pi.EscalationPolicyID != "PUS0KTE" || pi.Priority != "P1" ||
		pi.Urgency != "high" || len(pi.Assignees) != 1 || pi.Assignees[0] != (incident.PagerUser{ID: "PTUXL6G", Name: "User 123"}) ||
		pi.ConferenceNumber != "+1 1234123412,,987654321#" || pi.URL != "https://acme.pagerduty.com/incidents/PGR0VU2" {
		t.Fatalf("incident: %+v", pi)
	}
}

func TestDecodeGoPagerDutyVectorWithNumericConferenceNumber(t *testing.T) {
	d := decode(t, pdtest.VectorBody)
	ev := d.PagerEvent(defaultSeverities)
	if ev.ID != "01BWDWL3NYY7LUFPZCC28QUCMK" || ev.Incident.ConferenceNumber != "1000" || ev.Incident.IncidentKey != "" || !ev.Incident.CreatedAt.IsZero() {
		t.Fatalf("vector: %+v", ev)
	}
}

func TestDecodeOtherDataTypes(t *testing.T) {
	agent := &pdtest.Ref{ID: "PLH1HKV", Type: "user_reference", Summary: "Tenex Engineer"}
	note := decode(t, string(pdtest.Envelope("n1", "incident.annotated", agent, pdtest.DocsNoteData))).PagerEvent(defaultSeverities)
	if note.Text != "I sure am glad we are using PagerDuty!" || note.Incident.ID != "PGR0VU2" || note.Incident.Full || note.Incident.Title != "A little bump in the road" || note.Severity != 0 {
		t.Errorf("note: %+v", note)
	}
	resp := decode(t, string(pdtest.Envelope("r1", "incident.responder.added", agent, pdtest.DocsResponderData))).PagerEvent(defaultSeverities)
	if resp.Responder != (incident.PagerUser{ID: "PVMGSML", Name: "Maeve"}) || resp.ResponderState != "pending" || resp.Text != "Please help me make the tests pass" || resp.Incident.ID != "PGR0VU2" {
		t.Errorf("responder: %+v", resp)
	}
	upd := decode(t, string(pdtest.Envelope("s1", "incident.status_update_published", nil, pdtest.DocsStatusUpdateData))).PagerEvent(defaultSeverities)
	if upd.Text != "A fix for this incident is being developed" || upd.Agent != (incident.PagerUser{}) || upd.Actor().Name != "PagerDuty" {
		t.Errorf("status update: %+v", upd)
	}
	for _, typ := range []string{"service.updated", "incident.workflow.started", "incident.conference_bridge.updated", "pagey.ping"} {
		body := strings.Replace(pdtest.DocsPriorityUpdated, "incident.priority_updated", typ, 1)
		if d := decode(t, body); d.Handled() {
			t.Errorf("%s is handled", typ)
		}
	}
}

func TestDecodeIsLenient(t *testing.T) {
	for name, body := range map[string]string{
		"nulls everywhere": `{"event":{"id":"e1","event_type":"incident.triggered","occurred_at":null,"agent":null,"client":null,
			"data":{"id":"P1","type":"incident","number":null,"title":null,"service":null,"assignees":null,"priority":null,"urgency":null,"conference_bridge":null,"resolve_reason":null}}}`,
		"missing fields":     `{"event":{"id":"e1","event_type":"incident.acknowledged","data":{"id":"P1"}}}`,
		"number as a string": `{"event":{"id":"e1","event_type":"incident.triggered","data":{"id":"P1","type":"incident","number":"12","conference_bridge":{"conference_number":{"x":1}}}}}`,
		"unknown fields":     `{"event":{"id":"e1","event_type":"incident.resolved","future":[1,2],"data":{"id":"P1","type":"incident","brand_new":{"a":"b"},"resolve_reason":{"type":"merge_resolve_reason","incident":{"id":"P9","summary":"the big one"}}}}}`,
	} {
		d, err := pagerduty.Decode([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		ev := d.PagerEvent(defaultSeverities)
		if ev.Incident.ID != "P1" || !ev.Incident.Full {
			t.Errorf("%s: %+v", name, ev.Incident)
		}
		if name == "number as a string" && ev.Incident.Number != 12 {
			t.Errorf("number %d", ev.Incident.Number)
		}
		if name == "unknown fields" && ev.Incident.ResolveReason != "merged into the big one" {
			t.Errorf("resolve reason %q", ev.Incident.ResolveReason)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":            `{"event":`,
		"empty":               ``,
		"array":               `[]`,
		"no event":            `{"events":[]}`,
		"no id":               `{"event":{"event_type":"incident.triggered","data":{"id":"P1","type":"incident"}}}`,
		"no type":             `{"event":{"id":"e1","data":{"id":"P1","type":"incident"}}}`,
		"no incident":         `{"event":{"id":"e1","event_type":"incident.triggered","data":{"type":"incident"}}}`,
		"note without one":    `{"event":{"id":"e1","event_type":"incident.annotated","data":{"id":"PNOTE","type":"incident_note","content":"x"}}}`,
		"data of wrong shape": `{"event":{"id":"e1","event_type":"incident.triggered","data":"PGR0VU2"}}`,
		"event of wrong type": `{"event":"incident.triggered"}`,
	} {
		if _, err := pagerduty.Decode([]byte(body)); !errors.Is(err, pagerduty.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSeverityMapping(t *testing.T) {
	for _, tc := range []struct {
		priority, urgency string
		want              incident.Severity
	}{
		{"P1", "low", incident.SEV1}, {"p2", "high", incident.SEV2}, {"P3", "", incident.SEV3}, {"P4", "high", incident.SEV4}, {"P5", "", incident.SEV4},
		{"", "high", incident.SEV2}, {"", "low", incident.SEV4}, {"Critical", "high", incident.SEV2}, {"", "", 0}, {"Critical", "", 0},
	} {
		if got := defaultSeverities.For(tc.priority, tc.urgency); got != tc.want {
			t.Errorf("For(%q, %q) = %v, want %v", tc.priority, tc.urgency, got, tc.want)
		}
	}
}
