package pagerduty_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

const webhookSecret = "whsec-current"

type intakeEnv struct {
	store  *boltstore.Store
	reg    *prometheus.Registry
	logs   *observer.ObservedLogs
	sender *pdtest.Sender
	url    string
}

func newIntake(t *testing.T, secrets ...string) *intakeEnv {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{webhookSecret}
	}
	store := bolttest.Open(t)
	reg := prometheus.NewRegistry()
	metrics, err := pagerduty.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h := pagerduty.NewIntake(pagerduty.IntakeConfig{Store: store, Secrets: secrets, Logger: zap.New(core), Metrics: metrics})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &intakeEnv{store: store, reg: reg, logs: logs, url: srv.URL, sender: &pdtest.Sender{URL: srv.URL, Secrets: []string{webhookSecret}}}
}

func (e *intakeEnv) deliver(t *testing.T, body []byte, webhookID string) int {
	t.Helper()
	code, err := e.sender.Deliver(context.Background(), body, webhookID)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (e *intakeEnv) post(t *testing.T, body []byte, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(string(body)))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *intakeEnv) jobs(t *testing.T) []incident.Job {
	t.Helper()
	jobs, err := e.store.DueJobs(time.Now().Add(time.Hour), 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func (e *intakeEnv) pending(t *testing.T) int {
	t.Helper()
	n, _, _, err := e.store.JobStats()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				total += m.GetCounter().GetValue()
			} else if m.GetHistogram() != nil {
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func webhooks(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	return counterValue(t, reg, "incidentbot_webhooks_received_total", map[string]string{"source": "pagerduty", "outcome": outcome})
}

func TestIntakeStoresOnceThenAnswers(t *testing.T) {
	e := newIntake(t)
	body := []byte(pdtest.DocsPriorityUpdated)
	if code := e.deliver(t, body, "wh-1"); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d", code)
	}
	jobs := e.jobs(t)
	if len(jobs) != 1 || jobs[0].Kind != pagerduty.JobEvent || jobs[0].Key != "pd:PGR0VU2" || string(jobs[0].Payload) != string(body) {
		t.Fatalf("stored jobs: %+v", jobs)
	}
	// PagerDuty retries with the same webhook id; another subscription (or
	// a re-send) has a new webhook id but the same event id.
	if code := e.deliver(t, body, "wh-1"); code != http.StatusOK {
		t.Errorf("same webhook id again: %d", code)
	}
	if code := e.deliver(t, body, "wh-2"); code != http.StatusOK {
		t.Errorf("same event, new webhook id: %d", code)
	}
	if code := e.deliver(t, body, ""); code != http.StatusOK {
		t.Errorf("same event, no webhook id: %d", code)
	}
	if n := e.pending(t); n != 1 {
		t.Fatalf("%d jobs after duplicates, want 1", n)
	}
	// A different event of the same PagerDuty incident queues behind the
	// first (same key: applied in order).
	if code := e.deliver(t, pdtest.WithEvent("ev-2", "incident.acknowledged"), "wh-3"); code != http.StatusAccepted {
		t.Fatalf("second event: %d", code)
	}
	if n, heads := e.pending(t), len(e.jobs(t)); n != 2 || heads != 1 {
		t.Fatalf("%d jobs, %d runnable now; want 2 jobs in one key's order", n, heads)
	}
	if a, d := webhooks(t, e.reg, "accepted"), webhooks(t, e.reg, "duplicate"); a != 2 || d != 3 {
		t.Errorf("metrics: accepted %v duplicate %v", a, d)
	}
}

func TestIntakeRejectsForgedUnsignedMalformedAndOversize(t *testing.T) {
	e := newIntake(t)
	body := []byte(pdtest.DocsPriorityUpdated)
	forged := &pdtest.Sender{URL: e.url, Secrets: []string{"not-the-secret"}}
	unsigned := &pdtest.Sender{URL: e.url}
	for name, s := range map[string]*pdtest.Sender{"forged": forged, "unsigned": unsigned} {
		code, err := s.Deliver(context.Background(), body, "wh-"+name)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v", name, code, err)
		}
	}
	// A valid signature of another body, replayed on this one.
	replay := http.Header{"X-Pagerduty-Signature": {pagerduty.Sign([]byte(pdtest.VectorBody), webhookSecret)}}
	if code := e.post(t, body, replay); code != http.StatusUnauthorized {
		t.Errorf("signature of another body: %d", code)
	}
	for name, b := range map[string]string{
		"not JSON": `{"event":`, "no event id": `{"event":{"event_type":"incident.triggered","data":{"id":"P1","type":"incident"}}}`,
		"no event type": `{"event":{"id":"e9","data":{"id":"P1"}}}`,
	} {
		if code := e.deliver(t, []byte(b), "wh-"+name); code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, code)
		}
	}
	big := []byte(`{"event":{"id":"big","event_type":"incident.annotated","data":{"incident":{"id":"P1"},"content":"` + strings.Repeat("x", pagerduty.MaxBody) + `"}}}`)
	if code := e.deliver(t, big, "wh-big"); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize: %d", code)
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("rejected requests stored %d jobs", n)
	}
	// Nothing was recorded either: the genuine delivery is accepted, not
	// taken for a duplicate of the forged one.
	if code := e.deliver(t, body, "wh-forged"); code != http.StatusAccepted {
		t.Fatalf("genuine delivery after the forgeries: %d", code)
	}
	if v := webhooks(t, e.reg, "bad_signature"); v != 3 {
		t.Errorf("bad_signature metric %v", v)
	}
	if m, l := webhooks(t, e.reg, "malformed"), webhooks(t, e.reg, "too_large"); m != 3 || l != 1 {
		t.Errorf("malformed %v too_large %v", m, l)
	}
	warned := e.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("bad or missing signature").All()
	if len(warned) != 3 {
		t.Fatalf("%d warnings for bad signatures, want 3", len(warned))
	}
	for _, entry := range warned {
		if strings.Contains(fmt.Sprint(entry.Context), webhookSecret) {
			t.Fatal("a log line contains the secret")
		}
	}
}

