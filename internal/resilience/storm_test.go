package resilience_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// stormMix is what happens to an incident between its trigger and its
// resolution in the storm, with weights.
var stormMix = []struct {
	eventType string
	weight    int
}{
	{"incident.annotated", 50},
	{"incident.status_update_published", 8},
	{"incident.acknowledged", 10},
	{"incident.unacknowledged", 10},
	{"incident.escalated", 8},
	{"incident.priority_updated", 8},
	{"incident.reassigned", 6},
}

// stormPlan builds the webhook deliveries of an alert storm: for each of n
// PagerDuty incidents, a trigger, per-2 events drawn from stormMix, and a
// resolution, in the order PagerDuty sends them (ordered per incident), as
// PagerDuty's documented payloads. Event times increase by a millisecond
// per event from start.
func stormPlan(rng *rand.Rand, n, per int, start time.Time) [][]delivery {
	total := 0
	for _, m := range stormMix {
		total += m.weight
	}
	ref := func(id, typ, name string) *pdtest.Ref {
		return &pdtest.Ref{ID: id, Type: typ, Summary: name, HTMLURL: "https://acme.pagerduty.com/users/" + id}
	}
	users := []*pdtest.Ref{ref("PALICE1", "user_reference", "Alice Oncall"), ref("PBOB001", "user_reference", "Bob Secondary"), ref("PDAVE01", "user_reference", "Dave Manager")}
	at := start
	plan := make([][]delivery, n)
	for k := range n {
		id := fmt.Sprintf("PST%04d", k)
		title := fmt.Sprintf("Storm incident %d: checkout latency", k)
		status, priority, assignee := "triggered", "P2", users[0]
		incidentRef := map[string]any{"id": id, "type": "incident_reference", "summary": title, "html_url": pdtest.IncidentURL(id)}
		data := func() json.RawMessage {
			b, _ := json.Marshal(map[string]any{
				"id": id, "type": "incident", "self": "https://api.pagerduty.com/incidents/" + id, "html_url": pdtest.IncidentURL(id),
				"number": 1000 + k, "status": status, "incident_key": fmt.Sprintf("storm-%d", k), "created_at": start.Format(time.RFC3339),
				"title": title, "urgency": "high", "conference_bridge": nil, "resolve_reason": nil, "teams": []any{},
				"service":           map[string]any{"id": pdService, "type": "service_reference", "summary": "Checkout API"},
				"escalation_policy": map[string]any{"id": "PEP0001", "type": "escalation_policy_reference", "summary": "Checkout On-call"},
				"assignees":         []any{assignee},
				"priority":          map[string]any{"id": "PPRIO" + priority, "type": "priority_reference", "summary": priority},
			})
			return b
		}
		for i := range per {
			evID := fmt.Sprintf("st-%d-%d", k, i)
			at = at.Add(time.Millisecond)
			typ := "incident.triggered"
			switch {
			case i == per-1:
				typ = "incident.resolved"
			case i > 0:
				r := rng.IntN(total)
				for _, m := range stormMix {
					if r < m.weight {
						typ = m.eventType
						break
					}
					r -= m.weight
				}
			}
			ev := pdtest.Event{ID: evID, Type: typ, OccurredAt: at, Agent: users[rng.IntN(len(users))]}
			switch typ {
			case "incident.annotated":
				ev.Data, _ = json.Marshal(map[string]any{"incident": incidentRef, "id": "N" + evID, "content": "storm note " + evID, "trimmed": false, "type": "incident_note"})
			case "incident.status_update_published":
				ev.Data, _ = json.Marshal(map[string]any{"incident": incidentRef, "id": "S" + evID, "message": "storm update " + evID, "trimmed": false, "type": "incident_status_update"})
			default:
				switch typ {
				case "incident.acknowledged", "incident.resolved":
					status = strings.TrimPrefix(typ, "incident.")
				case "incident.unacknowledged":
					status = "triggered"
				case "incident.escalated", "incident.reassigned":
					assignee = users[rng.IntN(len(users))]
				case "incident.priority_updated":
					priority = []string{"P1", "P2", "P3"}[rng.IntN(3)]
				}
				if i == 0 {
					ev.Agent = nil // PagerDuty's automation opened it
				}
				ev.Data = data()
			}
			plan[k] = append(plan[k], delivery{eventID: evID, eventType: typ, pdIncident: id, body: ev.Body()})
		}
	}
	return plan
}

