package handover_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/handover"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// bot is one run of the bot as far as the handover goes: the database
// file, the scheduler, the poster and the job runner, against the fake
// Slack, on the test's clock.
type bot struct {
	t       *testing.T
	path    string
	clock   *incidenttest.Clock
	fake    *slacktest.Server
	client  *slack.Client
	channel string

	store  *boltstore.Store
	svc    *incident.Service
	sched  *handover.Scheduler
	runner *queue.Runner
}

func newBot(t *testing.T, now time.Time) *bot {
	b := &bot{t: t, path: filepath.Join(t.TempDir(), "bot.db"), clock: incidenttest.NewClock(now)}
	b.fake, b.client = fakeSlack(t, b.clock)
	b.channel = b.fake.AddChannel("oncall", false, b.fake.BotUserID())
	b.start()
	return b
}

// start opens the file and builds the parts, then runs what a start runs:
// the catch-up of a missed handover.
func (b *bot) start() (queued bool) {
	b.t.Helper()
	b.store = openStore(b.t, b.path)
	log := zaptest.NewLogger(b.t)
	b.svc = incident.NewService(incident.ServiceConfig{Store: b.store, Clock: b.clock})
	h := handover.New(handover.Config{Service: b.svc, Store: b.store, Shifts: handover.Shifts{Schedule: schedule(b.t)}, Location: berlin, Chat: b.client, Logger: log})
	b.sched = h.Scheduler(b.channel)
	b.runner = queue.New(queue.Config{Store: b.store, Clock: b.clock, Logger: log})
	b.runner.Handle(handover.JobPost, h.Handle)
	return b.fire()
}

func (b *bot) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// crash closes the file without any further work, as a kill leaves it.
func (b *bot) crash() { b.t.Helper(); b.must(b.store.Close()) }

// fire runs an activation of the schedule; it reports whether it queued a
// handover.
func (b *bot) fire() bool {
	b.t.Helper()
	queued, err := b.sched.Fire(context.Background())
	b.must(err)
	return queued
}

// work runs the jobs that are due.
func (b *bot) work() {
	b.t.Helper()
	_, err := b.runner.RunDue(context.Background())
	b.must(err)
}

func (b *bot) posts() []slacktest.Message { return b.fake.Messages(b.channel) }

// TestScheduledHandoverOncePerShift: a shift's handover is posted once at
// the schedule's activation even when the bot is killed after Slack took
// the post but before it heard back; after two days of downtime the
// handover of the shifts missed is posted when the bot is back, as one
// covering both (once, however often it restarts).
func TestScheduledHandoverOncePerShift(t *testing.T) {
	// Mon 30 Nov, 13:00 in Berlin: a fresh install posts no history.
	b := newBot(t, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	if b.fire() {
		t.Fatal("a fresh install queued a handover for a shift before it ran")
	}
	if _, err := b.svc.Declare(context.Background(), incident.Declaration{Title: "Payments API latency", Severity: incident.SEV2, By: alice}); err != nil {
		t.Fatal(err)
	}

	// Tue 09:00 in Berlin: the activation. Slack takes the post, but the
	// answer is lost and the bot is killed before it retries.
	b.clock.Set(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	if !b.fire() {
		t.Fatal("the activation queued nothing")
	}
	b.fake.FailNext("chat.postMessage", 1, slacktest.LostAnswer())
	b.work()
	b.crash()
	b.clock.Advance(time.Minute)
	if b.start() {
		t.Error("the restart queued the shift's handover again")
	}
	b.work()
	b.clock.Advance(time.Hour) // past any retry backoff
	b.work()
	if got := b.posts(); len(got) != 1 {
		t.Fatalf("the shift's handover is in the channel %d times, want once", len(got))
	} else if !strings.HasPrefix(got[0].Text, "*On-call handover* for the shift Mon 30 Nov 09:00 to Tue 01 Dec 09:00 (Europe/Berlin)") ||
		!strings.Contains(got[0].Text, "Payments API latency") {
		t.Errorf("posted:\n%s", got[0].Text)
	}
	// A second activation seen for the same shift (a second replica, a
	// cron tick after a restart) queues nothing.
	if b.fire() {
		t.Error("the same activation queued the handover twice")
	}
	b.work()

	// Down from Tue 10:30 to Thu 11:00 (Berlin): the Wednesday and
	// Thursday 09:00 handovers were missed.
	b.crash()
	b.clock.Set(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	if !b.start() {
		t.Fatal("the missed handover was not queued at start")
	}
	b.work()
	got := b.posts()
	if len(got) != 2 {
		t.Fatalf("%d handovers in the channel after the catch-up, want 2", len(got))
	}
	if want := "*On-call handover* for the shift Tue 01 Dec 09:00 to Thu 03 Dec 09:00 (Europe/Berlin)\nPosted late: the incidents are shown as they were at Thu 03 Dec 11:00."; !strings.HasPrefix(got[1].Text, want) {
		t.Errorf("caught-up post:\n%s\nwant it to start\n%s", got[1].Text, want)
	}
	b.crash()
	b.clock.Advance(time.Hour)
	if b.start() {
		t.Error("a restart queued the caught-up handover again")
	}
	b.work()
	if n := len(b.posts()); n != 2 {
		t.Errorf("%d handovers in the channel after another restart, want 2", n)
	}
	_ = b.store.View(context.Background(), func(tx incident.Tx) error {
		for _, at := range []time.Time{time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)} {
			rec, _, err := digest.Posted(tx, handover.ShiftKey(at))
			if err != nil || rec.State != digest.StatePosted || rec.Channel != b.channel {
				t.Errorf("record of the shift ending %s = %+v, %v", at, rec, err)
			}
		}
		if _, found, _ := digest.Posted(tx, handover.ShiftKey(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))); found {
			t.Error("the missed shift ending Wednesday was queued on its own too")
		}
		return nil
	})

	// Down for more than handover.MaxCatchUp: the handover covers the
	// last shift only.
	b.crash()
	b.clock.Set(time.Date(2026, 12, 20, 10, 0, 0, 0, time.UTC))
	if !b.start() {
		t.Fatal("nothing was queued after a long outage")
	}
	b.work()
	if got := b.posts(); len(got) != 3 || !strings.HasPrefix(got[2].Text, "*On-call handover* for the shift Sat 19 Dec 09:00 to Sun 20 Dec 09:00 (Europe/Berlin)") {
		t.Errorf("after a long outage: %d posts, the last:\n%s", len(got), got[len(got)-1].Text)
	}
	b.crash()
}
