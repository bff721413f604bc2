package digest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
)

// chat records what the bot posts. It implements incident.Chat; upload
// makes it an incident.Uploader too.
type chat struct {
	mu    sync.Mutex
	posts []post
	fail  []error
}

type post struct {
	channel string
	file    string // "" for a message
	text    string // the message, or the file's comment
	body    string
}

func (c *chat) record(p post) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fail) > 0 {
		err := c.fail[0]
		c.fail = c.fail[1:]
		return err
	}
	c.posts = append(c.posts, p)
	return nil
}

func (c *chat) all() []post {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]post(nil), c.posts...)
}

func (c *chat) CreateChannel(context.Context, string) (incident.ChannelRef, error) {
	return incident.ChannelRef{}, errors.New("not in these tests")
}
func (c *chat) FindChannel(context.Context, string) (incident.ChannelRef, error) {
	return incident.ChannelRef{}, errors.New("not in these tests")
}
func (c *chat) SetTopic(context.Context, string, string) error { return nil }
func (c *chat) Invite(context.Context, string, []string) error { return nil }
func (c *chat) Update(context.Context, string, string, incident.Message) error {
	return nil
}
func (c *chat) Post(_ context.Context, ch string, m incident.Message) (string, error) {
	return "1.0", c.record(post{channel: ch, text: m.Text})
}

type uploadingChat struct{ chat }

func (c *uploadingChat) Upload(_ context.Context, ch string, f incident.File) error {
	return c.record(post{channel: ch, file: f.Name, text: f.Comment, body: string(f.Content)})
}

// bot is a real store file with a scheduler, a poster and a job runner, as
// one run of the bot has them.
type bot struct {
	t      *testing.T
	path   string
	clock  *incidenttest.Clock
	chat   *uploadingChat
	store  *boltstore.Store
	sched  *Scheduler
	runner *queue.Runner
	spec   string
	loc    *time.Location
}

func newBot(t *testing.T, now time.Time) *bot {
	return newBotWith(t, now, DefaultSchedule, time.UTC)
}

// newBotWith is newBot with a schedule and a digest zone (BOT_TIMEZONE).
func newBotWith(t *testing.T, now time.Time, spec string, loc *time.Location) *bot {
	b := &bot{t: t, path: filepath.Join(t.TempDir(), "bot.db"), clock: incidenttest.NewClock(now), chat: &uploadingChat{}, spec: spec, loc: loc}
	b.start()
	return b
}

// start opens the store and builds the parts, as a process start does.
func (b *bot) start() {
	store, err := boltstore.Open(b.path, boltstore.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = store.Close() })
	log := zaptest.NewLogger(b.t)
	b.store = store
	b.sched = NewScheduler(SchedulerConfig{Schedule: mustSchedule(b.t, b.spec, b.loc), Store: store, Clock: b.clock, Channel: "C0DIGEST", Logger: log})
	b.runner = queue.New(queue.Config{Store: store, Clock: b.clock, Logger: log})
	poster := NewPoster(PosterConfig{Store: store, Clock: b.clock, Chat: b.chat, Location: b.loc, Logger: log})
	b.runner.Handle(JobPost, poster.Handle)
}

// restart closes the file and starts again, as after a crash or a deploy.
func (b *bot) restart() {
	if err := b.store.Close(); err != nil {
		b.t.Fatal(err)
	}
	b.start()
}

