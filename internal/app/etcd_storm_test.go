package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// The failure tests of the replicated mode: three `bot serve` processes
// (the real binary, built once per run) on a three-member etcd embedded in
// the test, with the fake Slack and PagerDuty, while a storm of signed
// PagerDuty V3 webhooks, Alertmanager notifications and slash commands is
// spread over the replicas. The failures come from a seeded schedule
// (printed when a test fails; replay it with -etcd.seed):
//
//   - the leader is SIGKILLed again and again, and the Deployment (here:
//     the test) starts a replacement;
//   - one etcd member is stopped and started again: the replicas that know
//     every member keep serving on the quorum;
//   - a replica is cut off from etcd (it knows one member only, and that
//     member stops) while it leads: it must report not ready, stop its
//     leader work, and rejoin when the member is back.
//
// What every delivery answered 2xx (and every command acknowledged with
// its result) did is then checked exactly once in the fakes' records and
// the store: one incident per PagerDuty incident, alert group and declare;
// one channel, summary and announcement each; each note and PagerDuty
// annotation once on the timeline; each page once in PagerDuty; each
// reminder once, never two within one interval; at most one digest; one
// handover post per shift (a shift ends every minute here).

// haConfig is one failure run.
type haConfig struct {
	seed   int64
	kills  int           // leader SIGKILLs (more if needed to make the cut-off replica lead)
	ttl    time.Duration // BOT_ETCD_LEADER_TTL
	remind time.Duration // BOT_UPDATE_REMINDERS, every severity
	pace   time.Duration // between two actions of one storm stream
	settle time.Duration // storm time between failures: [settle, 2×settle)
	// incidents bounds the incidents each source (PagerDuty, Alertmanager,
	// declares) opens; later traffic is about known incidents (notes,
	// annotations, repeated alert groups). The bot creates channels at
	// Slack's conversations.create pace (Tier 2, about 20 a minute), so
	// more incidents only make the run longer.
	incidents int
	// grace is the "few seconds" past the lease TTL within which a new
	// leader must resume the queue, and a cut-off replica must notice.
	grace time.Duration
}

const (
	haWebhookSecret = "whsec-ha-storm"
	haAlertToken    = "am-token-0123456789abcdef"
	haPDToken       = "u+ha-token"
	haFrom          = "incident-bot@example.com"
	haPrefix        = "/incident-bot/"
)

// haWorld is the replicas, the etcd cluster and the fakes.
type haWorld struct {
	t        *testing.T
	cfg      haConfig
	rng      *rand.Rand // the failure schedule; the test goroutine only
	bin      string
	slack    *slacktest.Server
	general  string
	announce string
	handover string
	pd       *pdtest.Server
	etcd     *etcdtest.Cluster
	dbs      [3]string
	http     *http.Client

	mu    sync.Mutex
	procs [3]*apptest.Process
	// leading is what each replica's log last said: it was elected
	// ("elected leader") or its leader work stopped.
	leading [3]bool
	history []string // what the schedule did, printed on failure
}

func newHAWorld(t *testing.T, cfg haConfig) *haWorld {
	t.Helper()
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano()
	}
	w := &haWorld{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.seed), 16)), http: &http.Client{Timeout: 2 * time.Second}}
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			t.Logf("failure schedule (replay with -etcd.seed=%d):\n%s", cfg.seed, strings.Join(w.history, "\n"))
			procs := w.procs
			w.mu.Unlock()
			for i, p := range procs {
				if p != nil {
					t.Logf("replica %d's log:\n%s", i, p.Tail())
				}
			}
		}
	})
	w.slack = slacktest.NewServer(slacktest.Config{})
	t.Cleanup(w.slack.Close)
	for _, u := range []slacktest.User{
		{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
		{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
	} {
		w.slack.AddUser(u)
	}
	w.general = w.slack.AddChannel("general", false, "U0ALICE", "U0BOB", w.slack.BotUserID())
	w.announce = w.slack.AddChannel("incidents", false, "U0ALICE", w.slack.BotUserID())
	w.handover = w.slack.AddChannel("oncall", false, "U0ALICE", w.slack.BotUserID())
	w.pd = pdtest.New(t, pdtest.Config{
		Token: haPDToken,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: haFrom},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
		},
		Services: []pdtest.Service{{ID: "PSVC001", Name: "Checkout API", EscalationPolicyID: "PEP0001"}},
		Policies: []pdtest.Policy{{ID: "PEP0001", Name: "Checkout On-call", Levels: [][]string{{"PALICE1"}, {"PBOB001"}}}},
	})
	w.etcd = etcdtest.Start(t, 3)
	w.bin = botBinary(t)
	for i := range 3 {
		w.dbs[i] = filepath.Join(t.TempDir(), "bot.db")
		w.start(i)
	}
	t.Cleanup(func() {
		for i := range 3 {
			if p := w.proc(i); p != nil {
				_ = p.Kill()
			}
		}
	})
	return w
}

