package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/alertmanager"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

// sample is a version 4 notification as Alertmanager 0.25 sends it
// (notify/webhook Message over template.Data).
const sample = `{"receiver":"bot","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CheckoutErrors","instance":"web-1","severity":"critical"},"annotations":{"summary":"Checkout is failing requests","runbook_url":"https://runbooks.example/checkout"},"startsAt":"2026-11-16T02:59:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example/graph","fingerprint":"5c9e1a0f0d7e6b1a"}],"groupLabels":{"alertname":"CheckoutErrors"},"commonLabels":{"alertname":"CheckoutErrors","instance":"web-1","severity":"critical"},"commonAnnotations":{"summary":"Checkout is failing requests"},"externalURL":"http://am.example:9093","version":"4","groupKey":"{}:{alertname=\"CheckoutErrors\"}","truncatedAlerts":0}`

func TestIntakeAnswers(t *testing.T) {
	store := bolttest.Open(t)
	h := alertmanager.NewIntake(alertmanager.IntakeConfig{Store: store, Tokens: []string{"tok-0123456789abcdef"}, Clock: incidenttest.NewClock(time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC))})
	post := func(auth, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/alertmanager", strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	for _, tc := range []struct {
		name, auth, body string
		want             int
	}{
		{"accepted", "tok-0123456789abcdef", sample, http.StatusAccepted},
		{"no token", "", sample, http.StatusUnauthorized},
		{"wrong token", "tok-0123456789abcdeX", sample, http.StatusUnauthorized},
		{"not JSON", "tok-0123456789abcdef", "{", http.StatusBadRequest},
		{"old version", "tok-0123456789abcdef", strings.Replace(sample, `"version":"4"`, `"version":"3"`, 1), http.StatusBadRequest},
		{"no group", "tok-0123456789abcdef", strings.Replace(sample, `"groupKey"`, `"other"`, 1), http.StatusBadRequest},
		{"alert without fingerprint", "tok-0123456789abcdef", strings.Replace(sample, `"fingerprint"`, `"fp"`, 1), http.StatusBadRequest},
		{"too large", "tok-0123456789abcdef", strings.Repeat(" ", alertmanager.MaxBody+1), http.StatusRequestEntityTooLarge},
	} {
		if got := post(tc.auth, tc.body); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
	// Only the accepted one was stored.
	var n int
	if err := store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		n, err = tx.PendingJobs()
		return err
	}); err != nil || n != 1 {
		t.Fatalf("%d jobs stored, want 1 (%v)", n, err)
	}
}

func TestNotificationMapping(t *testing.T) {
	m, err := alertmanager.Decode([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	n := m.Notification()
	a := n.Alerts[0]
	if n.Source != alertmanager.Source || n.GroupKey != `{}:{alertname="CheckoutErrors"}` || !a.Firing || a.Fingerprint != "5c9e1a0f0d7e6b1a" ||
		a.GeneratorURL != "http://prometheus.example/graph" || a.Labels["severity"] != "critical" ||
		a.SilenceURL != "http://am.example:9093/#/silences/new?filter=%7Balertname%3D%22CheckoutErrors%22%2Cinstance%3D%22web-1%22%2Cseverity%3D%22critical%22%7D" {
		t.Fatalf("notification: %+v", n)
	}
	m.ExternalURL = "javascript:alert(1)"
	if u := m.Notification().Alerts[0].SilenceURL; u != "" {
		t.Fatalf("silence link from a non-HTTP external URL: %q", u)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"version":"4","groupKey":"g","alerts":[]}`))
	f.Add([]byte(`{"version":"4","groupKey":"g","alerts":[{"status":"resolved","fingerprint":"x","labels":null}]}`))
	f.Add([]byte(`{"version":4}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := alertmanager.Decode(body)
		if err != nil {
			if m != nil || !errors.Is(err, alertmanager.ErrMalformed) || len(err.Error()) > 200 {
				t.Fatalf("Decode error %q (message %v)", err, m)
			}
			return
		}
		n := m.Notification()
		if n.GroupKey == "" || n.Source != alertmanager.Source || len(n.Alerts) != len(m.Alerts) {
			t.Fatalf("notification %+v from %s", n, body)
		}
		for _, a := range n.Alerts {
			if a.Fingerprint == "" {
				t.Fatalf("alert without fingerprint accepted: %s", body)
			}
		}
		if _, err := json.Marshal(n); err != nil {
			t.Fatal(err)
		}
	})
}
