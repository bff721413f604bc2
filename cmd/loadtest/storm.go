package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stormConfig is what one storm run does.
type stormConfig struct {
	target       string
	pdSecret     string
	slackSecret  string
	webhooks     int
	incidents    int
	concurrency  int
	commandEvery time.Duration
	botPID       int
	baseline     bool
	channel      string
	drainTimeout time.Duration
}

func storm(args []string, stdout, stderr io.Writer) int {
	var c stormConfig
	fs := flag.NewFlagSet("loadtest storm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.target, "target", "http://127.0.0.1:8080", "the bot's base URL")
	fs.StringVar(&c.pdSecret, "pd-secret", os.Getenv("PAGERDUTY_WEBHOOK_SECRET"), "PagerDuty webhook secret (first of the list)")
	fs.StringVar(&c.slackSecret, "slack-secret", os.Getenv("SLACK_SIGNING_SECRET"), "Slack signing secret; empty: no slash commands")
	fs.IntVar(&c.webhooks, "webhooks", 5000, "webhook deliveries to send")
	fs.IntVar(&c.incidents, "incidents", 50, "distinct PagerDuty incidents they are about")
	fs.IntVar(&c.concurrency, "concurrency", 32, "concurrent webhook senders")
	fs.DurationVar(&c.commandEvery, "command-every", 20*time.Millisecond, "interval between slash commands sent during the storm")
	fs.IntVar(&c.botPID, "bot-pid", 0, "the bot's process id, to report its peak RSS (Linux)")
	fs.BoolVar(&c.baseline, "baseline", true, "also measure a bare handler in this process")
	fs.StringVar(&c.channel, "channel", "CLOADTEST", "channel id for slash commands")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 0, "after the storm, wait up to this long for the bot's job queue to drain (reads /metrics)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.pdSecret == "" {
		fmt.Fprintln(stderr, "loadtest storm: --pd-secret (or PAGERDUTY_WEBHOOK_SECRET) is required")
		return 2
	}
	if i := strings.IndexByte(c.pdSecret, ','); i >= 0 {
		c.pdSecret = c.pdSecret[:i]
	}
	report, err := runStorm(context.Background(), c)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest storm: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, report)
	return 0
}

// result is one phase's measurements.
type result struct {
	name      string
	sent, ok  int
	statuses  map[int]int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) throughput() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	i := int(p/100*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

func (r result) String() string {
	return fmt.Sprintf("%-22s sent %6d  2xx %6d  %8.0f req/s  p50 %8s  p90 %8s  p99 %8s  max %8s  statuses %v\n",
		r.name, r.sent, r.ok, r.throughput(), r.pct(50).Round(time.Microsecond), r.pct(90).Round(time.Microsecond),
		r.pct(99).Round(time.Microsecond), r.pct(100).Round(time.Microsecond), r.statuses)
}

func runStorm(ctx context.Context, c stormConfig) (string, error) {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: c.concurrency + 8, MaxConnsPerHost: c.concurrency + 8},
	}
	// Ids unique to this run, so a second run against the same bot is
	// new work rather than a replay the bot deduplicates.
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	bodies := webhookBodies(run, c.webhooks, c.incidents)
	var b strings.Builder
	fmt.Fprintf(&b, "storm: %d webhooks about %d incidents, %d senders, a slash command every %s\n", c.webhooks, c.incidents, c.concurrency, c.commandEvery)

	var base result
	if c.baseline {
		url, stop, err := bareServer()
		if err != nil {
			return "", err
		}
		base = sendWebhooks(ctx, client, "bare handler", url, c.pdSecret, "bare-"+run, bodies, c.concurrency)
		stop()
		b.WriteString(base.String())
	}

	sink, stopSink, err := responseSink()
	if err != nil {
		return "", err
	}
	defer stopSink()
	cmdCtx, stopCommands := context.WithCancel(ctx)
	cmds := make(chan result, 1)
	if c.slackSecret != "" {
		go func() { cmds <- sendCommands(cmdCtx, client, c, sink) }()
	} else {
		close(cmds)
	}
	bot := sendWebhooks(ctx, client, "bot webhook intake", strings.TrimRight(c.target, "/")+"/webhooks/pagerduty", c.pdSecret, "loadtest-"+run, bodies, c.concurrency)
	stopCommands()
	b.WriteString(bot.String())
	if r, ok := <-cmds; ok {
		b.WriteString(r.String())
	}
	if c.baseline && base.throughput() > 0 {
		fmt.Fprintf(&b, "intake throughput ratio (bot / bare handler): %.2f\n", bot.throughput()/base.throughput())
		fmt.Fprintf(&b, "intake p99 ratio (bot / bare handler): %.1f\n", float64(bot.pct(99))/float64(max(base.pct(99), time.Microsecond)))
	}
	if c.drainTimeout > 0 {
		start := time.Now()
		if err := waitDrained(ctx, strings.TrimRight(c.target, "/")+"/metrics", c.drainTimeout); err != nil {
			fmt.Fprintf(&b, "queue: %v\n", err)
		} else {
			fmt.Fprintf(&b, "queue drained (every event applied, chat caught up) %s after the last delivery\n", time.Since(start).Round(100*time.Millisecond))
		}
	}
	if c.botPID > 0 {
		if hwm, err := peakRSS(c.botPID); err == nil {
			fmt.Fprintf(&b, "bot peak RSS (VmHWM): %.1f MiB\n", float64(hwm)/(1<<20))
		} else {
			fmt.Fprintf(&b, "bot peak RSS: %v\n", err)
		}
	}
	return b.String(), nil
}