func (w *haWorld) note(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.history = append(w.history, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// endpoints: replicas 0 and 1 know every member; replica 2 knows member 2
// only, so stopping member 2 cuts it off.
func (w *haWorld) endpoints(i int) string {
	if i == 2 {
		return w.etcd.Members[2].ClientURL
	}
	eps := w.etcd.Endpoints()
	if i == 1 {
		slices.Reverse(eps)
	}
	return strings.Join(eps, ",")
}

func (w *haWorld) start(i int) {
	w.t.Helper()
	remind := fmt.Sprintf("SEV1=%[1]s,SEV2=%[1]s,SEV3=%[1]s", w.cfg.remind)
	env := apptest.ProcessEnv(map[string]string{
		"BOT_ADDR": "127.0.0.1:0", "BOT_DB": w.dbs[i], "BOT_LOG_FORMAT": "json",
		"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": w.endpoints(i), "BOT_ETCD_LEADER_TTL": w.cfg.ttl.String(),
		"BOT_ANNOUNCE_CHANNEL": w.announce, "BOT_RUNBOOKS_DIR": w.t.TempDir(),
		"BOT_UPDATE_REMINDERS": remind, "BOT_ACK_TIMEOUTS": "SEV1=5s,SEV2=5s,SEV3=5s", "BOT_MAX_ESCALATIONS": "1",
		"BOT_DIGEST_SCHEDULE": "* * * * *", "BOT_HANDOVER_SCHEDULE": "* * * * *", "BOT_HANDOVER_CHANNEL": w.handover,
		"SLACK_BOT_TOKEN": w.slack.BotToken(), "SLACK_SIGNING_SECRET": signingSecret, "SLACK_API_URL": w.slack.APIURL(),
		"PAGERDUTY_API_TOKEN": haPDToken, "PAGERDUTY_FROM_EMAIL": haFrom, "PAGERDUTY_WEBHOOK_SECRET": haWebhookSecret,
		"PAGERDUTY_API_URL": w.pd.URL + "/", "PAGERDUTY_EVENTS_URL": w.pd.URL,
		"ALERTMANAGER_WEBHOOK_TOKEN": haAlertToken,
	})
	p, err := apptest.StartProcess(w.bin, env, func(line string) {
		var e struct{ Msg string }
		if json.Unmarshal([]byte(line), &e) != nil {
			return
		}
		switch e.Msg {
		case "elected leader":
			w.mu.Lock()
			w.leading[i] = true
			w.mu.Unlock()
			w.note("replica %d elected", i)
		case "leader work stopped":
			w.mu.Lock()
			w.leading[i] = false
			w.mu.Unlock()
			w.note("replica %d stopped leading", i)
		}
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.procs[i] = p
	w.leading[i] = false
	w.mu.Unlock()
	w.note("replica %d started on %s (etcd %s)", i, p.Addr, w.endpoints(i))
}

func (w *haWorld) proc(i int) *apptest.Process {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.procs[i]
}

// kill SIGKILLs replica i; it is down until start(i).
func (w *haWorld) kill(i int) {
	w.t.Helper()
	w.mu.Lock()
	p := w.procs[i]
	w.procs[i] = nil
	w.leading[i] = false
	w.mu.Unlock()
	if err := p.Kill(); err != nil {
		w.t.Fatal(err)
	}
	w.note("replica %d SIGKILLed", i)
}

// live returns the replicas that run, for the storm to pick from.
func (w *haWorld) addr(i int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.procs[i] == nil {
		return ""
	}
	return w.procs[i].Addr
}

// replicaState is what a replica tells over HTTP.
type replicaState struct {
	ready, leading bool
	done           float64 // jobs completed since it started
	scraped        bool
}

func (w *haWorld) state(i int) replicaState {
	var st replicaState
	addr := w.addr(i)
	if addr == "" {
		return st
	}
	if resp, err := w.http.Get("http://" + addr + "/readyz"); err == nil {
		resp.Body.Close()
		st.ready = resp.StatusCode == http.StatusOK
	}
	resp, err := w.http.Get("http://" + addr + "/metrics")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "incidentbot_leader":
			st.leading = v == 1
		case strings.HasPrefix(name, "incidentbot_job_runs_total{") && strings.Contains(name, `outcome="done"`):
			st.done += v
		}
	}
	st.scraped = resp.StatusCode == http.StatusOK
	return st
}

// leader waits for a replica whose log says it leads and returns it.
func (w *haWorld) leader(within time.Duration) int {
	w.t.Helper()
	l := -1
	waitFor(w.t, within, "a leader", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		l = -1
		for i, yes := range w.leading {
			if yes && w.procs[i] != nil {
				if l >= 0 {
					w.t.Fatalf("replicas %d and %d both lead", l, i)
				}
				l = i
			}
		}
		return l >= 0
	})
	return l
}

// failover waits, after the leader died or was cut off at `since`, for
// another replica to lead and complete a job, and returns how long that
// took: leader death to the first job completed by the new leader.
func (w *haWorld) failover(old int, since time.Time) time.Duration {
	w.t.Helper()
	base := map[int]float64{}
	for i := range 3 {
		if i != old {
			base[i] = w.state(i).done
		}
	}
	limit := w.cfg.ttl + w.cfg.grace
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, b := range base {
			if st := w.state(i); st.leading && st.done > b {
				took := time.Since(since)
				w.note("replica %d leads and completed a job %s after replica %d was lost", i, took.Round(time.Millisecond), old)
				return took
			}
		}
		if time.Since(since) > limit {
			w.t.Fatalf("no replica resumed the job queue within %s of losing the leader", limit)
		}
		<-tick.C
	}
}

