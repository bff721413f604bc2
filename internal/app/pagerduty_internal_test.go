package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// pdEvent is the documented sample turned into an event of type typ for
// PagerDuty incident pdID.
func pdEvent(id, typ, pdID string) []byte {
	return bytes.ReplaceAll(pdtest.WithEvent(id, typ), []byte(`"PGR0VU2"`), []byte(`"`+pdID+`"`))
}

// TestPagerDutyWebhookSurvivesACrashAfterThe2xx answers deliveries and
// then stops the process's state dead, as a crash right after the 2xx
// would: the store is closed before any job ran. The next start applies
// every event exactly once.
func TestPagerDutyWebhookSurvivesACrashAfterThe2xx(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.db")
	env := map[string]string{"BOT_ADDR": "127.0.0.1:0", "BOT_DB": db, "PAGERDUTY_WEBHOOK_SECRET": "whsec", "BOT_MAX_ESCALATIONS": "0"}
	cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	clock := incidenttest.NewClock(time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC))
	open := func() *App {
		a, err := Open(cfg, zaptest.NewLogger(t), Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	deliveries := []struct{ id, body []byte }{
		{[]byte("wh-1"), pdEvent("ev-trig-a", "incident.triggered", "PAAAAA1")},
		{[]byte("wh-2"), pdEvent("ev-ack-a", "incident.acknowledged", "PAAAAA1")},
		{[]byte("wh-3"), pdEvent("ev-trig-b", "incident.triggered", "PBBBBB1")},
	}
	deliver := func(a *App, want int) {
		t.Helper()
		srv := httptest.NewServer(a.handlers.PagerDutyWebhook)
		defer srv.Close()
		s := &pdtest.Sender{URL: srv.URL, Secrets: []string{"whsec"}}
		for _, d := range deliveries {
			if code, err := s.Deliver(context.Background(), d.body, string(d.id)); err != nil || code != want {
				t.Fatalf("delivery %s: %d %v, want %d", d.id, code, err, want)
			}
		}
	}

	first := open()
	deliver(first, http.StatusAccepted)
	if err := first.Close(); err != nil { // the crash: no job ran
		t.Fatal(err)
	}

	second := open()
	defer second.Close()
	if _, err := second.runner.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	deliver(second, http.StatusOK) // PagerDuty retries what it never saw answered: duplicates
	if _, err := second.runner.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	list, _ := second.svc.List(context.Background(), incident.Filter{})
	if len(list) != 2 || list[0].Pager.IncidentID != "PAAAAA1" || list[0].Status != incident.StatusAcknowledged || list[1].Pager.IncidentID != "PBBBBB1" {
		t.Fatalf("after the restart: %+v", list)
	}
	for _, inc := range list {
		_, events, _ := second.svc.Timeline(context.Background(), incident.Ref{Number: inc.Number})
		var kinds []string
		for _, ev := range events {
			kinds = append(kinds, string(ev.Kind))
		}
		want := map[int64]string{1: "[declared status_changed]", 2: "[declared]"}[inc.Number]
		if fmt.Sprint(kinds) != want {
			t.Errorf("%s timeline %v, want %s", inc.ID(), kinds, want)
		}
	}
}
