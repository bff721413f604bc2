package pagerduty_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// doctor runs the PagerDuty checks against the fake account and returns
// them by name.
func doctor(t *testing.T, token, from, routingKey string, webhook bool) map[string]pagerduty.Check {
	t.Helper()
	pd := fakePD(t)
	c := pagerduty.NewClient(pagerduty.ClientConfig{Token: token, From: from, RoutingKey: routingKey, APIURL: pd.URL, EventsURL: pd.URL})
	out := map[string]pagerduty.Check{}
	for _, ch := range pagerduty.Doctor(context.Background(), pagerduty.DoctorConfig{Client: c, WebhookSecret: webhook}) {
		out[ch.Name] = ch
	}
	return out
}

const (
	tokenCheck   = "API token (PAGERDUTY_API_TOKEN)"
	fromCheck    = "From user (PAGERDUTY_FROM_EMAIL)"
	webhookCheck = "webhooks (PAGERDUTY_WEBHOOK_SECRET)"
	onCallCheck  = "on-call (`/incident oncall`)"
)

// TestDoctorPagerDuty: bot doctor says whether PagerDuty takes the token,
// whether a user has the From email (exactly: the fake's search, like
// PagerDuty's, also matches in part), and whether webhooks can be
// received, with a fix for each problem.
func TestDoctorPagerDuty(t *testing.T) {
	good := doctor(t, apiToken, strings.ToUpper(fromEmail), "", true)
	if len(good) != 4 || !good[tokenCheck].OK || !good[fromCheck].OK || !good[webhookCheck].OK || !good[onCallCheck].OK ||
		!strings.Contains(good[fromCheck].Detail, "Incident Bot (PBOT001)") {
		t.Errorf("all good: %+v", good)
	}

	bad := doctor(t, "wrong-token", fromEmail, "", false)
	if ch := bad[tokenCheck]; ch.OK || !strings.Contains(ch.Detail, "rejected the token") || ch.Fix == "" {
		t.Errorf("a wrong token: %+v", ch)
	}
	if ch := bad[fromCheck]; ch.OK || !strings.Contains(ch.Detail, "not checked") {
		t.Errorf("From with a wrong token: %+v", ch)
	}
	if ch := bad[webhookCheck]; ch.OK || !strings.Contains(ch.Fix, "/webhooks/pagerduty") {
		t.Errorf("no webhook secret: %+v", ch)
	}

	// "example.com" matches every user's email in part; none has it.
	for _, from := range []string{"nobody@example.com", "example.com"} {
		got := doctor(t, apiToken, from, "", true)
		if ch := got[fromCheck]; ch.OK || !strings.Contains(ch.Detail, "no PagerDuty user has the email "+from) || !strings.Contains(ch.Fix, "PAGERDUTY_FROM_EMAIL") {
			t.Errorf("From %q: %+v", from, ch)
		}
		if !got[tokenCheck].OK {
			t.Errorf("From %q: the token check failed: %+v", from, got[tokenCheck])
		}
	}

	// A token that may not read on-calls: `oncall` cannot work.
	pd := fakePD(t)
	pd.Fail(pdtest.Fault{Route: "GET /oncalls", Status: http.StatusForbidden, Code: 2010, Message: "Access Denied"})
	c := pagerduty.NewClient(pagerduty.ClientConfig{Token: apiToken, From: fromEmail, APIURL: pd.URL, EventsURL: pd.URL})
	for _, ch := range pagerduty.Doctor(context.Background(), pagerduty.DoctorConfig{Client: c, WebhookSecret: true}) {
		if ch.Name == onCallCheck && (ch.OK || !strings.Contains(ch.Detail, "may not read on-calls") || !strings.Contains(ch.Fix, "oncalls.read")) {
			t.Errorf("on-calls refused: %+v", ch)
		}
	}

	// Events API only: no REST checks, and the reply says what that means.
	ev := doctor(t, "", "", routingKey, true)
	if ch, ok := ev[tokenCheck]; !ok || !ch.OK || !strings.Contains(ch.Detail, "Events API") || len(ev) != 2 {
		t.Errorf("Events API only: %+v", ev)
	}
}