// killLeader SIGKILLs the leader, measures the failover, and starts the
// replacement replica.
func (w *haWorld) killLeader() time.Duration {
	w.t.Helper()
	l := w.leader(w.cfg.ttl + 10*time.Second)
	killed := time.Now()
	w.kill(l)
	took := w.failover(l, killed)
	w.start(l)
	return took
}

// pause lets the storm run for [settle, 2×settle).
func (w *haWorld) pause() {
	d := w.cfg.settle + time.Duration(w.rng.Int64N(int64(w.cfg.settle)))
	time.Sleep(d) // the storm runs meanwhile: wall time is what is scheduled here
}

// --- the storm ---

// attempt is one request of the storm and whether a replica accepted it.
type declareAttempt struct {
	title, responseURL, ack string
}

type storm struct {
	w   *haWorld
	cli *http.Client
	wg  sync.WaitGroup

	mu         sync.Mutex
	pdAccepted map[string]bool            // PagerDuty incident id -> trigger answered 2xx
	pdNotes    map[string]string          // annotation text -> PagerDuty incident, answered 2xx
	amAccepted map[string]map[string]bool // group key -> fingerprints of alerts in notifications answered 2xx
	declares   []declareAttempt
	incidents  []int64          // declared and acknowledged with the result
	notes      map[string]int64 // note text -> incident, acknowledged "noted"
	pages      map[int64]bool   // incident -> page acknowledged
	refused    []string         // deliveries no replica accepted
	deliveries int
	retries    int
}

func (w *haWorld) startStorm(ctx context.Context) *storm {
	s := &storm{
		w: w, cli: &http.Client{Timeout: 10 * time.Second},
		pdAccepted: map[string]bool{}, pdNotes: map[string]string{}, amAccepted: map[string]map[string]bool{},
		notes: map[string]int64{}, pages: map[int64]bool{},
	}
	for k, run := range []func(context.Context, *rand.Rand){s.pagerDuty, s.alertmanager, s.slash} {
		rng := rand.New(rand.NewPCG(uint64(w.cfg.seed), uint64(k)))
		s.wg.Go(func() { run(ctx, rng) })
	}
	return s
}

// every runs fn every pace until ctx ends.
func (s *storm) every(ctx context.Context, fn func()) {
	t := time.NewTicker(s.w.cfg.pace)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// pick returns a running replica's base URL, or "".
func (s *storm) pick(rng *rand.Rand) string {
	start := rng.IntN(3)
	for k := range 3 {
		if a := s.w.addr((start + k) % 3); a != "" {
			return "http://" + a
		}
	}
	return ""
}

// deliver posts a webhook as its sender does: to a replica behind the
// load balancer, again (to any replica) until one answers 2xx. It reports
// whether one did.
func (s *storm) deliver(ctx context.Context, rng *rand.Rand, path string, hdr http.Header, body []byte, what string) bool {
	s.mu.Lock()
	s.deliveries++
	s.mu.Unlock()
	for try := range 40 {
		if try > 0 {
			s.mu.Lock()
			s.retries++
			s.mu.Unlock()
			select {
			case <-time.After(150 * time.Millisecond): // the sender's retry back-off
			case <-ctx.Done():
			}
		}
		base := s.pick(rng)
		if base == "" {
			continue
		}
		// A delivery started before the storm ends is carried through.
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			s.w.t.Error(err)
			return false
		}
		req.Header = hdr.Clone()
		resp, err := s.cli.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return true
		}
	}
	s.mu.Lock()
	s.refused = append(s.refused, what)
	s.mu.Unlock()
	return false
}