// sendWebhooks posts every body once with n concurrent senders.
func sendWebhooks(ctx context.Context, client *http.Client, name, url, secret, idPrefix string, bodies [][]byte, n int) result {
	res := result{name: name, statuses: map[int]int{}}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "PagerDuty-Webhook/V3.0")
				req.Header.Set("X-Webhook-Id", fmt.Sprintf("%s-%d", idPrefix, i))
				req.Header.Set("X-PagerDuty-Signature", "v1="+hexHMAC(secret, bodies[i]))
				t := time.Now()
				code := do(client, req)
				d := time.Since(t)
				mu.Lock()
				res.sent++
				res.statuses[code]++
				if code >= 200 && code < 300 {
					res.ok++
				}
				res.latencies = append(res.latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// sendCommands sends signed `/incident` slash commands at a steady pace
// until ctx ends and measures how long the bot takes to acknowledge each.
func sendCommands(ctx context.Context, client *http.Client, c stormConfig, responseURL string) result {
	res := result{name: "slash command ack", statuses: map[int]int{}}
	texts := []string{"list", "help", "status INC-1", "timeline INC-1", "note INC-1 load test note", "list all"}
	tick := time.NewTicker(c.commandEvery)
	defer tick.Stop()
	start := time.Now()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			res.elapsed = time.Since(start)
			return res
		case <-tick.C:
		}
		wg.Go(func() {
			form := url.Values{
				"token": {"loadtest"}, "team_id": {"T0LOAD"}, "team_domain": {"load"}, "channel_id": {c.channel},
				"channel_name": {"loadtest"}, "user_id": {"U0LOAD"}, "user_name": {"load"}, "command": {"/incident"},
				"text": {texts[i%len(texts)]}, "response_url": {responseURL}, "trigger_id": {"1.2.3"}, "api_app_id": {"A0LOAD"},
			}
			body := []byte(form.Encode())
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req, _ := http.NewRequest(http.MethodPost, strings.TrimRight(c.target, "/")+"/slack/commands", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			req.Header.Set("X-Slack-Signature", "v0="+hexHMAC(c.slackSecret, []byte("v0:"+ts+":"+string(body))))
			t := time.Now()
			code := do(client, req)
			d := time.Since(t)
			mu.Lock()
			res.sent++
			res.statuses[code]++
			if code == 200 {
				res.ok++
			}
			res.latencies = append(res.latencies, d)
			mu.Unlock()
		})
	}
}

