package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// warroomConfig is what one `loadtest warroom` run does.
type warroomConfig struct {
	bot         string
	addr        string
	delay       time.Duration
	isolated    int
	stormGroups int
	stormPages  int
	guard       string
	timeout     time.Duration
}

// The identities the runs use: one on-call person, known to PagerDuty and
// to Slack by the same email, so a page's assignee is invited.
const (
	wrPDToken   = "loadtest-pd-token"
	wrPDSecret  = "warroom-webhook-secret"
	wrAMToken   = "warroom-alertmanager-token-0123456789"
	wrSigning   = "warroom-signing-secret"
	wrOnCallPD  = "PONCALL1"
	wrOnCallSL  = "U0ONCALL1"
	wrOnCallEML = "oncall@example.com"
)

// warroom measures the time to war room: from a PagerDuty or Alertmanager
// delivery to the incident's channel created, the on-call person invited
// and the summary posted, against the in-repo fake Slack (its rate-limit
// tiers enforced) behind a proxy that holds every Slack call back by a
// fixed delay. Each phase runs a fresh `bot serve` against fresh fakes, so
// no phase inherits another's rate-limit buckets.
func warroom(args []string, stdout, stderr io.Writer) int {
	var c warroomConfig
	fs := flag.NewFlagSet("loadtest warroom", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.bot, "bot", "", "the bot binary (go build -o bot ./cmd/bot)")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:18081", "address the bot under test listens on")
	fs.DurationVar(&c.delay, "slack-delay", 75*time.Millisecond, "how long every Slack call takes (50–100 ms is typical)")
	fs.IntVar(&c.isolated, "isolated", 8, "isolated incidents per source (one at a time)")
	fs.IntVar(&c.stormGroups, "storm", 30, "Alertmanager groups firing at once in the storm (0, with --storm-pages 0: no storm phases)")
	fs.IntVar(&c.stormPages, "storm-pages", 3, "PagerDuty pages arriving during the storm")
	fs.StringVar(&c.guard, "storm-guard", "5/10m", "BOT_ALERT_STORM for the guarded storm run")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up on a phase after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.bot == "" {
		fmt.Fprintln(stderr, "loadtest warroom: --bot is required")
		return 2
	}
	report, err := runWarroom(context.Background(), c)
	fmt.Fprint(stdout, report)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest warroom: %v\n", err)
		return 1
	}
	return 0
}

// floorChain is how many Slack calls must happen one after another before
// a responder has a war room: conversations.create (it yields the channel
// id), then conversations.invite and the summary's chat.postMessage, which
// both need only that id and not each other. Resolving the on-call person
// (users.lookupByEmail) needs no channel and can overlap the create.
const floorChain = 2

func runWarroom(ctx context.Context, c warroomConfig) (string, error) {
	var b strings.Builder
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	floor := time.Duration(floorChain) * c.delay
	fmt.Fprintf(&b, "war room: every Slack call held %s, tiers enforced; floor = %d dependent calls = %s\n", c.delay, floorChain, floor)

	// Isolated incidents: one at a time, each waited for.
	env, err := startWarroomBot(ctx, c, "")
	if err != nil {
		return b.String(), err
	}
	// Tier 2 (conversations.create) allows 20 calls a minute: deliveries
	// at least this far apart never wait for the bot's own rate limiter,
	// so what is measured is the chain of calls, not a queue.
	const gap = 3200 * time.Millisecond
	var last time.Time
	for _, src := range []string{"pagerduty", "alertmanager"} {
		var ms []milestones
		var seen [][]string
		var serial []int
		for i := range c.isolated {
			time.Sleep(time.Until(last.Add(gap)))
			title := fmt.Sprintf("War room %s %s %d", src, run, i)
			t0 := time.Now()
			last = t0
			if err := env.deliver(ctx, src, run, i, title); err != nil {
				env.stop()
				return b.String(), err
			}
			m, ok := env.wait(t0, title, src == "pagerduty", 60*time.Second)
			if !ok {
				env.stop()
				return b.String(), fmt.Errorf("%s incident %q got no war room within 60s: %+v", src, title, m)
			}
			ms = append(ms, m)
			calls, chain := env.callsBetween(t0, m.done())
			seen, serial = append(seen, calls), append(serial, chain)
			// The incident's remaining work (announcement, topic,
			// bookmark) is done before the next one arrives.
			if err := waitDrained(ctx, "http://"+c.addr+"/metrics", 60*time.Second); err != nil {
				env.stop()
				return b.String(), err
			}
		}
		b.WriteString(reportMilestones("isolated "+src, ms, floor))
		slices.Sort(serial)
		fmt.Fprintf(&b, "  Slack calls seen from delivery to war room (last incident): %s\n", strings.Join(seen[len(seen)-1], ", "))
		fmt.Fprintf(&b, "  of them one after another (median over incidents): %d calls = %s, i.e. %.2f× the floor\n",
			serial[len(serial)/2], time.Duration(serial[len(serial)/2])*c.delay, float64(serial[len(serial)/2])/floorChain)
	}
	env.stop()
	if c.stormGroups == 0 && c.stormPages == 0 {
		return b.String(), nil // isolated incidents only (--storm 0 --storm-pages 0)
	}

	// The same storm without and with the storm guard.
	for _, guard := range []string{"off", c.guard} {
		s, err := runWarroomStorm(ctx, c, run+guardTag(guard), guard)
		b.WriteString(s)
		if err != nil {
			return b.String(), err
		}
	}
	return b.String(), nil
}