func (s *storm) pagerDuty(ctx context.Context, rng *rand.Rand) {
	var ids []string
	n := 0
	s.every(ctx, func() {
		n++
		if len(ids) == 0 || (len(ids) < s.w.cfg.incidents && rng.IntN(3) == 0) {
			inc := s.w.pd.Trigger("PSVC001", fmt.Sprintf("Storm page %d", n))
			for _, ev := range s.w.pd.TakeEvents() {
				var data struct{ ID string }
				if json.Unmarshal(ev.Data, &data) != nil || data.ID != inc.ID {
					continue // PagerDuty's events about the bot's own pages
				}
				if s.deliverPD(ctx, rng, ev) {
					s.mu.Lock()
					s.pdAccepted[inc.ID] = true
					s.mu.Unlock()
				}
			}
			ids = append(ids, inc.ID)
			return
		}
		id := ids[rng.IntN(len(ids))]
		text := fmt.Sprintf("storm annotation #%d on %s.", n, id)
		data := fmt.Sprintf(`{"incident":{"id":%q,"type":"incident_reference","summary":"Storm","html_url":"https://acme.pagerduty.com/incidents/%[1]s"},"id":"NOTE%[2]d","content":%[3]q,"trimmed":false,"type":"incident_note"}`, id, n, text)
		ev := pdtest.Event{ID: fmt.Sprintf("ev-note-%d", n), Type: "incident.annotated", OccurredAt: time.Now(), Agent: &pdtest.Ref{ID: "PALICE1", Type: "user_reference", Summary: "Alice Oncall"}, Data: json.RawMessage(data)}
		if s.deliverPD(ctx, rng, ev) {
			s.mu.Lock()
			s.pdNotes[text] = id
			s.mu.Unlock()
		}
	})
}

func (s *storm) deliverPD(ctx context.Context, rng *rand.Rand, ev pdtest.Event) bool {
	body := ev.Body()
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", "PagerDuty-Webhook/V3.0")
	hdr.Set("X-Webhook-Id", "wh-"+ev.ID)
	hdr.Set("X-PagerDuty-Signature", pdtest.Sign(body, haWebhookSecret))
	return s.deliver(ctx, rng, "/webhooks/pagerduty", hdr, body, "PagerDuty "+ev.Type+" "+ev.ID)
}

// alertmanager sends groups of alerts: each group first with one alert
// firing, then with a second one.
func (s *storm) alertmanager(ctx context.Context, rng *rand.Rand) {
	groups := 0
	var open []int // groups with one alert so far
	s.every(ctx, func() {
		var g, alerts int
		if groups >= s.w.cfg.incidents && len(open) == 0 {
			// Alertmanager's repeat_interval: an unchanged group again.
			g, alerts = 1+rng.IntN(groups), 2
		} else if len(open) > 0 && (groups >= s.w.cfg.incidents || rng.IntN(2) == 0) {
			k := rng.IntN(len(open))
			g, alerts = open[k], 2
			open = slices.Delete(open, k, k+1)
		} else {
			groups++
			g, alerts = groups, 1
			open = append(open, g)
		}
		key := fmt.Sprintf(`{}:{alertname="Storm%d"}`, g)
		type alert struct {
			Status       string            `json:"status"`
			Labels       map[string]string `json:"labels"`
			Annotations  map[string]string `json:"annotations"`
			StartsAt     time.Time         `json:"startsAt"`
			EndsAt       time.Time         `json:"endsAt"`
			GeneratorURL string            `json:"generatorURL"`
			Fingerprint  string            `json:"fingerprint"`
		}
		var as []alert
		var fps []string
		for a := range alerts {
			fp := fmt.Sprintf("fp%03d%03d", g, a)
			fps = append(fps, fp)
			as = append(as, alert{Status: "firing", Labels: map[string]string{"alertname": fmt.Sprintf("Storm%d", g), "instance": fmt.Sprintf("web-%d", a), "severity": "error"},
				Annotations: map[string]string{"summary": fmt.Sprintf("Storm group %d is failing", g)}, StartsAt: time.Now().Add(-time.Minute).UTC(), GeneratorURL: "http://prometheus.example/graph", Fingerprint: fp})
		}
		body, _ := json.Marshal(map[string]any{
			"receiver": "bot", "status": "firing", "alerts": as, "groupLabels": map[string]string{"alertname": fmt.Sprintf("Storm%d", g)},
			"commonLabels": map[string]string{"alertname": fmt.Sprintf("Storm%d", g), "severity": "error"}, "commonAnnotations": map[string]string{},
			"externalURL": "http://am.example:9093", "version": "4", "groupKey": key, "truncatedAlerts": 0,
		})
		hdr := http.Header{}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Authorization", "Bearer "+haAlertToken)
		if s.deliver(ctx, rng, "/webhooks/alertmanager", hdr, body, "Alertmanager "+key) {
			s.mu.Lock()
			if s.amAccepted[key] == nil {
				s.amAccepted[key] = map[string]bool{}
			}
			for _, fp := range fps {
				s.amAccepted[key][fp] = true
			}
			s.mu.Unlock()
		}
	})
}

