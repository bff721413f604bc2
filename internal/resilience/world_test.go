package resilience_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

var seedFlag = flag.Uint64("resilience.seed", 0, "seed of the kill schedule and the storms (0: from the clock)")

// testSeed returns the seed of the test's random choices and logs it.
func testSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -resilience.seed=%d)", seed, seed)
	return seed
}

const (
	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	pdToken     = "u+resilience-token"
	pdSecret    = "whsec-resilience"
	pdFrom      = "incident-bot@example.com"
	pdService   = "PSVC001"
)

// world is a fake Slack workspace and a fake PagerDuty account whose users
// share emails: alice is on call for Checkout API (level 1), bob is level
// 2, dave level 3; carol is only in Slack.
type world struct {
	slack *slacktest.Server
	pd    *pdtest.Server
	// pdClock stamps the fake PagerDuty's incidents and webhook events. It
	// starts a minute back and moves 10ms per change, so events are strictly
	// ordered and recent (an incident triggered long ago would hit its
	// acknowledgement timeout, and be escalated, at once).
	pdClock *incidenttest.Clock

	general, announce, digest string
	// slackAPI and pdAPI are the base URLs the bot is given: the fakes, or
	// an outage proxy in front of them.
	slackAPI, pdAPI string
	dir             string // runbooks and templates (empty: the built-ins)
}

func newWorld(t *testing.T, sc slacktest.Config) *world {
	t.Helper()
	w := &world{pdClock: incidenttest.NewClock(time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)), dir: t.TempDir()}
	w.slack = slacktest.NewServer(sc)
	t.Cleanup(w.slack.Close)
	for _, u := range []slacktest.User{
		{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
		{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
		{ID: "U0CAROL", Name: "carol", Email: "carol@example.com"},
		{ID: "U0DAVE", Name: "dave", Email: "dave@example.com"},
	} {
		w.slack.AddUser(u)
	}
	bot := w.slack.BotUserID()
	w.general = w.slack.AddChannel("general", false, "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", bot)
	w.announce = w.slack.AddChannel("incidents", false, "U0ALICE", bot)
	w.digest = w.slack.AddChannel("incident-digest", false, "U0ALICE", bot)
	w.pd = pdtest.New(t, pdtest.Config{
		Token: pdToken,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: pdFrom},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
			{ID: "PDAVE01", Name: "Dave Manager", Email: "dave@example.com"},
		},
		Services: []pdtest.Service{{ID: pdService, Name: "Checkout API", EscalationPolicyID: "PEP0001"}},
		Policies: []pdtest.Policy{{ID: "PEP0001", Name: "Checkout On-call", Levels: [][]string{{"PALICE1"}, {"PBOB001"}, {"PDAVE01"}}}},
		Now:      w.pdClock.Now,
	})
	w.slackAPI, w.pdAPI = w.slack.APIURL(), w.pd.URL
	return w
}

