package resilience_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

const (
	crashCycles    = 12 // kill and restart cycles
	crashPDCount   = 8  // PagerDuty incidents in the storm
	crashUsers     = 3  // people sending slash commands
	crashDigestRun = 3  // the cycle in which an operator asks for the digest
)

// crashRun is the state the storm's senders and the kill loop share.
type crashRun struct {
	t      *testing.T
	w      *world
	ctx    context.Context
	client *http.Client
	target *botAddr
	gate   *progress // the storm phase released (one per cycle)

	webhooks *progress // webhook deliveries answered 2xx
	answered *progress // slash commands answered 200

	mu        sync.Mutex
	acked     map[string]bool // event ids answered 2xx
	redeliver int             // deliveries sent again after a 2xx
	retries   int             // deliveries sent again after a failure
	commands  []*crashCommand
}

// crashCommand is one slash command and what became of it.
type crashCommand struct {
	user, text string
	kind       string // declare, note, update, mitigate, resolve, ack, sev, page
	token      string // the text it puts on a timeline ("" if none)
	incident   int64  // the incident it names (0: implied by the channel)
	status     int    // HTTP status; 0: no answer (the bot was killed)
	reply      string
}

// succeeded reports whether the reply says the command was done.
func (c *crashCommand) succeeded() bool {
	if c.status != http.StatusOK {
		return false
	}
	want := map[string]string{
		"declare": "Declared *INC-", "note": "Note added to", "update": "Status update posted to",
		"mitigate": "marked mitigated", "resolve": "resolved. Draft", "ack": "acknowledged.",
		"sev": "is now SEV1", "page": "Paging",
	}[c.kind]
	return strings.Contains(c.reply, want)
}

// deliver sends a webhook as PagerDuty does: again and again until it is
// answered 2xx (PagerDuty retries for 48 hours).
func (r *crashRun) deliver(body []byte, webhookID string) int {
	for attempt := 0; ; attempt++ {
		addr, gen, err := r.target.get(r.ctx)
		if err != nil {
			return 0 // the test is ending
		}
		s := &pdtest.Sender{URL: "http://" + addr + "/webhooks/pagerduty", Secrets: []string{pdSecret}, Client: r.client}
		code, err := s.Deliver(r.ctx, body, webhookID)
		switch {
		case err == nil && code/100 == 2:
			if attempt > 0 {
				r.mu.Lock()
				r.retries++
				r.mu.Unlock()
			}
			r.webhooks.add(1)
			return code
		case err == nil && code/100 == 4:
			r.t.Errorf("delivery %s answered %d: PagerDuty drops it", webhookID, code)
			return code
		}
		r.target.retryAfter(r.ctx, gen, 50*time.Millisecond)
	}
}

// sendPD delivers one PagerDuty incident's events in order, each in the
// storm phase it belongs to, and some of them again after their 2xx (a
// lost answer: the same X-Webhook-Id; or a second subscription: another
// id), which must be answered 200 as duplicates.
func (r *crashRun) sendPD(rng *rand.Rand, stream []delivery) {
	for i, d := range stream {
		if !r.gate.wait(r.ctx, 1+i*crashCycles/len(stream), 0) {
			return
		}
		id := "wh-" + d.eventID
		if r.deliver(d.body, id) == 0 {
			return
		}
		r.mu.Lock()
		r.acked[d.eventID] = true
		r.mu.Unlock()
		for _, again := range []string{id, id + "-second-subscription"} {
			if rng.IntN(100) >= 12 {
				continue
			}
			if code := r.deliver(d.body, again); code != http.StatusOK {
				r.t.Errorf("redelivery %s of %s answered %d, want 200 (a duplicate)", again, d.eventID, code)
			}
			r.mu.Lock()
			r.redeliver++
			r.mu.Unlock()
		}
	}
}

// command sends one slash command once, when the bot is up (Slack does
// not retry slash commands; a person whose command failed types a new one).
func (r *crashRun) command(user, channel, kind, text, token string, n int64) *crashCommand {
	c := &crashCommand{user: user, text: text, kind: kind, token: token, incident: n}
	r.mu.Lock()
	r.commands = append(r.commands, c)
	r.mu.Unlock()
	addr, gen, err := r.target.get(r.ctx)
	if err != nil {
		return c
	}
	s := &slacktest.Sender{BaseURL: "http://" + addr, Secret: slackSecret, Fake: r.w.slack, Client: r.client}
	reply, err := s.Command(r.ctx, slacktest.Command{User: user, Channel: channel, Text: text})
	if err != nil {
		// Killed in flight; the person tries again once the bot is back.
		r.target.retryAfter(r.ctx, gen, 50*time.Millisecond)
		return c
	}
	c.status, c.reply = reply.Status, reply.Text()
	if c.status == http.StatusOK {
		r.answered.add(1)
	}
	return c
}

