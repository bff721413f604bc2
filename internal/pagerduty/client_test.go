package pagerduty_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

const (
	apiToken   = "u+pdtoken"
	fromEmail  = "bot@example.com"
	routingKey = "R0UT1NGKEY0000000000000000000000"
)

// fakePD is an account with two services, two escalation policies (the
// first with two levels) and three users.
func fakePD(t *testing.T) *pdtest.Server {
	t.Helper()
	return pdtest.New(t, pdtest.Config{
		Token: apiToken,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: fromEmail},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
		},
		Services: []pdtest.Service{
			{ID: "PSVC001", Name: "Checkout API", EscalationPolicyID: "PEP0001"},
			{ID: "PSVC002", Name: "Checkout Worker", EscalationPolicyID: "PEP0001"},
			{ID: "PSVC003", Name: "Payments", EscalationPolicyID: "PEP0002"},
		},
		Policies: []pdtest.Policy{
			{ID: "PEP0001", Name: "Checkout On-call", Levels: [][]string{{"PALICE1"}, {"PBOB001"}}},
			{ID: "PEP0002", Name: "Payments Team", Levels: [][]string{{"PBOB001"}}},
		},
		RoutingKeys: map[string]string{routingKey: "PSVC001"},
	})
}

func newClient(srv *pdtest.Server, reg prometheus.Registerer, token, routing string) *pagerduty.Client {
	m, _ := pagerduty.NewMetrics(reg)
	return pagerduty.NewClient(pagerduty.ClientConfig{Token: token, From: fromEmail, RoutingKey: routing, APIURL: srv.URL, EventsURL: srv.URL, Metrics: m})
}

func TestClientCreateIncidentWireFormatAndIdempotency(t *testing.T) {
	srv := fakePD(t)
	reg := prometheus.NewRegistry()
	c := newClient(srv, reg, apiToken, "")
	ctx := context.Background()
	n := pagerduty.NewIncident{Title: "INC-7: checkout errors", Details: "please join #inc-7", ServiceID: "PSVC001", Key: incident.PageKey(7, 1)}
	first, err := c.CreateIncident(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || first.Number != 1 || first.Status != "triggered" || first.ServiceID != "PSVC001" || first.Key != n.Key || first.URL != pdtest.IncidentURL(first.ID) {
		t.Fatalf("created: %+v", first)
	}
	call := srv.CallsTo("POST /incidents")[0]
	if call.Header.Get("From") != fromEmail || call.Header.Get("Authorization") != "Token token="+apiToken ||
		call.Header.Get("Accept") != "application/vnd.pagerduty+json;version=2" || call.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", call.Header)
	}
	var body struct {
		Incident struct {
			Type, Title, Urgency string
			IncidentKey          string `json:"incident_key"`
			Service              struct{ ID, Type string }
			Body                 struct{ Type, Details string }
		}
	}
	if err := call.JSON(&body); err != nil || body.Incident.Type != "incident" || body.Incident.Urgency != "high" || body.Incident.Service.Type != "service_reference" ||
		body.Incident.IncidentKey != n.Key || body.Incident.Body.Details != "please join #inc-7" {
		t.Errorf("body %s (%v)", call.Body, err)
	}
	// The answer was lost and the page is retried: PagerDuty refuses a
	// second open incident with the key, and the first one is found.
	again, err := c.CreateIncident(ctx, n)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retried page: %+v %v", again, err)
	}
	if len(srv.Incidents()) != 1 || len(srv.CallsTo("GET /incidents")) != 1 {
		t.Fatalf("%d incidents after a retry", len(srv.Incidents()))
	}
	if v := counterValue(t, reg, "incidentbot_pagerduty_api_requests_total", map[string]string{"method": "POST /incidents", "outcome": "client_error"}); v != 1 {
		t.Errorf("client_error metric %v", v)
	}
	if v := counterValue(t, reg, "incidentbot_pagerduty_api_request_duration_seconds", map[string]string{"method": "POST /incidents"}); v != 2 {
		t.Errorf("duration observations %v", v)
	}
	// An unknown service is a plain refusal.
	_, err = c.CreateIncident(ctx, pagerduty.NewIncident{Title: "x", ServiceID: "PNOPE01", Key: "k"})
	var api *pagerduty.APIError
	if !errors.As(err, &api) || api.Status != 400 || api.Code != 2001 {
		t.Fatalf("unknown service: %v", err)
	}
	if _, retry := incident.IsRetryable(err); retry {
		t.Error("a 400 is retryable")
	}
}

