package resilience_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Job retries are compressed for the outage tests: production backs off
// from 1s to 5m. outageAttempts failed attempts of one job are what the
// test calls an outage "for minutes": with production's backoff, 25
// attempts take about an hour and a half (1+2+…+256 s, then 5 min each);
// here they take a few seconds. It is also past the 20 attempts after which
// the queue fails an unclassified error for good, so the test would catch
// an outage error that was not classified as retryable.
const outageAttempts = 25

// Slack's rate limits are compressed as much (a Slack minute lasts a
// second): failed calls count against them too, and at Slack's real pace a
// few dozen retries would wait in the client's limiter for minutes.
var outageOptions = app.Options{
	MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond,
	SlackRates: scaledSlackRates(60),
}

// outageBot is the bot with the test's senders.
type outageBot struct {
	*liveBot
	hooks   *pdtest.Sender
	cmds    *slacktest.Sender
	general string // where people declare
	// acks records every slash command's acknowledgement time.
	mu   sync.Mutex
	acks []time.Duration
}

func startOutageBot(t *testing.T, w *world, db string, extra map[string]string) *outageBot {
	t.Helper()
	c := httpClient(t)
	b := startBot(t, loadConfig(t, w.env(db, extra)), outageOptions, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	return &outageBot{
		liveBot: b,
		hooks:   &pdtest.Sender{URL: b.url() + "/webhooks/pagerduty", Secrets: []string{pdSecret}, Client: c},
		cmds:    &slacktest.Sender{BaseURL: b.url(), Secret: slackSecret, Fake: w.slack, Client: c},
		general: w.general,
	}
}

// deliver sends the fake PagerDuty's pending webhook events, in order;
// each must be stored (202).
func (b *outageBot) deliver(t *testing.T, w *world) int {
	t.Helper()
	evs := w.pd.TakeEvents()
	for _, ev := range evs {
		if code, err := b.hooks.DeliverEvent(context.Background(), ev); err != nil || code != http.StatusAccepted {
			t.Fatalf("delivering %s %s: %d %v", ev.Type, ev.ID, code, err)
		}
	}
	return len(evs)
}

// command sends a slash command and returns its answer: the
// acknowledgement, or, when the command outran Slack's deadline and the
// acknowledgement said "Working on it…", what followed through the
// response_url (a starved CPU or a slow disk can make any command late).
func (b *outageBot) command(t *testing.T, user, channel, text string) string {
	t.Helper()
	fake := b.cmds.Fake
	respURL := fake.NewResponseURL()
	start := time.Now()
	r, err := b.cmds.Command(context.Background(), slacktest.Command{User: user, Channel: channel, Text: text, ResponseURL: respURL})
	d := time.Since(start)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("/incident %s: %v %d %s", text, err, r.Status, r.Body)
	}
	b.mu.Lock()
	b.acks = append(b.acks, d)
	b.mu.Unlock()
	if r.Text() != slack.WorkingText {
		return r.Text()
	}
	if !fake.Wait(30*time.Second, func() bool { return len(fake.Responses(respURL)) > 0 }) {
		t.Fatalf("/incident %s: acknowledged with %q, and no answer followed", text, r.Text())
	}
	return fake.Responses(respURL)[0].Text
}

func (b *outageBot) maxAck() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Max(b.acks)
}

// declare declares an incident and returns its number.
func (b *outageBot) declare(t *testing.T, user, title string) int64 {
	t.Helper()
	reply := b.command(t, user, b.general, "declare sev2 "+title)
	var n int64
	if _, err := fmt.Sscanf(reply, "Declared *INC-%d*", &n); err != nil {
		t.Fatalf("declare %q: %q", title, reply)
	}
	return n
}