// stormCommands sends a signed slash command every interval, each in its
// own request, until stop is closed, and records how long each took to be
// acknowledged.
type stormCommands struct {
	mu     sync.Mutex
	acks   []time.Duration
	late   int // acknowledged with "Working on it…"
	failed []string
}

func (c *stormCommands) run(s *slacktest.Sender, channel string, every time.Duration, incidents int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		k := 1 + i%incidents
		text := []string{"list", fmt.Sprintf("status INC-%d", k), fmt.Sprintf("note INC-%d storm-cmd-%d", k, i), "help", fmt.Sprintf("timeline INC-%d", k)}[i%5]
		wg.Go(func() {
			start := time.Now()
			r, err := s.Command(context.Background(), slacktest.Command{User: "U0CAROL", Channel: channel, Text: text})
			d := time.Since(start)
			c.mu.Lock()
			defer c.mu.Unlock()
			switch {
			case err != nil || r.Status != http.StatusOK:
				c.failed = append(c.failed, fmt.Sprintf("%q: %v %d", text, err, r.Status))
				return
			case r.Text() == slack.WorkingText:
				c.late++
			}
			c.acks = append(c.acks, d)
		})
	}
}

// TestAlertStorm: 5,000 PagerDuty events for 50 incidents arrive as fast
// as the bot takes them, while people send slash commands. Every event
// lands on its incident's timeline and is told in its channel, in order;
// there are exactly 50 incident channels; the bot keeps within Slack's
// rate-limit tiers, enforced by the fake Slack; and every slash command is
// acknowledged within Slack's 3 s.
func TestAlertStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 webhooks")
	}
	const (
		incidents   = 50
		perIncident = 100
		// Slack's minute lasts a second in this test (TimeScale 60), so the
		// drain under its tiers (conversations.create at 20 a minute, chat
		// posts at about one a second per channel…) takes seconds, not the
		// better part of an hour. The bot's client is given the same tiers
		// sped up as much (Options.SlackRates), so it paces itself to the
		// fake's clock as it would to Slack's; the fake answers 429 to any
		// call over its tier.
		scale = 60
	)
	// With Slack's second lasting 1/60 s, one token of the per-channel
	// burst is 17 ms: less than a busy machine's scheduling delay between
	// the bot's pacing decision and the fake's receipt of the call (the
	// test failed about one run in three with six test suites on two
	// cores, on code older than the chat outbox too). Two tokens more than
	// the fake's default keep the test about the bot's pacing, not the
	// machine's load; a bot that ignored the pace would still send dozens
	// over it.
	w := newWorld(t, slacktest.Config{EnforceRateLimits: true, TimeScale: scale, ChannelBurst: 6})
	db := filepath.Join(t.TempDir(), "bot.db")
	cfg := loadConfig(t, w.env(db, nil))
	bot := startBot(t, cfg, app.Options{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		SlackRates: scaledSlackRates(scale),
	}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	client := httpClient(t)
	hooks := &pdtest.Sender{URL: bot.url() + "/webhooks/pagerduty", Secrets: []string{pdSecret}, Client: client}
	cmds := &slacktest.Sender{BaseURL: bot.url(), Secret: slackSecret, Fake: w.slack, Client: client}

	plan := stormPlan(rand.New(rand.NewPCG(testSeed(t), 7)), incidents, perIncident, time.Now().UTC().Add(-time.Minute))

	var commands stormCommands
	stop := make(chan struct{})
	commandsDone := make(chan struct{})
	go func() {
		defer close(commandsDone)
		commands.run(cmds, w.general, 40*time.Millisecond, incidents, stop)
	}()
	stopCommands := sync.OnceFunc(func() { close(stop); <-commandsDone })
	t.Cleanup(stopCommands)
	stopSampling := depthPeak(t, bot.store, 200*time.Millisecond, false)

	// PagerDuty delivers each incident's events in order, one at a time,
	// and the incidents' streams side by side.
	start := time.Now()
	var wg sync.WaitGroup
	for _, stream := range plan {
		wg.Go(func() {
			for _, d := range stream {
				code, err := hooks.Deliver(context.Background(), d.body, "wh-"+d.eventID)
				if err != nil || code != http.StatusAccepted {
					t.Errorf("delivering %s (%s): %d %v", d.eventID, d.eventType, code, err)
					return
				}
			}
		})
	}
	wg.Wait()
	sent := time.Since(start)
	drainedOK := eventually(80*time.Second, func() bool { return settled(bot.store, time.Minute) })
	drained := time.Since(start)
	stopCommands()
	peak := stopSampling()

	// What the operator would see.
	calls := w.slack.Calls("")
	byMethod := map[string]int{}
	var limited []string
	for _, c := range calls {
		byMethod[c.Method]++
		if c.Status == http.StatusTooManyRequests {
			limited = append(limited, fmt.Sprintf("%s at %s", c.Method, c.At.Format("15:04:05.000")))
		}
	}
	methods := make([]string, 0, len(byMethod))
	for m, n := range byMethod {
		methods = append(methods, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(methods)
	commands.mu.Lock()
	acks := slices.Clone(commands.acks)
	late, failed := commands.late, slices.Clone(commands.failed)
	commands.mu.Unlock()
	outcome := "applied and told in Slack"
	if !drainedOK {
		outcome = "NOT settled"
	}
	t.Logf("alert storm: %d webhooks for %d incidents sent in %s (%.0f/s); %s after %s",
		incidents*perIncident, incidents, sent.Round(time.Millisecond), float64(incidents*perIncident)/sent.Seconds(), outcome, drained.Round(time.Millisecond))
	after, err := depthOf(bot.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alert storm: job queue peaked at %d jobs; at the end %d work jobs and %d timers wait (acknowledgement timeouts and update reminders)", peak.work, after.work, after.timers)
	if after.timers > 2*incidents {
		t.Errorf("%d timer jobs for %d incidents: replaced timers were left in the queue (at most an ack timeout and a reminder each)", after.timers, incidents)
	}
	t.Logf("alert storm: %d slash commands, acknowledged in p50 %s, p99 %s, max %s; %d answered \"Working on it…\"",
		len(acks), percentile(acks, 50).Round(time.Microsecond), percentile(acks, 99).Round(time.Microsecond), percentile(acks, 100).Round(time.Microsecond), late)
	t.Logf("alert storm: %d Slack calls (%s), %d answered 429", len(calls), strings.Join(methods, ", "), len(limited))

	for _, f := range failed {
		t.Errorf("slash command not acknowledged: %s", f)
	}
	if max := percentile(acks, 100); max >= 3*time.Second {
		t.Errorf("a slash command took %s to be acknowledged during the storm; Slack gives up after 3s", max)
	}
	if len(acks) < 100 {
		t.Errorf("only %d slash commands were acknowledged during the storm", len(acks))
	}
	if len(limited) > 0 {
		t.Errorf("the bot exceeded Slack's rate limits %d times: %v", len(limited), limited[:min(len(limited), 10)])
	}
	if !drainedOK {
		t.Fatalf("the storm was not applied and told in Slack within %s", drained.Round(time.Second))
	}
	noDeadJobs(t, bot.store)

	snap := readStore(t, bot.store)
	if len(snap.incidents) != incidents {
		t.Errorf("%d incidents, want %d", len(snap.incidents), incidents)
	}
	snap.checkChannels(t, w.slack)
	if n := len(incidentChannels(w.slack)); n != incidents {
		t.Errorf("%d incident channels, want %d", n, incidents)
	}
	counts, on := snap.keyCounts()
	byPager := snap.byPager()
	for _, stream := range plan {
		list := byPager[stream[0].pdIncident]
		if len(list) != 1 {
			t.Errorf("PagerDuty incident %s has %d incidents, want 1", stream[0].pdIncident, len(list))
			continue
		}
		n := list[0].Number
		for i, d := range stream {
			key := "pagerduty:" + d.eventID
			if i == 0 {
				key = "pagerduty:declared:" + d.pdIncident // the trigger opened it
			}
			if counts[key] != 1 || on[key] != n {
				t.Errorf("event %s (%s) is on the timeline %d times (INC-%d), want once on INC-%d", d.eventID, d.eventType, counts[key], on[key], n)
			}
		}
		if st := list[0].Status; st != "resolved" {
			t.Errorf("%s is %s after PagerDuty resolved it", list[0].ID(), st)
		}
	}
	snap.checkTransitions(t)
	checkTold(t, w, snap)
}