func TestClientClassifiesFailures(t *testing.T) {
	srv := fakePD(t)
	reg := prometheus.NewRegistry()
	c := newClient(srv, reg, apiToken, routingKey)
	ctx := context.Background()
	inc, err := c.CreateIncident(ctx, pagerduty.NewIncident{Title: "t", ServiceID: "PSVC001"})
	if err != nil {
		t.Fatal(err)
	}

	srv.RateLimit("PUT /incidents", 1, 20)
	err = c.Escalate(ctx, inc.ID, 2)
	after, retry := incident.IsRetryable(err)
	if !retry || after != 20*time.Second || !strings.Contains(err.Error(), "2020") {
		t.Fatalf("429: retry %v after %v: %v", retry, after, err)
	}
	srv.ServerError("", 1)
	if _, retry := incident.IsRetryable(c.Escalate(ctx, inc.ID, 2)); !retry {
		t.Fatal("500 is not retryable")
	}
	srv.Fail(pdtest.Fault{Route: "POST /v2/enqueue", Status: 503})
	if _, err := c.SendEvent(ctx, pagerduty.Event{Action: "trigger", DedupKey: "INC-1", Summary: "s", Severity: "info"}); err == nil {
		t.Fatal("503 from the Events API")
	} else if _, retry := incident.IsRetryable(err); !retry {
		t.Fatalf("503 from the Events API is not retryable: %v", err)
	}
	if err := c.Escalate(ctx, inc.ID, 2); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	if got, _ := srv.Incident(inc.ID); got.Level != 2 || strings.Join(got.Assignees, ",") != "PBOB001" {
		t.Fatalf("escalated incident: %+v", got)
	}
	put := srv.CallsTo("PUT /incidents")
	if last := put[len(put)-1]; last.Header.Get("From") != fromEmail || !strings.Contains(string(last.Body), `"escalation_level":2`) || !strings.Contains(string(last.Body), `"incidents":[`) {
		t.Errorf("escalation call: %s %v", last.Body, last.Header)
	}
	err = c.Escalate(ctx, inc.ID, 3) // the policy has two levels
	var api *pagerduty.APIError
	if !errors.As(err, &api) || api.Code != 1006 || !strings.Contains(api.Plain(), "cannot escalate") {
		t.Fatalf("cannot escalate: %v", err)
	}
	if _, retry := incident.IsRetryable(err); retry {
		t.Fatal("1006 is retryable")
	}
	// Status changes are idempotent.
	for range 2 {
		if err := c.SetStatus(ctx, inc.ID, "acknowledged"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetStatus(ctx, inc.ID, "resolved"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(ctx, inc.ID, "acknowledged"); err != nil {
		t.Fatalf("acknowledging a resolved incident: %v", err)
	}
	// A wrong token is permanent and said plainly.
	bad := newClient(srv, nil, "wrong", "")
	err = bad.AddNote(ctx, inc.ID, "x")
	if !errors.As(err, &api) || api.Status != http.StatusUnauthorized || !strings.Contains(api.Plain(), "PAGERDUTY_API_TOKEN") {
		t.Fatalf("wrong token: %v", err)
	}
	// A network failure is retryable.
	down := pagerduty.NewClient(pagerduty.ClientConfig{Token: apiToken, From: fromEmail, APIURL: "http://127.0.0.1:1"})
	if _, retry := incident.IsRetryable(down.Escalate(ctx, inc.ID, 2)); !retry {
		t.Fatal("a refused connection is not retryable")
	}
	for outcome, want := range map[string]float64{"rate_limited": 1, "server_error": 2, "client_error": 3, "ok": 4} {
		if v := counterValue(t, reg, "incidentbot_pagerduty_api_requests_total", map[string]string{"outcome": outcome}); v != want {
			t.Errorf("%s: %v, want %v", outcome, v, want)
		}
	}
	if v := counterValue(t, reg, "incidentbot_pagerduty_api_rate_limited_total", map[string]string{"method": "PUT /incidents"}); v != 1 {
		t.Errorf("rate limited metric %v", v)
	}
}

func TestClientNotesUsersTargetsAndEvents(t *testing.T) {
	srv := fakePD(t)
	c := newClient(srv, nil, apiToken, routingKey)
	ctx := context.Background()
	inc, _ := c.CreateIncident(ctx, pagerduty.NewIncident{Title: "t", ServiceID: "PSVC003"})
	if err := c.AddNote(ctx, inc.ID, "Firefighters are on the scene."); err != nil {
		t.Fatal(err)
	}
	note := srv.CallsTo("POST /incidents/{id}/notes")[0]
	if note.Header.Get("From") != fromEmail || !strings.Contains(string(note.Body), `"content":"Firefighters are on the scene."`) {
		t.Errorf("note call: %s %v", note.Body, note.Header)
	}
	if email, err := c.UserEmail(ctx, "PALICE1"); err != nil || email != "alice@example.com" {
		t.Errorf("email: %q %v", email, err)
	}
	if _, err := c.UserEmail(ctx, "PGHOST1"); err == nil {
		t.Error("unknown user has an email")
	}

	for _, tc := range []struct{ name, id, kind string }{
		{"PSVC003", "PSVC003", pagerduty.KindService},
		{"PEP0002", "PEP0002", pagerduty.KindEscalationPolicy},
		{"payments", "PSVC003", pagerduty.KindService}, // exact name, any case
		{"Payments Team", "PEP0002", pagerduty.KindEscalationPolicy},
		{"on-call", "PEP0001", pagerduty.KindEscalationPolicy}, // one partial match
		{"Checkout API", "PSVC001", pagerduty.KindService},
	} {
		got, err := c.FindTarget(ctx, tc.name)
		if err != nil || got.ID != tc.id || got.Kind != tc.kind {
			t.Errorf("FindTarget(%q) = %+v, %v", tc.name, got, err)
		}
	}
	if _, err := c.FindTarget(ctx, "checkout"); incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(incident.ErrorMessage(err), "Checkout Worker") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := c.FindTarget(ctx, "nothing-like-it"); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("unknown: %v", err)
	}
	if got := srv.CallsTo("GET /services"); len(got) == 0 || got[0].Query.Get("query") == "" {
		t.Errorf("services looked up without a query: %+v", got)
	}

	key, err := c.SendEvent(ctx, pagerduty.Event{Action: "trigger", DedupKey: "INC-9", Summary: "INC-9: db down", Severity: "critical", Details: map[string]string{"incident": "INC-9"}})
	if err != nil || key != "INC-9" {
		t.Fatalf("event: %q %v", key, err)
	}
	if _, err := c.SendEvent(ctx, pagerduty.Event{Action: "trigger", DedupKey: "INC-9", Summary: "again", Severity: "critical"}); err != nil {
		t.Fatal(err)
	}
	ev := srv.CallsTo("POST /v2/enqueue")[0]
	if ev.Header.Get("Authorization") != "" || !strings.Contains(string(ev.Body), `"routing_key":"`+routingKey+`"`) || !strings.Contains(string(ev.Body), `"source":"incident-bot"`) {
		t.Errorf("event call: %s", ev.Body)
	}
	var fromEvents int
	for _, i := range srv.Incidents() {
		if i.CreatedFrom == "events" {
			fromEvents++
		}
	}
	if fromEvents != 1 {
		t.Fatalf("%d incidents from two triggers with one dedup key", fromEvents)
	}
	if _, err := c.SendEvent(ctx, pagerduty.Event{Action: "resolve", DedupKey: "INC-9"}); err != nil {
		t.Fatal(err)
	}
	noKey := newClient(srv, nil, "", "R0UTWRONG")
	_, err = noKey.SendEvent(ctx, pagerduty.Event{Action: "trigger", Summary: "s", Severity: "info"})
	var api *pagerduty.APIError
	if !errors.As(err, &api) || api.Status != 400 || !strings.Contains(api.Plain(), "Invalid routing key") {
		t.Fatalf("wrong routing key: %v", err)
	}
}