var haReminderRE = regexp.MustCompile(`INC-\d+ \(SEV\d\) has [a-z ]*no status update for \w+`)

var haDeclaredRE = regexp.MustCompile(`Declared \*INC-(\d+)\*`)

// slash types commands as people do, on whichever replica the load
// balancer picks; a command is never retried (Slack does not), a person
// types a new one.
func (s *storm) slash(ctx context.Context, rng *rand.Rand) {
	n, declared := 0, 0
	s.every(ctx, func() {
		n++
		base := s.pick(rng)
		if base == "" {
			return
		}
		send := &slacktest.Sender{BaseURL: base, Secret: signingSecret, Fake: s.w.slack, Client: s.cli}
		s.mu.Lock()
		incs := slices.Clone(s.incidents)
		s.mu.Unlock()
		cmd := slacktest.Command{User: "U0ALICE", Channel: s.w.general, ResponseURL: s.w.slack.NewResponseURL()}
		if len(incs) == 0 && declared >= s.w.cfg.incidents {
			return
		}
		switch r := rng.IntN(4); {
		case (len(incs) == 0 || r == 0) && declared < s.w.cfg.incidents:
			declared++
			title := fmt.Sprintf("Storm declare %d", n)
			cmd.Text = "declare sev2 " + title
			reply, err := send.Command(context.WithoutCancel(ctx), cmd)
			d := declareAttempt{title: title, responseURL: cmd.ResponseURL}
			if err == nil && reply.Status == http.StatusOK {
				d.ack = reply.Text()
			}
			s.mu.Lock()
			s.declares = append(s.declares, d)
			if m := haDeclaredRE.FindStringSubmatch(d.ack); m != nil {
				num, _ := strconv.ParseInt(m[1], 10, 64)
				s.incidents = append(s.incidents, num)
			}
			s.mu.Unlock()
		case r == 1:
			inc := incs[rng.IntN(len(incs))]
			s.mu.Lock()
			paged := s.pages[inc]
			s.mu.Unlock()
			if paged {
				return
			}
			cmd.Text = fmt.Sprintf("page INC-%d PSVC001 storm", inc)
			reply, err := send.Command(context.WithoutCancel(ctx), cmd)
			if err == nil && reply.Status == http.StatusOK && strings.Contains(reply.Text(), "Paging") {
				s.mu.Lock()
				s.pages[inc] = true
				s.mu.Unlock()
			}
		default:
			inc := incs[rng.IntN(len(incs))]
			text := fmt.Sprintf("storm note #%d.", n)
			cmd.Text = fmt.Sprintf("note INC-%d %s", inc, text)
			reply, err := send.Command(context.WithoutCancel(ctx), cmd)
			if err == nil && reply.Status == http.StatusOK && strings.Contains(reply.Text(), "Note added to") {
				s.mu.Lock()
				s.notes[text] = inc
				s.mu.Unlock()
			}
		}
	})
}

// --- the checks ---

// haRecord is what the store holds at the end.
type haRecord struct {
	incidents []*incident.Incident
	timelines map[int64][]incident.Event
}

func (w *haWorld) record() haRecord { return readEtcd(w.t, w.etcd) }