func guardTag(g string) string {
	if g == "off" {
		return "u"
	}
	return "g"
}

// runWarroomStorm fires stormGroups Alertmanager groups at once, with
// stormPages PagerDuty pages among them, and measures what the bot did
// until its queue drained.
func runWarroomStorm(ctx context.Context, c warroomConfig, run, guard string) (string, error) {
	var b strings.Builder
	env, err := startWarroomBot(ctx, c, guard)
	if err != nil {
		return "", err
	}
	defer env.stop()
	type sent struct {
		src, title string
		t0         time.Time
	}
	var (
		mu   sync.Mutex
		all  []sent
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	every := max(c.stormGroups/max(c.stormPages, 1), 1)
	for i := range c.stormGroups {
		srcs := []string{"alertmanager"}
		if i%every == every/2 && i/every < c.stormPages {
			srcs = append(srcs, "pagerduty")
		}
		for _, src := range srcs {
			wg.Go(func() {
				title := fmt.Sprintf("Storm %s %s %d", src, run, i)
				t0 := time.Now()
				err := env.deliver(ctx, src, run, i, title)
				mu.Lock()
				defer mu.Unlock()
				all = append(all, sent{src, title, t0})
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	drainErr := waitDrained(ctx, "http://"+c.addr+"/metrics", c.timeout)
	elapsed := time.Since(start)

	byName := map[string][]milestones{}
	for _, s := range all {
		if m, ok := env.find(s.t0, s.title, s.src == "pagerduty"); ok {
			byName[s.src] = append(byName[s.src], m)
		}
	}
	creates := env.slack.Calls("conversations.create")
	var first time.Time
	made := 0
	for _, cl := range creates {
		if cl.Status == http.StatusOK && cl.Error == "" {
			made++
			if first.IsZero() {
				first = cl.At
			}
		}
	}
	calls := env.slack.Calls("")
	limited := 0
	for _, cl := range calls {
		if cl.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	fmt.Fprintf(&b, "storm, BOT_ALERT_STORM=%s: %d Alertmanager groups + %d PagerDuty pages at once\n", guard, c.stormGroups, c.stormPages)
	fmt.Fprintf(&b, "  channels created %d; first channel %s after the first delivery; Slack calls spent %d (%d answered 429); queue drained %s after the first delivery",
		made, first.Sub(start).Round(time.Millisecond), len(calls), limited, elapsed.Round(100*time.Millisecond))
	if drainErr != nil {
		fmt.Fprintf(&b, " (%v)", drainErr)
	}
	b.WriteString("\n")
	floor := time.Duration(floorChain) * c.delay
	for _, src := range []string{"pagerduty", "alertmanager"} {
		want := c.stormGroups
		if src == "pagerduty" {
			want = c.stormPages
		}
		fmt.Fprintf(&b, "  %d of %d %s deliveries got their own war room\n", len(byName[src]), want, src)
		if len(byName[src]) > 0 {
			b.WriteString(reportMilestones("  in storm "+src, byName[src], floor))
		}
	}
	return b.String(), nil
}

// milestones are when one incident's war room came together, as the fake
// Slack recorded the successful calls.
type milestones struct {
	t0, created, invited, summary time.Time
	channel                       string
}

// done is when the last of the three milestones was reached.
func (m milestones) done() time.Time {
	if m.invited.After(m.summary) {
		return m.invited
	}
	return m.summary
}

func pctOf(ms []milestones, p float64, f func(milestones) time.Duration) time.Duration {
	r := result{}
	for _, m := range ms {
		r.latencies = append(r.latencies, f(m))
	}
	return r.pct(p)
}

func reportMilestones(name string, ms []milestones, floor time.Duration) string {
	var b strings.Builder
	invited := !ms[0].invited.IsZero()
	line := func(what string, f func(milestones) time.Duration) {
		p50, p99 := pctOf(ms, 50, f), pctOf(ms, 99, f)
		fmt.Fprintf(&b, "%-26s n=%-3d %-22s p50 %8s  p99 %8s\n", name, len(ms), what, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	}
	line("→ channel created", func(m milestones) time.Duration { return m.created.Sub(m.t0) })
	if invited {
		line("→ on-call invited", func(m milestones) time.Duration { return m.invited.Sub(m.t0) })
	}
	line("→ summary posted", func(m milestones) time.Duration { return m.summary.Sub(m.t0) })
	war := func(m milestones) time.Duration { return m.done().Sub(m.t0) }
	p50, p99 := pctOf(ms, 50, war), pctOf(ms, 99, war)
	fmt.Fprintf(&b, "%-26s war room (all three) / floor %s: p50 %.2f×  p99 %.2f×\n", name, floor, float64(p50)/float64(floor), float64(p99)/float64(floor))
	if !invited {
		fmt.Fprintf(&b, "%-26s (nobody invited: an alert names no on-call person)\n", name)
	}
	return b.String()
}

// warroomBot is one bot under test with its own fakes and database.
type warroomBot struct {
	c      warroomConfig
	slack  *slacktest.Server
	pd     *pdtest.Server
	proxy  *http.Server
	cmd    *exec.Cmd
	dir    string
	client *http.Client
}

func startWarroomBot(ctx context.Context, c warroomConfig, guard string) (*warroomBot, error) {
	w := &warroomBot{c: c, client: &http.Client{Timeout: 30 * time.Second}}
	w.slack = slacktest.NewServer(slacktest.Config{EnforceRateLimits: true})
	w.slack.AddUser(slacktest.User{ID: wrOnCallSL, Name: "oncall", Email: wrOnCallEML})
	announce := w.slack.AddChannel("incidents", false, wrOnCallSL, w.slack.BotUserID())
	w.pd = pdtest.NewServer(pdtest.Config{Token: wrPDToken, Users: []pdtest.User{{ID: wrOnCallPD, Name: "On Call", Email: wrOnCallEML}}})
	proxyURL, err := w.startProxy()
	if err != nil {
		w.stop()
		return nil, err
	}
	if w.dir, err = os.MkdirTemp("", "loadtest-warroom-"); err != nil {
		w.stop()
		return nil, err
	}
	if guard == "" {
		guard = "off"
	}
	w.cmd = exec.CommandContext(ctx, c.bot, "serve")
	w.cmd.Env = append(os.Environ(), "BOT_DB="+filepath.Join(w.dir, "bot.db"), "BOT_ADDR="+c.addr, "BOT_LOG_LEVEL=warn",
		"SLACK_API_URL="+proxyURL+"/api/", "SLACK_BOT_TOKEN="+w.slack.BotToken(), "SLACK_SIGNING_SECRET="+wrSigning,
		"BOT_ANNOUNCE_CHANNEL="+announce, "PAGERDUTY_WEBHOOK_SECRET="+wrPDSecret, "PAGERDUTY_API_URL="+w.pd.URL,
		"PAGERDUTY_API_TOKEN="+wrPDToken, "PAGERDUTY_FROM_EMAIL="+wrOnCallEML, "ALERTMANAGER_WEBHOOK_TOKEN="+wrAMToken,
		"BOT_ALERT_STORM="+guard)
	w.cmd.Stderr = os.Stderr
	if err := w.cmd.Start(); err != nil {
		w.cmd = nil
		w.stop()
		return nil, err
	}
	client := httpClient(200 * time.Millisecond)
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(20 * time.Millisecond) {
		resp, err := client.Get("http://" + c.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
	}
	w.stop()
	return nil, errors.New("bot did not become ready within 60s")
}

// startProxy puts a fixed delay in front of the fake Slack: each call
// waits, then is carried out, so the fake records it when the bot gets its
// answer.
func (w *warroomBot) startProxy() (string, error) {
	target, err := url.Parse(strings.TrimSuffix(w.slack.APIURL(), "/api/"))
	if err != nil {
		return "", err
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	w.proxy = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(w.c.delay):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(rw, r)
	})}
	go func() { _ = w.proxy.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func (w *warroomBot) stop() {
	if w.cmd != nil {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		_ = w.cmd.Wait()
	}
	if w.proxy != nil {
		_ = w.proxy.Close()
	}
	if w.pd != nil {
		w.pd.Close()
	}
	if w.slack != nil {
		w.slack.Close()
	}
	if w.dir != "" {
		_ = os.RemoveAll(w.dir)
	}
}

// deliver sends one triggering delivery: a signed PagerDuty V3
// incident.triggered assigned to the on-call person, or an Alertmanager
// version 4 notification of a new firing group.
func (w *warroomBot) deliver(ctx context.Context, src, run string, i int, title string) error {
	var req *http.Request
	id := fmt.Sprintf("WR%s%s%04d", strings.ToUpper(run), src[:1], i)
	switch src {
	case "pagerduty":
		assignees := fmt.Sprintf(`[{"id":%q,"type":"user_reference","summary":"On Call"}]`, wrOnCallPD)
		body := pdEventBody("incident.triggered", "ev-"+id, time.Now().UTC(), pdIncidentData(id, title, assignees, time.Now()))
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.c.addr+"/webhooks/pagerduty", bytes.NewReader(body))
		req.Header.Set("User-Agent", "PagerDuty-Webhook/V3.0")
		req.Header.Set("X-Webhook-Id", "wh-"+id)
		req.Header.Set("X-PagerDuty-Signature", "v1="+hexHMAC(wrPDSecret, body))
	default:
		body, _ := json.Marshal(map[string]any{
			"version": "4", "groupKey": `{}:{alertname="` + id + `"}`, "status": "firing", "receiver": "incident-bot",
			"groupLabels": map[string]string{"alertname": id}, "commonLabels": map[string]string{"alertname": id, "severity": "critical"},
			"commonAnnotations": map[string]string{"summary": title}, "externalURL": "http://alertmanager.example:9093",
			"truncatedAlerts": 0,
			"alerts": []map[string]any{{
				"status": "firing", "labels": map[string]string{"alertname": id, "severity": "critical", "instance": "host-1:9100"},
				"annotations": map[string]string{"summary": title}, "startsAt": time.Now().UTC().Format(time.RFC3339Nano),
				"endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": fmt.Sprintf("%016x", i+1),
			}},
		})
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.c.addr+"/webhooks/alertmanager", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+wrAMToken)
	}
	req.Header.Set("Content-Type", "application/json")
	if code := do(w.client, req); code < 200 || code > 299 {
		return fmt.Errorf("%s delivery %q answered %d", src, title, code)
	}
	return nil
}

// wait blocks until the incident titled title has its war room, or timeout.
func (w *warroomBot) wait(t0 time.Time, title string, invite bool, timeout time.Duration) (milestones, bool) {
	var m milestones
	ok := w.slack.Wait(timeout, func() bool {
		var found bool
		m, found = w.find(t0, title, invite)
		return found
	})
	return m, ok
}

// find reads the milestones of the incident titled title from the calls the
// fake Slack answered successfully.
func (w *warroomBot) find(t0 time.Time, title string, invite bool) (milestones, bool) {
	m := milestones{t0: t0}
	suffix := "-" + incident.Slug(title)
	for _, ch := range w.slack.Channels() {
		if strings.HasSuffix(ch.Name, suffix) {
			m.channel = ch.ID
			m.created = ch.Created
		}
	}
	if m.channel == "" {
		return m, false
	}
	for _, cl := range w.slack.Calls("conversations.create") {
		if cl.Error == "" && cl.Status == http.StatusOK && strings.HasSuffix(cl.Form.Get("name"), suffix) {
			m.created = cl.At
		}
	}
	for _, cl := range w.slack.Calls("") {
		if cl.Error != "" || cl.Status != http.StatusOK || cl.Form.Get("channel") != m.channel {
			continue
		}
		switch {
		case cl.Method == "conversations.invite" && m.invited.IsZero() && strings.Contains(cl.Form.Get("users"), wrOnCallSL):
			m.invited = cl.At
		case cl.Method == "chat.postMessage" && m.summary.IsZero():
			m.summary = cl.At
		}
	}
	return m, !m.summary.IsZero() && (!invite || !m.invited.IsZero())
}

// callsBetween lists the methods of the Slack calls answered in (from, to]
// and counts the longest run of them that went one after another: every
// call took the proxy's delay, so a call answered at At was made at
// At-delay, and calls whose spans do not overlap were serial.
func (w *warroomBot) callsBetween(from, to time.Time) ([]string, int) {
	var out []string
	var ends []time.Time
	for _, cl := range w.slack.Calls("") {
		if cl.At.After(from) && !cl.At.After(to) {
			out = append(out, cl.Method)
			ends = append(ends, cl.At)
		}
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	chain, free := 0, from
	const slack = 2 * time.Millisecond // clock reads around one answer
	for _, end := range ends {
		if !end.Add(-w.c.delay).Before(free.Add(-slack)) {
			chain++
			free = end
		}
	}
	return out, chain
}