var pdChannelName = regexp.MustCompile(`^inc-\d+-crash-storm-pd-`)

// person runs one user's work, a block per storm phase: declare an
// incident (retyped until the bot answers), then notes, an update, a page
// now and then, a severity change, a note and an ack in a PagerDuty
// incident's channel, mitigate and resolve.
func (r *crashRun) person(rng *rand.Rand, user string) {
	for k := range crashCycles {
		if !r.gate.wait(r.ctx, k+1, 0) {
			return
		}
		var n int64
		for a := 0; n == 0 && a < 30 && r.ctx.Err() == nil; a++ {
			title := fmt.Sprintf("crash %s %d try %d", user, k, a)
			c := r.command(user, r.w.general, "declare", "declare sev2 "+title, title, 0)
			if c.succeeded() {
				_, _ = fmt.Sscanf(c.reply, "Declared *INC-%d*", &n)
			}
		}
		if n == 0 {
			continue
		}
		tok := func(what string) string { return fmt.Sprintf("%s-%s-%d-%06x", what, user, k, rng.Uint32()&0xffffff) }
		// on sends "<verb> INC-n <args>"; token is what it puts on the
		// timeline, if anything.
		on := func(kind, args, token string) {
			r.command(user, r.w.general, kind, strings.TrimSpace(fmt.Sprintf("%s INC-%d %s", kind, n, args)), token, n)
		}
		note, update := tok("note"), tok("update")
		on("note", note, note)
		on("update", update, update)
		paged := user == "U0ALICE" && k%3 == 0
		if paged {
			on("page", "PSVC001", "")
		}
		note = tok("note")
		on("note", note, note)
		on("sev", "1", "")
		var pd []slacktest.Channel
		for _, ch := range r.w.slack.Channels() {
			if pdChannelName.MatchString(ch.Name) {
				pd = append(pd, ch)
			}
		}
		if len(pd) > 0 {
			ch := pd[rng.IntN(len(pd))].ID
			t := tok("pdnote")
			r.command(user, ch, "note", "note "+t, t, 0)
			r.command(user, ch, "ack", "ack", "", 0)
		}
		if paged {
			continue // resolved before the page went out, it would not go out
		}
		mitigation, resolution := tok("mitigate"), tok("resolve")
		on("mitigate", mitigation, mitigation)
		on("resolve", resolution, resolution)
	}
}