// readEtcd reads every incident and its timeline from the bot's keys in
// the cluster.
func readEtcd(t *testing.T, c *etcdtest.Cluster) haRecord {
	t.Helper()
	st := c.Open(haPrefix, etcdstore.Options{})
	r := haRecord{timelines: map[int64][]incident.Event{}}
	err := st.View(context.Background(), func(tx incident.Tx) error {
		var err error
		if r.incidents, err = tx.Incidents(incident.Filter{}); err != nil {
			return err
		}
		for _, inc := range r.incidents {
			if r.timelines[inc.Number], err = tx.Timeline(inc.Number); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// channelOf returns the channels made for incident n.
func (w *haWorld) channelsOf(n int64) []slacktest.Channel {
	var out []slacktest.Channel
	for _, ch := range w.slack.Channels() {
		if strings.HasPrefix(ch.Name, fmt.Sprintf("inc-%d-", n)) {
			out = append(out, ch)
		}
	}
	return out
}

// announcements counts the announce channel's posts about channel ch.
func (w *haWorld) announcements(chID string) int {
	n := 0
	for _, m := range botMessages(w.slack, w.announce) {
		if strings.Contains(blocksText(m)+m.Text, "<#"+chID+">") && !strings.Contains(m.Text, "status update") {
			n++
		}
	}
	return n
}

// unsettled says what is not done yet: an incident without its channel,
// summary or announcement, an accepted page not sent; "" when all is.
func (w *haWorld) unsettled(s *storm) string {
	r := w.record()
	for _, inc := range r.incidents {
		chans := w.channelsOf(inc.Number)
		switch {
		case len(chans) == 0:
			return inc.ID() + " has no channel"
		case len(summaries(w.slack, chans[0].ID)) == 0:
			return inc.ID() + " has no summary"
		case w.announcements(chans[0].ID) == 0:
			return inc.ID() + " was not announced"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for inc := range s.pages {
		if countKind(r.timelines[inc], incident.EventPageSent) == 0 {
			return fmt.Sprintf("INC-%d's page was not sent", inc)
		}
	}
	byPD := map[string]int64{}
	for _, inc := range r.incidents {
		if inc.Pager.IncidentID != "" {
			byPD[inc.Pager.IncidentID] = inc.Number
		}
	}
	for text, id := range s.pdNotes {
		if n, ok := byPD[id]; !ok || !slices.ContainsFunc(r.timelines[n], func(ev incident.Event) bool { return strings.Contains(ev.Text, text) }) {
			return fmt.Sprintf("PagerDuty annotation %q is not applied", text)
		}
	}
	return ""
}

// check asserts exactly-once on everything the storm got accepted.
func (w *haWorld) check(s *storm) {
	t := w.t
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, what := range s.refused {
		t.Errorf("no replica accepted %s", what)
	}
	r := w.record()
	byPD := map[string][]int64{}
	byGroup := map[string][]int64{}
	byTitle := map[string][]int64{}
	for _, inc := range r.incidents {
		// One channel, one summary, one announcement per incident.
		chans := w.channelsOf(inc.Number)
		if len(chans) != 1 {
			t.Errorf("%s has %d channels", inc.ID(), len(chans))
		} else {
			if n := len(summaries(w.slack, chans[0].ID)); n != 1 {
				t.Errorf("%s has %d summaries in its channel", inc.ID(), n)
			}
			if n := w.announcements(chans[0].ID); n != 1 {
				t.Errorf("%s was announced %d times", inc.ID(), n)
			}
		}
		if inc.Pager.IncidentID != "" {
			byPD[inc.Pager.IncidentID] = append(byPD[inc.Pager.IncidentID], inc.Number)
		}
		byTitle[inc.Title] = append(byTitle[inc.Title], inc.Number)
		groups := map[string]bool{}
		fired := map[string]int{}
		for _, ev := range r.timelines[inc.Number] {
			if ev.Kind == incident.EventAlert && ev.Data["group"] != "" {
				groups[ev.Data["group"]] = true
				fired[ev.Data["group"]]++
			}
		}
		for g := range groups {
			byGroup[g] = append(byGroup[g], inc.Number)
			// The alerts of the notification that opened the incident are
			// in its declaration; each later one fires once.
			if want := len(s.amAccepted[g]); fired[g] > want {
				t.Errorf("%s records %d alert events of group %s, which has %d alerts", inc.ID(), fired[g], g, want)
			}
		}
		// Timers fire once: never two reminders within one interval.
		var last time.Time
		for _, ev := range r.timelines[inc.Number] {
			if ev.Kind != incident.EventReminder {
				continue
			}
			if !last.IsZero() && ev.At.Sub(last) < w.cfg.remind-100*time.Millisecond {
				t.Errorf("%s reminded at %s and again at %s, within the %s interval", inc.ID(), last.Format("15:04:05.000"), ev.At.Format("15:04:05.000"), w.cfg.remind)
			}
			last = ev.At
		}
		if n := countKind(r.timelines[inc.Number], incident.EventEscalated); n > 1 {
			t.Errorf("%s escalated %d times, BOT_MAX_ESCALATIONS is 1", inc.ID(), n)
		}
	}
	for id := range s.pdAccepted {
		if n := len(byPD[id]); n != 1 {
			t.Errorf("PagerDuty incident %s (trigger answered 2xx) opened %d incidents", id, n)
		}
	}
	for id, incs := range byPD {
		if len(incs) > 1 {
			t.Errorf("PagerDuty incident %s is linked to %v", id, incs)
		}
	}
	for g := range s.amAccepted {
		if n := len(byGroup[g]); n != 1 {
			t.Errorf("alert group %s (answered 2xx) is in %d incidents", g, n)
		}
	}
	for g, incs := range byGroup {
		if len(incs) > 1 {
			t.Errorf("alert group %s is in %v", g, incs)
		}
	}
	acked := 0
	for _, d := range s.declares {
		result := d.ack
		for _, p := range w.slack.Responses(d.responseURL) {
			result += "\n" + p.Text
		}
		n := len(byTitle[d.title])
		switch {
		case haDeclaredRE.MatchString(result):
			acked++
			if n != 1 {
				t.Errorf("%q (acknowledged %q) declared %d incidents", d.title, result, n)
			}
		case n > 1:
			t.Errorf("%q (no result: %q) declared %d incidents", d.title, result, n)
		}
	}
	// Each timeline entry once.
	count := func(inc int64, text string) int {
		c := 0
		for _, ev := range r.timelines[inc] {
			if strings.Contains(ev.Text, text) {
				c++
			}
		}
		return c
	}
	for text, inc := range s.notes {
		if c := count(inc, text); c != 1 {
			t.Errorf("note %q is %d times on INC-%d's timeline", text, c, inc)
		}
	}
	for text, id := range s.pdNotes {
		if incs := byPD[id]; len(incs) == 1 {
			if c := count(incs[0], text); c != 1 {
				t.Errorf("PagerDuty annotation %q is %d times on INC-%d's timeline", text, c, incs[0])
			}
		}
	}
	// One page in PagerDuty per page command.
	created := 0
	keys := map[string]bool{}
	for _, inc := range w.pd.Incidents() {
		if inc.CreatedFrom == "rest" {
			created++
			if keys[inc.Key] {
				t.Errorf("PagerDuty has two incidents with key %s", inc.Key)
			}
			keys[inc.Key] = true
		}
	}
	if created != len(s.pages) {
		t.Errorf("%d page commands acknowledged, %d PagerDuty incidents created", len(s.pages), created)
	}
	for inc := range s.pages {
		if n := countKind(r.timelines[inc], incident.EventPageSent); n != 1 {
			t.Errorf("INC-%d records %d pages, want 1", inc, n)
		}
	}
	// Each reminder posted once in the incident's channel, and at most
	// once more in the announce channel when nobody is in the incident.
	reminders := 0
	for _, inc := range r.incidents {
		chans := w.channelsOf(inc.Number)
		if len(chans) != 1 {
			continue
		}
		// Reminders a few seconds apart can read the same ("no status
		// update for 3m": the wait is rounded), so they are counted by
		// text: as many messages as reminders with that text, none more.
		events := map[string]int{}
		recent := map[string]bool{}
		var keys []string
		for _, ev := range r.timelines[inc.Number] {
			if ev.Kind != incident.EventReminder {
				continue
			}
			reminders++
			key := haReminderRE.FindString(ev.Text)
			if events[key] == 0 {
				keys = append(keys, key)
			}
			events[key]++
			// A reminder is posted by a chat job after it is recorded,
			// within Slack's pace of one message a second per channel:
			// a recent one may not be out yet, but none twice.
			if time.Since(ev.Recorded) <= 30*time.Second {
				recent[key] = true
			}
		}
		for _, key := range keys {
			in := func(ch string) int {
				n := 0
				for _, m := range botMessages(w.slack, ch) {
					if strings.Contains(m.Text+blocksText(m), key) {
						n++
					}
				}
				return n
			}
			if n := in(chans[0].ID); n > events[key] || (!recent[key] && n != events[key]) {
				t.Errorf("%s's reminder %q (%d recorded) is in %d messages of its channel", inc.ID(), key, events[key], n)
			}
			if n := in(w.announce); n > events[key] {
				t.Errorf("%s's reminder %q (%d recorded) is in %d messages of the announce channel", inc.ID(), key, events[key], n)
			}
		}
	}
	digests := 0
	for _, m := range botMessages(w.slack, w.announce) {
		if strings.Contains(m.Text, "Incident digest") {
			digests++
		}
	}
	if digests > 1 {
		t.Errorf("the weekly digest was posted %d times", digests)
	}
	// The handover ends a shift every minute here: one post per shift.
	handovers := map[string]int{}
	for _, m := range botMessages(w.slack, w.handover) {
		handovers[m.Text+blocksText(m)]++
	}
	for text, n := range handovers {
		if n > 1 {
			t.Errorf("a shift's handover was posted %d times: %.200s", n, text)
		}
	}
	t.Logf("storm: %d webhook deliveries (%d retries to another replica), %d declares (%d acknowledged with the result), %d notes, %d pages; %d incidents; %d reminders, %d digest posts, %d handover posts",
		s.deliveries, s.retries, len(s.declares), acked, len(s.notes), len(s.pages), len(r.incidents), reminders, digests, len(handovers))
}

// runHA runs the whole failure schedule and returns the failover times.
func runHA(t *testing.T, cfg haConfig) []time.Duration {
	w := newHAWorld(t, cfg)
	t.Logf("seed %d (replay with -etcd.seed=%d)", w.cfg.seed, w.cfg.seed)
	w.leader(w.cfg.ttl + 15*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	s := w.startStorm(ctx)
	defer func() { stop(); s.wg.Wait() }()

	// 1. SIGKILL the leader, again and again.
	var failovers []time.Duration
	for range w.cfg.kills {
		w.pause()
		failovers = append(failovers, w.killLeader())
	}

	// 2. Stop an etcd member that replicas 0 and 1 know with the others:
	// every replica keeps serving, and the leader keeps working.
	w.pause()
	m := w.rng.IntN(2)
	w.etcd.Members[m].Stop()
	w.note("etcd member %d stopped", m)
	before := map[int]float64{}
	for i := range 3 {
		before[i] = w.state(i).done
	}
	w.pause()
	for i := range 3 {
		if st := w.state(i); !st.ready {
			t.Errorf("replica %d is not ready with one etcd member of three down", i)
		}
	}
	waitFor(t, w.cfg.ttl+w.cfg.grace, "the leader to complete jobs with one etcd member down", func() bool {
		for i := range 3 {
			if st := w.state(i); st.leading && st.done > before[i] {
				return true
			}
		}
		return false
	})
	w.etcd.Restart(w.etcd.Members[m])
	w.note("etcd member %d restarted", m)

	// 3. Cut replica 2, the one that knows member 2 only, off from etcd
	// while it leads (kill leaders until it does).
	for w.leader(w.cfg.ttl+10*time.Second) != 2 {
		w.pause()
		failovers = append(failovers, w.killLeader())
	}
	w.pause()
	// Stop closes the member's open streams only after its request
	// timeout; replica 2 is cut off from then on.
	w.etcd.Members[2].Stop()
	cut := time.Now()
	w.note("etcd member 2 stopped: replica 2 cut off")
	waitFor(t, w.cfg.ttl+w.cfg.grace, "the cut-off replica to report not ready", func() bool { return !w.state(2).ready })
	w.note("replica 2 not ready")
	took := w.failover(2, cut)
	waitFor(t, w.cfg.ttl+w.cfg.grace, "the cut-off replica to stop its leader work", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.leading[2]
	})
	t.Logf("replica 2 cut off from etcd while leading: another replica completed a job %s later", took.Round(time.Millisecond))
	w.pause()
	w.etcd.Restart(w.etcd.Members[2])
	w.note("etcd member 2 restarted")
	waitFor(t, 30*time.Second, "the cut-off replica to be ready again", func() bool { return w.state(2).ready })
	w.note("replica 2 ready again")
	w.pause()

	stop()
	s.wg.Wait()
	w.note("storm stopped")
	deadline := time.Now().Add(60 * time.Second)
	for why := w.unsettled(s); why != ""; why = w.unsettled(s) {
		if time.Now().After(deadline) {
			st := w.etcd.Open(haPrefix, etcdstore.Options{})
			dead, _ := st.DeadJobs()
			for _, j := range dead {
				t.Logf("dead job %d %s %s: %s", j.ID, j.Kind, j.Key, j.LastError)
			}
			due, _ := st.DueJobs(time.Now().Add(time.Hour), 1000, func(incident.Job) bool { return false })
			for _, j := range due {
				t.Logf("pending job %d %s %s due %s attempts %d: %s", j.ID, j.Kind, j.Key, j.Due.Format("15:04:05.000"), j.Attempts, j.LastError)
			}
			t.Fatalf("a minute after the storm, %s", why)
		}
		time.Sleep(100 * time.Millisecond) // polling the child processes' work: no clock to move
	}
	w.check(s)
	slices.Sort(failovers)
	for _, f := range failovers {
		if f > w.cfg.ttl+w.cfg.grace {
			t.Errorf("a failover took %s, more than the lease TTL (%s) plus %s", f.Round(time.Millisecond), w.cfg.ttl, w.cfg.grace)
		}
	}
	t.Logf("failover from leader SIGKILL to the new leader's first completed job, %d kills, lease TTL %s: median %s, max %s",
		len(failovers), w.cfg.ttl, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
	return failovers
}

// TestEtcdFailuresShort is the default suite's run of the failure
// schedule: two leader kills (a third or fourth if needed to make the
// cut-off replica lead), a member down, a replica cut off, in under a
// minute. Its grace is wide (the default suite runs under -race on busy
// machines); TestEtcdFailover measures.
func TestEtcdFailuresShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three bot processes on a three-member etcd")
	}
	t.Parallel() // mostly waiting on leases and timers: overlaps the other process tests
	runHA(t, haConfig{seed: *etcdSeed, kills: 2, ttl: 2 * time.Second, remind: 5 * time.Second, pace: 150 * time.Millisecond,
		settle: 700 * time.Millisecond, incidents: 3, grace: 10 * time.Second})
}