func TestIntakeIgnoresUnknownEventTypes(t *testing.T) {
	e := newIntake(t)
	for i, typ := range []string{"service.updated", "incident.workflow.started", "incident.some_future_type"} {
		if code := e.deliver(t, pdtest.WithEvent(fmt.Sprintf("u%d", i), typ), fmt.Sprintf("wh-u%d", i)); code != http.StatusAccepted {
			t.Errorf("%s: %d", typ, code)
		}
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("unknown types stored %d jobs", n)
	}
	if v := webhooks(t, e.reg, "ignored"); v != 3 {
		t.Errorf("ignored metric %v", v)
	}
}

func TestIntakeAcceptsEitherSecretDuringRotation(t *testing.T) {
	e := newIntake(t, "old-secret", webhookSecret)
	old := &pdtest.Sender{URL: e.url, Secrets: []string{"old-secret"}}
	both := &pdtest.Sender{URL: e.url, Secrets: []string{"old-secret", webhookSecret}}
	if code, _ := old.Deliver(context.Background(), pdtest.WithEvent("r1", "incident.triggered"), "wh-r1"); code != http.StatusAccepted {
		t.Errorf("old secret: %d", code)
	}
	if code, _ := both.Deliver(context.Background(), pdtest.WithEvent("r2", "incident.triggered"), "wh-r2"); code != http.StatusAccepted {
		t.Errorf("two signatures: %d", code)
	}
}

func TestIntakeConcurrentDeliveriesAreAllStoredOnce(t *testing.T) {
	e := newIntake(t)
	const events, copies = 40, 3
	var wg sync.WaitGroup
	codes := make(chan int, events*copies)
	for i := range events {
		for c := range copies {
			wg.Go(func() {
				body := pdtest.WithEvent(fmt.Sprintf("ev-%d", i), "incident.triggered")
				code, err := e.sender.Deliver(context.Background(), body, fmt.Sprintf("wh-%d-%d", i, c))
				if err != nil {
					t.Error(err)
				}
				codes <- code
			})
		}
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusAccepted] != events || count[http.StatusOK] != events*(copies-1) {
		t.Fatalf("answers: %v", count)
	}
	if n := e.pending(t); n != events {
		t.Fatalf("%d jobs, want %d", n, events)
	}
}