// env is the bot's environment on database db; extra overrides it (an
// empty value unsets a variable).
func (w *world) env(db string, extra map[string]string) map[string]string {
	env := map[string]string{
		"BOT_ADDR":                 "127.0.0.1:0",
		"BOT_DB":                   db,
		"BOT_ANNOUNCE_CHANNEL":     w.announce,
		"BOT_DIGEST_SCHEDULE":      "off",
		"BOT_RUNBOOKS_DIR":         filepath.Join(w.dir, "runbooks"),
		"BOT_TEMPLATES_DIR":        filepath.Join(w.dir, "templates"),
		"BOT_LOG_FORMAT":           "json",
		"BOT_LOG_LEVEL":            "info",
		"SLACK_BOT_TOKEN":          w.slack.BotToken(),
		"SLACK_SIGNING_SECRET":     slackSecret,
		"SLACK_API_URL":            w.slackAPI,
		"PAGERDUTY_API_TOKEN":      pdToken,
		"PAGERDUTY_FROM_EMAIL":     pdFrom,
		"PAGERDUTY_WEBHOOK_SECRET": pdSecret,
		"PAGERDUTY_API_URL":        w.pdAPI,
		"PAGERDUTY_EVENTS_URL":     w.pdAPI,
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// httpClient is a client for the test's senders; its idle connections are
// closed when the test ends.
func httpClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// --- the bot in this process ---

// liveBot is the app serving on 127.0.0.1:0 in the test's process (the
// code `bot serve` runs, with the test's options).
type liveBot struct {
	*apptest.Bot
	store *boltstore.Store
}

func startBot(t *testing.T, cfg config.Config, opts app.Options, log *zap.Logger) *liveBot {
	t.Helper()
	ab := apptest.Start(t, cfg, log, opts, 20*time.Second)
	store, ok := ab.App.Service().Store().(*boltstore.Store)
	if !ok {
		t.Fatal("the app's store is not a boltstore.Store")
	}
	return &liveBot{Bot: ab, store: store}
}

// stop shuts the bot down as SIGTERM would and closes its database.
func (b *liveBot) stop(t *testing.T) { b.Stop(t) }

func (b *liveBot) url() string { return "http://" + b.Addr }

// settled reports whether no job is due within horizon: every webhook,
// chat sync and pager call has run; only timers set further out
// (acknowledgement timeouts, update reminders) wait.
func settled(store *boltstore.Store, horizon time.Duration) bool {
	next, ok, err := store.NextDue()
	return err == nil && (!ok || next.After(time.Now().Add(horizon)))
}

// waitUntil checks cond every few milliseconds until it holds, or fails
// the test at the deadline. It is for state the test cannot be told about
// (the store of a running bot); the fakes have Wait.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// eventually checks cond every few milliseconds until it holds or timeout
// passes, and reports whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		<-tick.C
	}
	return true
}