// TestSlackOutage: Slack is unreachable while PagerDuty webhooks and slash
// commands keep coming. The bot keeps acknowledging both at once; the chat
// work waits in the queue, one coalesced chat sync per incident (so the
// queue grows with the number of incidents, not of events), and after
// Slack is back every incident gets its channel and every timeline event is
// told in it once, in order.
func TestSlackOutage(t *testing.T) {
	w := newWorld(t, slacktest.Config{})
	proxy := newOutageProxy(t, strings.TrimSuffix(w.slack.APIURL(), "/api/"))
	w.slackAPI = proxy.URL + "/api/"
	bot := startOutageBot(t, w, filepath.Join(t.TempDir(), "bot.db"), nil)

	// Before the outage: two PagerDuty incidents and two declared in Slack,
	// each set up in Slack.
	alice := pdUser{w, "alice@example.com"}
	var pdIDs []string
	for i := range 2 {
		pdIDs = append(pdIDs, w.trigger(fmt.Sprintf("Slack outage PD %d", i)).ID)
	}
	bot.deliver(t, w)
	declared := []int64{bot.declare(t, "U0ALICE", "Search is slow"), bot.declare(t, "U0BOB", "Queue backlog")}
	if !w.slack.Wait(20*time.Second, func() bool { return len(announcements(w.slack, w.announce)) == 4 }) {
		t.Fatalf("incidents not set up before the outage: %d channels", len(incidentChannels(w.slack)))
	}
	waitUntil(t, 20*time.Second, "the queue to settle before the outage", func() bool { return settled(bot.store, time.Minute) })

	proxy.setDown(true)
	stopSampling := depthPeak(t, bot.store, 5*time.Millisecond, true)
	events := 0
	// PagerDuty keeps sending: notes, an acknowledgement, an escalation to
	// bob (whose Slack account cannot be looked up now), a new incident.
	for i, id := range pdIDs {
		for j := range 40 {
			alice.note(t, id, fmt.Sprintf("pd-note-%d-%02d", i, j))
			if j == 10 {
				alice.setStatus(t, id, "acknowledged")
			}
			if j == 20 {
				alice.escalate(t, id, 2)
			}
			events += bot.deliver(t, w)
		}
	}
	id := w.trigger("Slack outage PD 2 (new during the outage)").ID
	for j := range 20 {
		alice.note(t, id, fmt.Sprintf("pd-note-2-%02d", j))
	}
	events += bot.deliver(t, w)
	// People keep working in Slack: notes, updates, severity changes, a
	// mitigation, and two new incidents whose channels cannot be created.
	for round := range 30 {
		for _, n := range declared {
			bot.command(t, "U0ALICE", w.general, fmt.Sprintf("note INC-%d slack-note-%d-%02d", n, n, round))
			events++
		}
	}
	for _, n := range declared {
		bot.command(t, "U0BOB", w.general, fmt.Sprintf("update INC-%d customers see slow pages (%d)", n, n))
		bot.command(t, "U0BOB", w.general, fmt.Sprintf("sev INC-%d 1", n))
		bot.command(t, "U0ALICE", w.general, fmt.Sprintf("mitigate INC-%d rolled back (%d)", n, n))
		events += 3
	}
	for k := range 2 {
		n := bot.declare(t, "U0CAROL", fmt.Sprintf("New during the Slack outage %d", k))
		for j := range 15 {
			bot.command(t, "U0CAROL", w.general, fmt.Sprintf("note INC-%d outage-born-%d-%d", n, k, j))
		}
		events += 16
	}

	// The outage lasts until one incident's chat sync has failed
	// outageAttempts times in a row.
	waitUntil(t, 60*time.Second, fmt.Sprintf("a chat sync to fail %d times", outageAttempts), func() bool {
		return retriedFor(bot.store, incident.JobChatSync, outageAttempts)
	})
	gauge := metric(t, httpClient(t), bot.url(), "incidentbot_jobs_pending")
	now, err := depthOf(bot.store)
	if err != nil {
		t.Fatal(err)
	}
	peak := stopSampling()
	incidents := len(readStore(t, bot.store).incidents)
	// Per incident: its chat sync and one coalesced behind it, and a job to
	// look escalated-to PagerDuty users up in Slack; plus a few stored
	// webhooks not applied yet (the senders wait for each answer, so few).
	// Timers (acknowledgement timeouts, update reminders) are not work the
	// outage holds up; they are reported, not bounded.
	bound := 3*incidents + 10
	t.Logf("Slack outage: %d events (webhooks and commands) during %d refused Slack calls; for %d incidents the work queue peaked at %d jobs, timers at %d (/metrics incidentbot_jobs_pending %v at the end: %d work, %d timers); slash command ack max %s",
		events, proxy.refused.value(), incidents, peak.work, peak.timers, gauge, now.work, now.timers, bot.maxAck())
	if peak.work > bound {
		t.Errorf("the work queue grew to %d jobs for %d incidents, want at most %d: it must grow with incidents, not with the %d events", peak.work, incidents, bound, events)
	}
	if gauge < float64(now.work) {
		t.Errorf("/metrics says %v jobs are pending, the store %d", gauge, now.work+now.timers)
	}
	if d := bot.maxAck(); d >= 3*time.Second {
		t.Errorf("a slash command took %s to acknowledge during the outage", d)
	}

	proxy.setDown(false)
	recovered := time.Now()
	waitUntil(t, 60*time.Second, "the queue to drain after the outage", func() bool { return settled(bot.store, time.Minute) })
	t.Logf("Slack outage: drained %s after Slack came back", time.Since(recovered).Round(time.Millisecond))

	noDeadJobs(t, bot.store)
	snap := readStore(t, bot.store)
	if len(snap.incidents) != 7 {
		t.Errorf("%d incidents, want 7", len(snap.incidents))
	}
	snap.checkChannels(t, w.slack)
	snap.checkTransitions(t)
	checkTold(t, w, snap)
	// bob, escalated to while Slack was down, was looked up and invited
	// afterwards.
	for _, id := range pdIDs {
		inc := snap.byPager()[id][0]
		ch, _ := w.slack.ChannelByName(inc.Chat.ChannelName)
		if !slices.Contains(ch.Members, "U0BOB") {
			t.Errorf("%s: bob was escalated to during the outage but is not in #%s (%v)", inc.ID(), ch.Name, ch.Members)
		}
	}
}