func (b *bot) runJobs() {
	b.t.Helper()
	if _, err := b.runner.RunDue(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bot) catchUp() bool {
	b.t.Helper()
	queued, err := b.sched.CatchUp(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return queued
}

func (b *bot) fire() bool {
	b.t.Helper()
	queued, err := b.sched.Fire(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return queued
}

func (b *bot) record(key string) PostRecord {
	b.t.Helper()
	var r PostRecord
	err := b.store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		r, _, err = Posted(tx, key)
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

func (b *bot) wantPosts(n int) []post {
	b.t.Helper()
	posts := b.chat.all()
	if len(posts) != n {
		b.t.Fatalf("%d digests posted, want %d: %+v", len(posts), n, posts)
	}
	return posts
}

func TestFirstStartDoesNotPostLastWeek(t *testing.T) {
	b := newBot(t, utc("2026-11-25 14:00")) // Wednesday, after Monday's activation
	if b.catchUp() {
		t.Error("a fresh install queued last week's digest")
	}
	b.runJobs()
	b.wantPosts(0)
}

func TestMissedScheduleIsCaughtUpOnce(t *testing.T) {
	b := newBot(t, utc("2026-11-20 12:00")) // running on Friday of week 47
	b.catchUp()
	b.restart() // down from Friday...
	b.clock.Set(utc("2026-11-24 10:00"))
	// ...to Tuesday: Monday 09:00 was missed.
	if !b.catchUp() {
		t.Fatal("the missed digest was not queued")
	}
	b.runJobs()
	posts := b.wantPosts(1)
	if p := posts[0]; p.channel != "C0DIGEST" || p.file != "incident-digest-2026-W47.md" || !strings.HasPrefix(p.body, "# Incident digest 2026-W47") {
		t.Errorf("posted %+v", p)
	}
	if r := b.record("digest:2026-W47"); r.State != StatePosted || r.Channel != "C0DIGEST" {
		t.Errorf("record = %+v", r)
	}

	// Another restart, a second catch-up and a late cron activation in the
	// same week post nothing more.
	b.restart()
	if b.catchUp() || b.fire() {
		t.Error("the posted week was queued again")
	}
	b.runJobs()
	b.wantPosts(1)

	// Next Monday's activation posts week 48.
	b.clock.Set(utc("2026-11-30 09:00"))
	if !b.fire() {
		t.Fatal("week 48 not queued")
	}
	b.runJobs()
	if p := b.wantPosts(2)[1]; p.file != "incident-digest-2026-W48.md" {
		t.Errorf("second post %+v", p)
	}
}

func TestExactlyOnceAcrossARestart(t *testing.T) {
	b := newBot(t, utc("2026-11-16 12:00"))
	b.catchUp()
	b.clock.Set(utc("2026-11-23 09:00"))
	if !b.fire() {
		t.Fatal("not queued")
	}
	if b.fire() {
		t.Error("a second activation (double fire) queued it again")
	}
	b.restart() // before the job ran
	if b.catchUp() {
		t.Error("the catch-up after the restart queued it again")
	}
	b.runJobs()
	b.wantPosts(1)
	b.restart()
	b.runJobs()
	b.catchUp()
	b.runJobs()
	b.wantPosts(1)
}

func TestPostRetriesWithoutDuplicates(t *testing.T) {
	b := newBot(t, utc("2026-11-16 12:00"))
	b.catchUp()
	b.chat.fail = []error{incident.Retryable(errors.New("slack: ratelimited"), time.Minute)}
	b.clock.Set(utc("2026-11-23 09:00"))
	b.fire()
	b.runJobs()
	b.wantPosts(0)
	if r := b.record("digest:2026-W47"); r.State != StateFailed {
		t.Errorf("state after a failed post = %q", r.State)
	}
	b.clock.Set(utc("2026-11-23 09:30"))
	b.runJobs()
	if p := b.wantPosts(1)[0]; strings.Contains(p.text, "Sent again") {
		t.Error("a retry after a failed call is not a possible duplicate")
	}
}

func TestInterruptedPostIsSentAgainAndSaysSo(t *testing.T) {
	b := newBot(t, utc("2026-11-16 12:00"))
	b.catchUp()
	b.clock.Set(utc("2026-11-23 09:00"))
	b.fire()
	// A crash between "posting" and "posted".
	err := b.store.Update(context.Background(), func(tx incident.Tx) error {
		return PutRecord(tx, "digest:2026-W47", PostRecord{State: StatePosting, Period: "2026-W47", At: b.clock.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	b.restart()
	b.runJobs()
	if p := b.wantPosts(1)[0]; !strings.Contains(p.text, "Sent again") {
		t.Errorf("comment = %q", p.text)
	}
}

func TestPosterWithoutUploadPostsText(t *testing.T) {
	b := newBot(t, utc("2026-11-23 09:00"))
	plain := &chat{}
	poster := NewPoster(PosterConfig{Store: b.store, Clock: b.clock, Chat: plain, Location: time.UTC, Logger: zaptest.NewLogger(t)})
	if _, err := EnqueueWeek(context.Background(), b.store, Week{2026, 47}, "C0DIGEST", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	runner := queue.New(queue.Config{Store: b.store, Clock: b.clock, Logger: zaptest.NewLogger(t)})
	runner.Handle(JobPost, poster.Handle)
	if _, err := runner.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(plain.posts) != 1 || !strings.Contains(plain.posts[0].text, "*Incident digest 2026-W47*") || !strings.Contains(plain.posts[0].text, "# Incident digest 2026-W47") {
		t.Errorf("posts = %+v", plain.posts)
	}
}

func TestEnqueueRequest(t *testing.T) {
	b := newBot(t, utc("2026-11-25 10:00"))
	ctx := context.Background()
	w47 := Week{2026, 47}.Period(time.UTC)
	// Not posted yet: the request is the week's post.
	if ok, err := EnqueueRequest(ctx, b.store, w47, "C0DIGEST", b.clock.Now()); !ok || err != nil {
		t.Fatalf("EnqueueRequest = %v, %v", ok, err)
	}
	// Queued: a second request does not post it twice.
	if ok, _ := EnqueueRequest(ctx, b.store, w47, "C0DIGEST", b.clock.Now()); ok {
		t.Error("a queued week was queued again")
	}
	b.runJobs()
	b.wantPosts(1)
	if b.fire() {
		t.Error("the schedule would post the week again")
	}
	// Posted: an explicit request posts it again, once.
	b.clock.Set(utc("2026-11-25 11:00"))
	if ok, _ := EnqueueRequest(ctx, b.store, w47, "C0OTHER", b.clock.Now()); !ok {
		t.Error("an explicit request for a posted week was refused")
	}
	// A custom period.
	days, _ := ParsePeriod("", "2026-11-01", "2026-11-10", b.clock.Now(), time.UTC)
	if ok, _ := EnqueueRequest(ctx, b.store, days, "C0DIGEST", b.clock.Now()); !ok {
		t.Error("a custom period was refused")
	}
	b.runJobs()
	b.runJobs()
	posts := b.wantPosts(3)
	if posts[1].channel != "C0OTHER" || posts[1].file != "incident-digest-2026-W47.md" || posts[2].file != "incident-digest-2026-11-01_to_2026-11-10.md" {
		t.Errorf("posts = %+v", posts)
	}
}

func TestRunCatchesUpAndStopsWithItsContext(t *testing.T) {
	b := newBot(t, utc("2026-11-16 12:00"))
	b.catchUp()
	b.clock.Set(utc("2026-11-24 12:00"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.sched.Run(ctx) }()
	// Run catches up before it starts cron: wait for the queued job.
	deadline := time.Now().Add(10 * time.Second)
	for b.record("digest:2026-W47").State != StateQueued {
		if time.Now().After(deadline) {
			t.Fatal("Run did not catch up the missed digest")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestCronPanicsAreRecoveredAndLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	logger := cronLogger{zap.New(core)}
	job := cron.NewChain(cron.Recover(logger)).Then(cron.FuncJob(func() { panic("boom") }))
	job.Run() // would crash the test binary without the wrapper
	entries := logs.FilterMessage("panic").All()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel || entries[0].ContextMap()["error"] != "boom" {
		t.Errorf("logged %+v", logs.All())
	}
}
