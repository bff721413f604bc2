package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// TestReadyzFollowsTheDisk: while the disk is full and webhooks cannot be
// stored, /readyz says so (503), so the load balancer and the alerting
// know; once there is room again it answers 200 by itself, and PagerDuty's
// redelivery is stored.
func TestReadyzFollowsTheDisk(t *testing.T) {
	w := newPDWorld(t)
	dbPath := filepath.Join(t.TempDir(), "bot.db")
	b := w.start(t, dbPath, nil)
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(b.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz at start: %d %s", code, body)
	}

	content, _ := json.Marshal(strings.Repeat("a long stack trace ", 70000)) // about 1.3 MB
	data := strings.Replace(pdtest.DocsNoteData, `"I sure am glad we are using PagerDuty!"`, string(content), 1)
	hook := pdtest.Envelope("01EVNOTEBIG", "incident.annotated", nil, data)
	free := bolttest.DiskFull(t, dbPath)
	code, err := b.hooks.Deliver(context.Background(), hook, "wh-big-1")
	if err != nil {
		t.Fatal(err)
	}
	if code < 500 {
		t.Fatalf("a webhook that could not be stored was answered %d; PagerDuty must retry it", code)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot commit") {
		t.Fatalf("/readyz while no write can commit: %d %q, want 503", code, body)
	}
	free()
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz once there is room again: %d %s", code, body)
	}
	if code, err := b.hooks.Deliver(context.Background(), hook, "wh-big-1"); err != nil || code/100 != 2 {
		t.Fatalf("PagerDuty's redelivery: %d %v", code, err)
	}
}