// TestCrashStorm runs the real `bot serve`, and kills it with SIGKILL at
// random moments (a seeded schedule: -resilience.seed reproduces one) while
// PagerDuty delivers a storm of signed webhooks (triggers, notes,
// acknowledgements, escalations, resolutions, some delivered twice) and
// people send slash commands, and restarts it on the same database, twelve
// times. A last run drains the queue. Then:
//
//   - every webhook answered 2xx is applied exactly once: each PagerDuty
//     event is on its incident's timeline once (redeliveries are answered
//     200 and change nothing), and each incident's status changes form one
//     chain;
//   - there is one Slack channel per incident, one PagerDuty incident per
//     page, one digest per week (none flagged "Sent again");
//   - slash commands are applied at most once, and exactly once when their
//     answer said they were done (the command runs before Slack gets the
//     answer; a kill before the answer may lose the command, which Slack
//     shows its user as failed);
//   - every timeline event is told in its channel, in order, exactly once;
//     every incident has one summary card and one announcement, and every
//     status update one copy in the announcement's thread. A kill between
//     Slack accepting a message and the bot recording it is resolved by the
//     restart finding the message by its metadata (issue 17), so there is
//     no allowance for repeats;
//   - the database passes `bot check` after every kill and at the end.
func TestCrashStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bot binary")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))

	bin := apptest.BuildBot(t)
	w := newWorld(t, slacktest.Config{})
	db := filepath.Join(t.TempDir(), "bot.db")
	envMap := w.env(db, map[string]string{
		// The digest schedule fires every minute, and each start catches up
		// a missed one: all of them must post the week's digest once.
		"BOT_DIGEST_SCHEDULE": "* * * * *",
		"BOT_DIGEST_CHANNEL":  w.digest,
	})
	env := apptest.ProcessEnv(envMap)
	cfg := loadConfig(t, envMap)

	// PagerDuty's side of the storm, generated on the fake up front: per
	// incident a trigger, notes, an acknowledgement, an escalation to bob,
	// a second acknowledgement, and a resolution.
	alice, bob := pdUser{w, "alice@example.com"}, pdUser{w, "bob@example.com"}
	var streams [][]delivery
	for i := range crashPDCount {
		id := w.trigger(fmt.Sprintf("Crash storm PD %d", i)).ID
		alice.note(t, id, fmt.Sprintf("pd-%d-first look", i))
		alice.note(t, id, fmt.Sprintf("pd-%d-graphs attached", i))
		alice.setStatus(t, id, "acknowledged")
		alice.note(t, id, fmt.Sprintf("pd-%d-need help", i))
		alice.escalate(t, id, 2)
		bob.note(t, id, fmt.Sprintf("pd-%d-bob here", i))
		bob.note(t, id, fmt.Sprintf("pd-%d-found it", i))
		bob.setStatus(t, id, "acknowledged")
		bob.note(t, id, fmt.Sprintf("pd-%d-fix deployed", i))
		bob.setStatus(t, id, "resolved")
		streams = append(streams, deliveries(w.pd.TakeEvents()))
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := &crashRun{
		t: t, w: w, ctx: ctx, client: httpClient(t), target: newBotAddr(), gate: newProgress(),
		webhooks: newProgress(), answered: newProgress(), acked: map[string]bool{},
	}
	var senders sync.WaitGroup
	for i, s := range streams {
		srng := rand.New(rand.NewPCG(seed, uint64(100+i)))
		senders.Go(func() { r.sendPD(srng, s) })
	}
	for i, u := range []string{"U0ALICE", "U0BOB", "U0CAROL"}[:crashUsers] {
		urng := rand.New(rand.NewPCG(seed, uint64(200+i)))
		senders.Go(func() { r.person(urng, u) })
	}
	// However the test ends, the senders stop before it does, and no bot
	// process outlives it.
	var current *apptest.Process
	defer func() {
		cancel()
		senders.Wait()
		if current != nil && current.Cmd.ProcessState == nil {
			_ = current.Cmd.Process.Kill()
			_ = current.Wait()
		}
	}()

	var (
		kills    int
		peakRSS  int64
		triggers []string
	)
	for cycle := 1; cycle <= crashCycles; cycle++ {
		p, err := apptest.StartProcess(bin, env, nil)
		if err != nil {
			t.Fatal(err)
		}
		current = p
		r.target.set(p.Addr)
		r.gate.add(1) // release this cycle's share of the storm
		if cycle == crashDigestRun {
			// An operator asks for last week's digest (`bot digest --post`
			// goes through the admin socket of the running bot).
			reply, err := app.AdminCLI(cfg).PostDigest(ctx, admin.DigestRequest{}, time.Now())
			t.Logf("digest requested: %+v %v", reply, err)
		}
		// Kill at a random moment: at once (during start-up), or after a
		// random number of webhooks answered, of commands answered, or of
		// calls to Slack (mid chat sync).
		// A trigger the storm cannot reach any more (little left to do)
		// falls back to a kill after triggerWait.
		const triggerWait = 3 * time.Second
		var what string
		reached := true
		switch kind := rng.IntN(4); kind {
		case 0:
			what = "at start-up"
		case 1:
			k := 1 + rng.IntN(10)
			what = fmt.Sprintf("after %d more webhooks", k)
			reached = r.webhooks.wait(ctx, r.webhooks.value()+k, triggerWait)
		case 2:
			k := 1 + rng.IntN(12)
			what = fmt.Sprintf("after %d more commands", k)
			reached = r.answered.wait(ctx, r.answered.value()+k, triggerWait)
		default:
			k := 1 + rng.IntN(40)
			base := len(w.slack.Calls(""))
			what = fmt.Sprintf("after %d more Slack calls", k)
			reached = w.slack.Wait(triggerWait, func() bool { return len(w.slack.Calls("")) >= base+k })
		}
		if !reached {
			what += fmt.Sprintf(" (not reached in %s)", triggerWait)
		}
		r.target.set("")      // requests in flight die with it; new ones wait
		rss, _ := p.PeakRSS() // read before the kill: /proc goes with the process
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		kills++
		peakRSS = max(peakRSS, rss)
		triggers = append(triggers, what)
		if out, err := botCheck(bin, env); err != nil {
			t.Fatalf("bot check after kill %d (%s): %v\n%s", kills, what, err, out)
		}
	}
	t.Logf("killed %d times: %s; peak RSS of the bot %.1f MiB", kills, strings.Join(triggers, "; "), float64(peakRSS)/(1<<20))

	// The last run: the same code in this process, with time compressed
	// for the queue and Slack's pacing, drains what is left.
	r.gate.add(1)
	final := startBot(t, cfg, app.Options{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		SlackRates: scaledSlackRates(60),
	}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	r.target.set(final.Addr)
	sendersDone := make(chan struct{})
	go func() { senders.Wait(); close(sendersDone) }()
	select {
	case <-sendersDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the storm's senders did not finish after the last restart")
	}
	waitUntil(t, 60*time.Second, "the queue to drain", func() bool { return settled(final.store, time.Minute) })
	noDeadJobs(t, final.store)
	final.stop(t)
	out, err := botCheck(bin, env)
	if err != nil {
		t.Fatalf("bot check at the end: %v\n%s", err, out)
	}
	t.Logf("bot check: %s", out)

	store, err := boltstore.Open(db, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snap := readStore(t, store)
	r.checkWebhooks(snap, streams)
	r.checkCommands(snap)
	r.checkPages(snap)
	r.checkDigests()
	snap.checkChannels(t, w.slack)
	snap.checkTransitions(t)
	r.checkTold(snap)
}

// checkTold: every incident's timeline is told in its channel, in order,
// each message once, under one summary card and one announcement.
func (r *crashRun) checkTold(snap snapshot) {
	t := r.t
	// Told in Slack: everything, in order, exactly once. A kill between
	// Slack accepting a message and the bot recording it is resolved by
	// finding the message by its metadata (issue 17), so nothing is told
	// twice: no allowance for repeats.
	ann := announcements(r.w.slack, r.w.announce)
	for _, inc := range snap.incidents {
		rep := told(r.w.slack, inc, snap.timelines[inc.Number])
		if rep.missing != "" || rep.extra != 0 || rep.cards != 1 || ann[inc.ID()] != 1 {
			t.Errorf("%s in #%s: %s; %d announcements (want every line once, one summary card, one announcement)", inc.ID(), inc.Chat.ChannelName, rep, ann[inc.ID()])
		}
		if len(inc.Chat.Sending) != 0 {
			t.Errorf("%s still has posts recorded as under way: %+v", inc.ID(), inc.Chat.Sending)
		}
	}
	r.checkUpdateCopies(snap)
}

// checkUpdateCopies: every status update told in an incident's channel is
// copied into its announcement's thread exactly once.
func (r *crashRun) checkUpdateCopies(snap snapshot) {
	t := r.t
	copies := threadCopies(r.w.slack, r.w.announce)
	n := 0
	for _, inc := range snap.incidents {
		for _, ev := range snap.timelines[inc.Number] {
			if ev.Kind != incident.EventStatusUpdate || ev.Quiet {
				continue
			}
			n++
			if c := copies[copyKey(inc, ev)]; c != 1 {
				t.Errorf("%s: status update %q is in the announcement's thread %d times, want once", inc.ID(), ev.Text, c)
			}
		}
	}
	t.Logf("status updates: %d, each copied into its announcement's thread once", n)
}

// checkWebhooks: every event answered 2xx is on its incident's timeline
// exactly once, and every PagerDuty incident has one incident.
func (r *crashRun) checkWebhooks(snap snapshot, streams [][]delivery) {
	t := r.t
	counts, on := snap.keyCounts()
	byPager := snap.byPager()
	acked := 0
	for _, stream := range streams {
		list := byPager[stream[0].pdIncident]
		if len(list) != 1 {
			t.Errorf("PagerDuty incident %s has %d incidents, want 1", stream[0].pdIncident, len(list))
			continue
		}
		inc := list[0]
		for i, d := range stream {
			if !r.acked[d.eventID] {
				t.Errorf("event %s was never answered 2xx", d.eventID)
				continue
			}
			acked++
			key := "pagerduty:" + d.eventID
			if i == 0 {
				key = "pagerduty:declared:" + d.pdIncident
			}
			if counts[key] != 1 || on[key] != inc.Number {
				t.Errorf("event %s (%s) is on the timeline %d times (INC-%d), want once on %s", d.eventID, d.eventType, counts[key], on[key], inc.ID())
			}
		}
		if inc.Status != incident.StatusResolved {
			t.Errorf("%s is %s after PagerDuty resolved it", inc.ID(), inc.Status)
		}
	}
	t.Logf("webhooks: %d events answered 2xx; %d sent again after a failure, %d redelivered after a 2xx (answered 200)", acked, r.retries, r.redeliver)
}

// checkCommands: each command's effect is on a timeline at most once, and
// exactly once if its answer said it was done.
func (r *crashRun) checkCommands(snap snapshot) {
	t := r.t
	found := map[string]int{}
	for _, inc := range snap.incidents {
		found[inc.Title]++
		for _, ev := range snap.timelines[inc.Number] {
			if ev.Text != "" && ev.Kind != incident.EventDeclared {
				found[ev.Text]++
			}
		}
	}
	var sent, answered, done, lost, late int
	for _, c := range r.commands {
		sent++
		switch {
		case c.status == 0:
			lost++
		case c.reply == slack.WorkingText:
			late++
			answered++
		default:
			answered++
		}
		if c.token == "" {
			continue
		}
		n := found[c.token]
		switch {
		case n > 1:
			t.Errorf("%q (%s) applied %d times", c.text, c.user, n)
		case c.succeeded():
			done++
			if n != 1 {
				t.Errorf("%q (%s) was answered %q but is not on the timeline", c.text, c.user, c.reply)
			}
		case c.status == http.StatusOK && c.reply != slack.WorkingText && n != 0:
			t.Errorf("%q (%s) was refused (%q) but is on the timeline", c.text, c.user, c.reply)
		}
	}
	t.Logf("slash commands: %d sent, %d answered (%d done, %d \"Working on it…\"), %d lost to a kill before their answer", sent, answered, done, late, lost)
}

// checkPages: one PagerDuty incident per page key, each linked once.
func (r *crashRun) checkPages(snap snapshot) {
	t := r.t
	byKey := map[string][]string{}
	for _, pi := range r.w.pd.Incidents() {
		if strings.HasPrefix(pi.Key, "incidentbot-") {
			byKey[pi.Key] = append(byKey[pi.Key], pi.ID)
		}
	}
	pages := 0
	for _, c := range r.commands {
		if c.kind != "page" || !c.succeeded() {
			continue
		}
		pages++
		key := incident.PageKey(c.incident, 1)
		if len(byKey[key]) != 1 {
			t.Errorf("page of INC-%d opened PagerDuty incidents %v, want one", c.incident, byKey[key])
		}
		sent := 0
		for _, ev := range snap.timelines[c.incident] {
			if ev.Kind == incident.EventPageSent {
				sent++
			}
		}
		if sent != 1 {
			t.Errorf("INC-%d records %d pages, want 1", c.incident, sent)
		}
	}
	for key, ids := range byKey {
		if len(ids) != 1 {
			t.Errorf("page key %s opened PagerDuty incidents %v", key, ids)
		}
	}
	t.Logf("pages: %d answered, %d PagerDuty incidents opened", pages, len(byKey))
}

// checkDigests: each week's digest is in the digest channel exactly once,
// and none says it was sent again.
func (r *crashRun) checkDigests() {
	t := r.t
	byTitle := map[string][]slacktest.File{}
	for _, f := range r.w.slack.Files() {
		if f.Channel == r.w.digest {
			byTitle[f.Title] = append(byTitle[f.Title], f)
		}
	}
	if len(byTitle) == 0 {
		t.Errorf("no digest was posted")
	}
	for title, fs := range byTitle {
		comments := make([]string, len(fs))
		for i, f := range fs {
			comments[i] = f.Comment
		}
		if len(fs) != 1 || strings.Contains(fs[0].Comment, "Sent again") {
			t.Errorf("%s posted %d times: %q", title, len(fs), comments)
		}
	}
	t.Logf("digests: %v", slices.Sorted(maps.Keys(byTitle)))
}
