package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsListenerIsSeparate: with BOT_METRICS_ADDR, a real `bot serve`
// answers the probes and /metrics only there, and BOT_ADDR only what Slack
// and PagerDuty call.
func TestMetricsListenerIsSeparate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BOT_DB": filepath.Join(dir, "bot.db"), "BOT_ADDR": "127.0.0.1:0",
		"BOT_METRICS_ADDR": "127.0.0.1:0", "PAGERDUTY_WEBHOOK_SECRET": "whsec"}
	cmd := botCommand(t, env, "serve")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	type serving struct {
		Msg         string `json:"msg"`
		Addr        string `json:"addr"`
		MetricsAddr string `json:"metrics_addr"`
	}
	got := make(chan serving, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec serving
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				got <- rec
			}
		}
	}()
	var s serving
	select {
	case s = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("bot serve did not start")
	}
	if s.MetricsAddr == "" || s.MetricsAddr == s.Addr {
		t.Fatalf("serving on %q, metrics on %q", s.Addr, s.MetricsAddr)
	}
	call := func(addr, method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := call(s.Addr, "GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s on BOT_ADDR = %d, want 404", path, code)
		}
		code, body := call(s.MetricsAddr, "GET", path)
		if code != http.StatusOK || (path == "/metrics" && !strings.Contains(body, "incidentbot_jobs_pending")) {
			t.Errorf("GET %s on BOT_METRICS_ADDR = %d %.80q", path, code, body)
		}
	}
	// An unsigned webhook is refused on BOT_ADDR (the route is there) and
	// not found on the metrics listener.
	if code, _ := call(s.Addr, "POST", "/webhooks/pagerduty"); code != http.StatusUnauthorized {
		t.Errorf("POST /webhooks/pagerduty on BOT_ADDR = %d, want 401", code)
	}
	if code, _ := call(s.MetricsAddr, "POST", "/webhooks/pagerduty"); code != http.StatusNotFound {
		t.Errorf("POST /webhooks/pagerduty on BOT_METRICS_ADDR = %d, want 404", code)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
}