// TestPagerDutyOutage: PagerDuty's REST API is unreachable while people ack,
// escalate and resolve in Slack and PagerDuty's webhooks keep coming. Each
// call the bot owes PagerDuty waits in the queue, in order per incident;
// notes and webhooks add nothing to wait (the queue grows with the calls
// owed, not with events), a page that needs PagerDuty at once is refused
// with a message saying to try again, and after PagerDuty is back every
// call is made once, in order.
func TestPagerDutyOutage(t *testing.T) {
	w := newWorld(t, slacktest.Config{})
	proxy := newOutageProxy(t, w.pd.URL)
	w.pdAPI = proxy.URL
	bot := startOutageBot(t, w, filepath.Join(t.TempDir(), "bot.db"), nil)
	alice := pdUser{w, "alice@example.com"}

	// Before: three PagerDuty incidents, and one declared in Slack and paged.
	var pdIDs []string
	for i := range 3 {
		pdIDs = append(pdIDs, w.trigger(fmt.Sprintf("PD outage %d", i)).ID)
	}
	bot.deliver(t, w)
	paged := bot.declare(t, "U0ALICE", "Payments failing")
	if r := bot.command(t, "U0ALICE", w.general, fmt.Sprintf("page INC-%d PSVC001", paged)); !strings.HasPrefix(r, "Paging") {
		t.Fatalf("page: %q", r)
	}
	waitUntil(t, 20*time.Second, "the page and the set-up before the outage", func() bool {
		return settled(bot.store, time.Minute) && len(w.pd.Incidents()) == 4
	})
	w.pd.TakeEvents() // the page's own webhook echo is not needed
	snap := readStore(t, bot.store)
	incOf := map[string]int64{}
	for id, list := range snap.byPager() {
		incOf[id] = list[0].Number
	}
	pagedPD := ""
	for _, pi := range w.pd.Incidents() {
		if pi.Key == incident.PageKey(paged, 1) {
			pagedPD = pi.ID
		}
	}
	if incOf[pagedPD] != paged {
		t.Fatalf("INC-%d is not linked to its page %s: %v", paged, pagedPD, incOf)
	}

	refusedPage := bot.declare(t, "U0CAROL", "Cache stampede")
	proxy.setDown(true)
	stopSampling := depthPeak(t, bot.store, 5*time.Millisecond, true)
	events := 0
	// PagerDuty keeps sending webhooks for the first incident: notes, and an
	// escalation to bob, whose email the bot cannot read now.
	for j := range 30 {
		alice.note(t, pdIDs[0], fmt.Sprintf("pd-side-note-%02d", j))
		if j == 10 {
			alice.escalate(t, pdIDs[0], 2)
		}
		events += bot.deliver(t, w)
	}
	// In Slack people ack, escalate and resolve the others (each a call the
	// bot owes PagerDuty), with plenty of notes (none is).
	for _, n := range []int64{incOf[pdIDs[1]], incOf[pdIDs[2]], paged} {
		steps := [][2]string{{"ack", "acknowledged."}, {"escalate", "Escalating"}, {"resolve", "resolved."}}
		if n == paged {
			steps = steps[1:] // declared incidents start acknowledged
		}
		for _, s := range steps {
			for j := range 10 {
				bot.command(t, "U0BOB", w.general, fmt.Sprintf("note INC-%d slack-note-%d-%s-%d", n, n, s[0], j))
			}
			if r := bot.command(t, "U0BOB", w.general, fmt.Sprintf("%s INC-%d", s[0], n)); !strings.Contains(r, s[1]) {
				t.Errorf("%s INC-%d during the outage: %q", s[0], n, r)
			}
			events += 11
		}
	}
	// A page needs PagerDuty at once (to look the target up): it is
	// refused, with a message to try again, and nothing is queued.
	if r := bot.command(t, "U0CAROL", w.general, fmt.Sprintf("page INC-%d PSVC001", refusedPage)); !strings.Contains(r, "try again") {
		t.Errorf("page during the PagerDuty outage: %q, want a message to try again", r)
	}

	waitUntil(t, 60*time.Second, fmt.Sprintf("a PagerDuty call to fail %d times", outageAttempts), func() bool {
		return retriedFor(bot.store, incident.JobPagerAction, outageAttempts)
	})
	peak := stopSampling()
	incidents := len(readStore(t, bot.store).incidents)
	// Per incident: at most three calls owed (ack, escalate, resolve: each
	// a distinct call, so not coalesced), a chat sync and one waiting
	// behind it, and a look-up of escalated-to PagerDuty users; plus a few
	// stored webhooks not applied yet.
	bound := 6*incidents + 10
	t.Logf("PagerDuty outage: %d events during %d refused PagerDuty calls; for %d incidents the work queue peaked at %d jobs, timers at %d; slash command ack max %s",
		events, proxy.refused.value(), incidents, peak.work, peak.timers, bot.maxAck())
	if peak.work > bound {
		t.Errorf("the work queue grew to %d jobs for %d incidents, want at most %d (it must grow with the calls owed, not with the %d events)", peak.work, incidents, bound, events)
	}

	proxy.setDown(false)
	recovered := time.Now()
	waitUntil(t, 60*time.Second, "the queue to drain after the outage", func() bool { return settled(bot.store, time.Minute) })
	t.Logf("PagerDuty outage: drained %s after PagerDuty came back", time.Since(recovered).Round(time.Millisecond))
	noDeadJobs(t, bot.store)

	// Each call was made, once, in the order it was asked for.
	type change struct {
		Status string `json:"status"`
		Level  int    `json:"escalation_level"`
	}
	made := map[string][]string{}
	for _, c := range w.pd.CallsTo("PUT /incidents") {
		if c.Status/100 != 2 {
			continue
		}
		var body struct {
			Incidents []struct {
				ID string `json:"id"`
				change
			} `json:"incidents"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, u := range body.Incidents {
			what := u.Status
			if u.Level != 0 {
				what = fmt.Sprintf("level %d", u.Level)
			}
			made[u.ID] = append(made[u.ID], what)
		}
	}
	for _, id := range []string{pdIDs[1], pdIDs[2], pagedPD} {
		want := []string{"acknowledged", "level 2", "resolved"}
		if id == pagedPD {
			want = want[1:]
		}
		if !slices.Equal(made[id], want) {
			t.Errorf("PagerDuty incident %s got %v, want %v", id, made[id], want)
		}
		if pi, _ := w.pd.Incident(id); pi.Status != "resolved" {
			t.Errorf("PagerDuty incident %s is %s, want resolved", id, pi.Status)
		}
	}
	snap = readStore(t, bot.store)
	for _, ev := range snap.timelines[refusedPage] {
		if ev.Kind == incident.EventPageSent {
			t.Errorf("the refused page was sent: %s", ev.Text)
		}
	}
	for _, pi := range w.pd.Incidents() {
		if pi.Key == incident.PageKey(refusedPage, 1) {
			t.Errorf("the refused page opened PagerDuty incident %s", pi.ID)
		}
	}
	inc := snap.byPager()[pdIDs[0]][0]
	if ch, _ := w.slack.ChannelByName(inc.Chat.ChannelName); !slices.Contains(ch.Members, "U0BOB") {
		t.Errorf("%s: bob was escalated to during the outage but is not in #%s (%v)", inc.ID(), ch.Name, ch.Members)
	}
	snap.checkChannels(t, w.slack)
	snap.checkTransitions(t)
	checkTold(t, w, snap)
}