// metric scrapes GET /metrics and returns the value of an unlabelled
// sample.
func metric(t *testing.T, c *http.Client, baseURL, name string) float64 {
	t.Helper()
	resp, err := c.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// --- signalling between the test's goroutines ---

// progress is a counter that can be waited on.
type progress struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newProgress() *progress { return &progress{changed: make(chan struct{})} }

func (p *progress) add(d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += d
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *progress) value() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// wait blocks until the counter reaches target, ctx ends or timeout passes
// (0: no timeout); it reports whether the target was reached.
func (p *progress) wait(ctx context.Context, target int, timeout time.Duration) bool {
	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	for {
		p.mu.Lock()
		n, ch := p.n, p.changed
		p.mu.Unlock()
		if n >= target {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// --- PagerDuty webhooks ---

// delivery is one webhook PagerDuty sends.
type delivery struct {
	eventID, eventType, pdIncident string
	body                           []byte
}

// pagerIncidentOf returns the PagerDuty incident an event is about.
func pagerIncidentOf(ev pdtest.Event) string {
	var d struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Incident *struct {
			ID string `json:"id"`
		} `json:"incident"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	if d.Type == "incident" {
		return d.ID
	}
	if d.Incident != nil {
		return d.Incident.ID
	}
	return ""
}

func deliveries(evs []pdtest.Event) []delivery {
	out := make([]delivery, len(evs))
	for i, ev := range evs {
		out[i] = delivery{eventID: ev.ID, eventType: ev.Type, pdIncident: pagerIncidentOf(ev), body: ev.Body()}
	}
	return out
}

// pdUser drives the fake PagerDuty's REST API as a person would in
// PagerDuty's app, so the fake records the change and queues the webhook
// event PagerDuty would send. Each change moves the fake's clock 10ms.
type pdUser struct {
	w     *world
	email string
}

func (u pdUser) call(t *testing.T, method, path string, body any) {
	t.Helper()
	u.w.pdClock.Advance(10 * time.Millisecond)
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, u.w.pd.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token token="+pdToken)
	req.Header.Set("Accept", "application/vnd.pagerduty+json;version=2")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("From", u.email)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("fake PagerDuty %s %s: %s %s", method, path, resp.Status, msg)
	}
}

func (u pdUser) note(t *testing.T, id, text string) {
	u.call(t, http.MethodPost, "/incidents/"+id+"/notes", map[string]any{"note": map[string]any{"content": text}})
}

func (u pdUser) setStatus(t *testing.T, id, status string) {
	u.call(t, http.MethodPut, "/incidents/"+id, map[string]any{"incident": map[string]any{"type": "incident_reference", "status": status}})
}

func (u pdUser) escalate(t *testing.T, id string, level int) {
	u.call(t, http.MethodPut, "/incidents/"+id, map[string]any{"incident": map[string]any{"type": "incident_reference", "escalation_level": level}})
}

// trigger opens an incident on the fake as a monitor would.
func (w *world) trigger(title string) pdtest.Incident {
	w.pdClock.Advance(10 * time.Millisecond)
	return w.pd.Trigger(pdService, title)
}

// --- what the bot stored and told ---

// snapshot is what the database holds: every incident and its timeline.
type snapshot struct {
	incidents []*incident.Incident
	timelines map[int64][]incident.Event
}

func readStore(t *testing.T, store incident.Store) snapshot {
	t.Helper()
	s := snapshot{timelines: map[int64][]incident.Event{}}
	err := store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		if s.incidents, err = tx.Incidents(incident.Filter{}); err != nil {
			return err
		}
		for _, inc := range s.incidents {
			if s.timelines[inc.Number], err = tx.Timeline(inc.Number); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// byPager returns the incidents by their PagerDuty incident id.
func (s snapshot) byPager() map[string][]*incident.Incident {
	out := map[string][]*incident.Incident{}
	for _, inc := range s.incidents {
		if inc.Pager.IncidentID != "" {
			out[inc.Pager.IncidentID] = append(out[inc.Pager.IncidentID], inc)
		}
	}
	return out
}

// keyCounts counts the timeline entries by idempotency key across all
// incidents; keys maps each key to the incident it is on.
func (s snapshot) keyCounts() (counts map[string]int, on map[string]int64) {
	counts, on = map[string]int{}, map[string]int64{}
	for n, evs := range s.timelines {
		for _, ev := range evs {
			if ev.Key != "" {
				counts[ev.Key]++
				on[ev.Key] = n
			}
		}
	}
	return counts, on
}

// checkTransitions checks that each incident's status changes, in the order
// they were recorded, form one chain from its declared status to its
// current one.
func (s snapshot) checkTransitions(t *testing.T) {
	t.Helper()
	for _, inc := range s.incidents {
		evs := bySeq(s.timelines[inc.Number])
		cur := ""
		for _, ev := range evs {
			switch ev.Kind {
			case incident.EventDeclared:
				if cur != "" {
					t.Errorf("%s declared twice", inc.ID())
				}
				cur = ev.Data["status"]
			case incident.EventStatusChanged:
				if ev.Data["from"] != cur {
					t.Errorf("%s: status change %s → %s (seq %d) does not follow %s", inc.ID(), ev.Data["from"], ev.Data["to"], ev.Seq, cur)
				}
				cur = ev.Data["to"]
			}
		}
		if cur != string(inc.Status) {
			t.Errorf("%s: the timeline ends %q but the incident is %q", inc.ID(), cur, inc.Status)
		}
	}
}

// bySeq returns a timeline in recording order. Timelines are sorted by when
// things happened, which for a PagerDuty event is when PagerDuty says it
// happened, before the bot heard of it.
func bySeq(events []incident.Event) []incident.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b incident.Event) int { return int(a.Seq - b.Seq) })
	return out
}

// summaryText matches the fallback text of an incident's summary card.
var summaryText = regexp.MustCompile(`^INC-\d+ SEV\d (triggered|acknowledged|mitigated|resolved): `)

// toldReport is how an incident's timeline was told in its channel.
type toldReport struct {
	expected int    // lines to tell: every event after the declaration that is not quiet
	missing  string // the first line not told, or told out of order ("" when all were, in order)
	extra    int    // lines told more often than they happened
	again    string // the first line told again
	dupMsgs  int    // messages that told something again
	cards    int    // summary cards posted
}

func (r toldReport) String() string {
	s := fmt.Sprintf("%d lines, %d told again in %d messages, %d summary cards", r.expected, r.extra, r.dupMsgs, r.cards)
	if r.missing != "" {
		s += fmt.Sprintf(", first missing or out of order: %q", r.missing)
	}
	if r.again != "" {
		s += fmt.Sprintf(", first told again: %q", r.again)
	}
	return s
}

// told compares an incident's timeline with the bot's messages in its
// channel: every event after the declaration that is not quiet must be told
// (as the Slack adapter renders it), in the order it was recorded.
func told(fake *slacktest.Server, inc *incident.Incident, events []incident.Event) toldReport {
	return toldExcept(fake, inc, events, nil)
}

// toldExcept is told, where the events whose sequence numbers are in skip
// (entries Slack refused for good, reported instead) need not be told, but
// are told at most once.
func toldExcept(fake *slacktest.Server, inc *incident.Incident, events []incident.Event, skip map[int64]bool) toldReport {
	var want []string
	count := map[string]int{}
	for _, ev := range bySeq(events) {
		if ev.Seq <= 1 || ev.Quiet {
			continue
		}
		for _, l := range strings.Split(slack.SafeText(ev.Describe()), "\n") {
			count[l]++ // a skipped event may still be told, once
			if !skip[ev.Seq] {
				want = append(want, l)
			}
		}
	}
	r := toldReport{expected: len(want)}
	var got []string
	seen := map[string]int{}
	for _, m := range fake.Messages(inc.Chat.ChannelID) {
		if m.BotID == "" || m.ThreadTS != "" || m.SubType != "" {
			continue
		}
		if summaryText.MatchString(m.Text) {
			r.cards++
			continue
		}
		again := false
		for _, l := range strings.Split(m.Text, "\n") {
			got = append(got, l)
			seen[l]++
			if seen[l] > count[l] {
				r.extra++
				again = true
				if r.again == "" {
					r.again = l
				}
			}
		}
		if again {
			r.dupMsgs++
		}
	}
	i := 0
	for _, l := range got {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		r.missing = want[i]
	}
	return r
}

// incidentChannels returns the fake Slack's incident channels by incident
// number ("inc-<n>-…").
var incChannel = regexp.MustCompile(`^inc-(\d+)(-|$)`)

func incidentChannels(fake *slacktest.Server) map[int64][]slacktest.Channel {
	out := map[int64][]slacktest.Channel{}
	for _, ch := range fake.Channels() {
		if m := incChannel.FindStringSubmatch(ch.Name); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			out[n] = append(out[n], ch)
		}
	}
	return out
}

// checkChannels checks that every incident has exactly one channel, the
// one it records, and that there is no other incident channel.
func (s snapshot) checkChannels(t *testing.T, fake *slacktest.Server) {
	t.Helper()
	chans := incidentChannels(fake)
	for _, inc := range s.incidents {
		got := chans[inc.Number]
		switch {
		case len(got) != 1:
			names := make([]string, len(got))
			for i, c := range got {
				names[i] = c.Name
			}
			t.Errorf("%s has %d channels %v, want 1", inc.ID(), len(got), names)
		case got[0].ID != inc.Chat.ChannelID:
			t.Errorf("%s records channel %s but its channel is %s (#%s)", inc.ID(), inc.Chat.ChannelID, got[0].ID, got[0].Name)
		}
		delete(chans, inc.Number)
	}
	for n, got := range chans {
		t.Errorf("channel #%s for INC-%d, which does not exist", got[0].Name, n)
	}
}

// announcements counts the bot's top-level messages in the announce
// channel per incident id.
func announcements(fake *slacktest.Server, channel string) map[string]int {
	out := map[string]int{}
	id := regexp.MustCompile(`^(INC-\d+) `)
	for _, m := range fake.Messages(channel) {
		if m.BotID != "" && m.ThreadTS == "" {
			if g := id.FindStringSubmatch(m.Text); g != nil {
				out[g[1]]++
			}
		}
	}
	return out
}

// queueDepth is the job queue's depth in two parts: work (stored webhooks,
// chat syncs, outbound calls) and timers (acknowledgement timeouts and
// update reminders, due minutes to hours ahead).
type queueDepth struct{ work, timers int }

func depthOf(store *boltstore.Store) (queueDepth, error) {
	total, _, _, err := store.JobStats()
	if err != nil {
		return queueDepth{}, err
	}
	// Timers have no job key, so DueJobs lists every one of them.
	timers, err := store.DueJobs(time.Now().Add(1000*time.Hour), 1<<20, func(j incident.Job) bool {
		return j.Kind != incident.JobAckTimeout && j.Kind != incident.JobUpdateReminder
	})
	if err != nil {
		return queueDepth{}, err
	}
	return queueDepth{work: max(total-len(timers), 0), timers: len(timers)}, nil
}

// depthPeak samples the job queue's depth every interval until stop is
// called (or the test ends) and returns the largest values seen. With split
// unset it reads only the total (as work): splitting off the timers reads
// every job, and a long read transaction stalls the bot's writers (bbolt
// cannot remap a growing file under it), which in a storm would measure the
// sampler.
func depthPeak(t *testing.T, store *boltstore.Store, every time.Duration, split bool) (stop func() queueDepth) {
	done := make(chan struct{})
	peak := make(chan queueDepth, 1)
	go func() {
		var p queueDepth
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			var d queueDepth
			var err error
			if split {
				d, err = depthOf(store)
			} else {
				d.work, _, _, err = store.JobStats()
			}
			if err == nil {
				p.work, p.timers = max(p.work, d.work), max(p.timers, d.timers)
			}
			select {
			case <-done:
				peak <- p
				return
			case <-tick.C:
			}
		}
	}()
	stop = sync.OnceValue(func() queueDepth { close(done); return <-peak })
	t.Cleanup(func() { stop() })
	return stop
}

// retriedFor reports whether a pending job of kind has failed at least
// attempts times.
func retriedFor(store *boltstore.Store, kind string, attempts int) bool {
	jobs, err := store.DueJobs(time.Now().Add(time.Hour), 1000, nil)
	if err != nil {
		return false
	}
	for _, j := range jobs {
		if j.Kind == kind && j.Attempts >= attempts {
			return true
		}
	}
	return false
}

func noDeadJobs(t *testing.T, store *boltstore.Store) {
	t.Helper()
	dead, err := store.DeadJobs()
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range dead {
		t.Errorf("job failed for good: %s %s after %d attempts: %s", j.Kind, j.Key, j.Attempts, j.LastError)
	}
}

// checkTold checks every incident's channel tells its whole timeline,
// once, in order, under one summary card, and that each incident is
// announced once.
func checkTold(t *testing.T, w *world, snap snapshot) {
	t.Helper()
	ann := announcements(w.slack, w.announce)
	for _, inc := range snap.incidents {
		r := told(w.slack, inc, snap.timelines[inc.Number])
		if r.missing != "" || r.extra != 0 || r.cards != 1 {
			t.Errorf("%s in #%s: %s", inc.ID(), inc.Chat.ChannelName, r)
		}
		if ann[inc.ID()] != 1 {
			t.Errorf("%s announced %d times, want 1", inc.ID(), ann[inc.ID()])
		}
	}
}

// scaledSlackRates is the Slack client's rate table with every rate
// multiplied by f. The tests compress time (job backoffs, Slack's minute),
// and the client must pace itself to match, or its pacing, not the
// behaviour under test, decides how long they take.
func scaledSlackRates(f int) map[string]slack.Rate {
	out := map[string]slack.Rate{}
	for m, r := range slack.MethodRates {
		out[m] = slack.Rate{PerMinute: r.PerMinute * f, Burst: r.Burst}
	}
	out[slack.ChannelRateKey] = slack.Rate{PerMinute: slack.ChannelRate.PerMinute * f, Burst: slack.ChannelRate.Burst}
	return out
}

// percentile returns the p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// threadCopies counts the bot's replies in a channel's threads by
// copyKey: status updates copied under announcements.
func threadCopies(fake *slacktest.Server, channel string) map[string]int {
	copies := map[string]int{}
	for _, m := range fake.Messages(channel) {
		if m.BotID != "" && m.ThreadTS != "" {
			copies[m.ThreadTS+" "+m.Text]++
		}
	}
	return copies
}

// copyKey is the threadCopies key of ev's copy under inc's announcement.
func copyKey(inc *incident.Incident, ev incident.Event) string {
	return inc.Chat.AnnounceID + " " + slack.SafeText(ev.Describe())
}
