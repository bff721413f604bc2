package httpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func start(t *testing.T, cfg Config) (string, func()) {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	return "http://" + s.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProbesAndRoutes(t *testing.T) {
	ready := errors.New("store closed")
	base, stop := start(t, Config{
		Addr:  "127.0.0.1:0",
		Ready: func(context.Context) error { return ready },
		Handlers: Handlers{SlackCommands: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic("handler bug")
		})},
	})
	defer stop()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "store closed") {
		t.Errorf("/readyz while not ready = %d %q", code, body)
	}
	ready = nil
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	if code, _ := get(t, base+"/webhooks/pagerduty"); code != 404 {
		t.Errorf("an unconfigured route answered %d, want 404", code)
	}
	resp, err := http.Get(base + "/slack/commands")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on a POST route = %d, want 405", resp.StatusCode)
	}
	resp, err = http.Post(base+"/slack/commands", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("a panicking handler answered %d, want 500 (and the server survives)", resp.StatusCode)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("server did not survive the panic")
	}
}

func TestBusyPortIsAnErrorAtStart(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := New(Config{Addr: s.Addr().String()}); err == nil {
		t.Fatal("a second server bound the same port")
	}
}

func TestShutdownWaitsForInFlightRequests(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	base, stop := start(t, Config{Addr: "127.0.0.1:0", Handlers: Handlers{SlackEvents: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("done"))
	})}})
	got := make(chan string)
	go func() {
		resp, err := http.Post(base+"/slack/events", "application/json", nil)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request cut off: %q", body)
	}
	<-stopped
}

// TestRoutesSplitBetweenListeners: with BOT_METRICS_ADDR the public
// listener serves only the inbound routes and the other only the probes
// and metrics.
func TestRoutesSplitBetweenListeners(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("handled")) })
	h := Handlers{SlackCommands: ok, SlackInteractions: ok, SlackEvents: ok, PagerDutyWebhook: ok, Metrics: ok}
	public, stopPublic := start(t, Config{Addr: "127.0.0.1:0", Handlers: h, Routes: InboundRoutes})
	defer stopPublic()
	ops, stopOps := start(t, Config{Addr: "127.0.0.1:0", Handlers: h, Routes: OpsRoutes})
	defer stopOps()
	all, stopAll := start(t, Config{Addr: "127.0.0.1:0", Handlers: h})
	defer stopAll()
	call := func(base, route string) int {
		method, path, _ := strings.Cut(route, " ")
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, route := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		if code := call(public, route); code != http.StatusNotFound {
			t.Errorf("public listener: %s = %d, want 404", route, code)
		}
		if code := call(ops, route); code != http.StatusOK {
			t.Errorf("metrics listener: %s = %d, want 200", route, code)
		}
		if code := call(all, route); code != http.StatusOK {
			t.Errorf("single listener: %s = %d, want 200", route, code)
		}
	}
	for _, route := range []string{"POST /slack/commands", "POST /slack/interactions", "POST /slack/events", "POST /webhooks/pagerduty"} {
		if code := call(public, route); code != http.StatusOK {
			t.Errorf("public listener: %s = %d, want 200", route, code)
		}
		if code := call(ops, route); code != http.StatusNotFound {
			t.Errorf("metrics listener: %s = %d, want 404", route, code)
		}
		if code := call(all, route); code != http.StatusOK {
			t.Errorf("single listener: %s = %d, want 200", route, code)
		}
	}
}