func do(client *http.Client, req *http.Request) int {
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func hexHMAC(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// bareServer is the baseline: a handler that reads the body and answers 202.
func bareServer() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 2<<20))
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/webhooks/pagerduty", func() { _ = srv.Close() }, nil
}

// responseSink accepts the bot's response_url posts.
func responseSink() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte("ok"))
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/response", func() { _ = srv.Close() }, nil
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// webhookBodies builds n V3 webhook deliveries about the given number of
// PagerDuty incidents: each incident is triggered first, then gets a mix of
// notes, acknowledgements, escalations and priority changes, with every
// delivery a distinct event. Deliveries of different incidents interleave.
func webhookBodies(run string, n, incidents int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"incident.annotated", "incident.acknowledged", "incident.escalated", "incident.priority_updated", "incident.unacknowledged", "incident.annotated"}
	out := make([][]byte, 0, n)
	counts := make([]int, incidents)
	for i := range n {
		inc := i % incidents
		typ := "incident.triggered"
		if counts[inc] > 0 {
			typ = types[rng.IntN(len(types))]
		}
		counts[inc]++
		out = append(out, webhookBody(fmt.Sprintf("LT%s%04d", strings.ToUpper(run), inc), typ, fmt.Sprintf("lt-%s-%d", run, i), time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Millisecond)))
	}
	return out
}

func webhookBody(pdIncident, eventType, eventID string, at time.Time) []byte {
	data := pdIncidentData(pdIncident, "Load test incident "+pdIncident, "[]", time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC))
	if eventType == "incident.annotated" {
		data = fmt.Sprintf(`{"incident":{"id":%q,"type":"incident_reference","summary":"Load test incident %[1]s","html_url":"https://acme.pagerduty.com/incidents/%[1]s"},"id":"N%[2]s","content":"load test note %[2]s","trimmed":false,"type":"incident_note"}`, pdIncident, eventID)
	}
	return pdEventBody(eventType, eventID, at, data)
}

// pdIncidentData is a V3 incident resource with these assignees (a JSON
// array), created at created.
func pdIncidentData(pdIncident, title, assignees string, created time.Time) string {
	return fmt.Sprintf(`{"id":%q,"type":"incident","self":"https://api.pagerduty.com/incidents/%[1]s","html_url":"https://acme.pagerduty.com/incidents/%[1]s","number":1,"status":"triggered","incident_key":"%[1]s-key","created_at":%[4]q,"title":%[2]q,"service":{"id":"PSVC001","type":"service_reference","summary":"Checkout API"},"assignees":%[3]s,"escalation_policy":{"id":"PEP0001","type":"escalation_policy_reference","summary":"Default"},"teams":[],"priority":{"id":"PPRIO1","type":"priority_reference","summary":"P2"},"urgency":"high","conference_bridge":null,"resolve_reason":null}`, pdIncident, title, assignees, created.UTC().Format(time.RFC3339))
}

// pdEventBody wraps a resource (data, JSON) in a V3 webhook event.
func pdEventBody(eventType, eventID string, at time.Time, data string) []byte {
	return []byte(fmt.Sprintf(`{"event":{"id":%q,"event_type":%q,"resource_type":"incident","occurred_at":%q,"agent":{"id":"PAGENT1","type":"user_reference","summary":"Load Tester"},"client":null,"data":%s}}`,
		eventID, eventType, at.Format(time.RFC3339Nano), data))
}

func httpClient(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }

// waitDrained polls the bot's metrics until no job is due (timers set for
// later do not count) twice in a row.
func waitDrained(ctx context.Context, metricsURL string, limit time.Duration) error {
	client := httpClient(5 * time.Second)
	deadline := time.Now().Add(limit)
	last, zeros := -1.0, 0
	for time.Now().Before(deadline) {
		resp, err := client.Get(metricsURL)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, "incidentbot_jobs_due "); ok {
					last, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
				}
			}
			if last == 0 {
				zeros++
			} else {
				zeros = 0
			}
			if zeros == 2 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("still %v jobs due after %s", last, limit)
}
