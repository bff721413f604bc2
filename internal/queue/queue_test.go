package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
)

var t0 = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*boltstore.Store, *incidenttest.Clock, *queue.Runner) {
	t.Helper()
	store := bolttest.Open(t)
	clock := incidenttest.NewClock(t0)
	r := queue.New(queue.Config{Store: store, Clock: clock, Logger: zaptest.NewLogger(t), MinBackoff: time.Second, MaxBackoff: time.Minute, MaxAttempts: 3})
	return store, clock, r
}

func enqueue(t *testing.T, s *boltstore.Store, jobs ...incident.Job) {
	t.Helper()
	err := s.Update(context.Background(), func(tx incident.Tx) error {
		for i := range jobs {
			if err := tx.Enqueue(&jobs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func runDue(t *testing.T, r *queue.Runner) int {
	t.Helper()
	n, err := r.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetryClassification(t *testing.T) {
	store, clock, r := setup(t)
	calls := map[string]int{}
	r.Handle("flaky", func(_ context.Context, j incident.Job) error {
		calls["flaky"]++
		if calls["flaky"] < 3 {
			return incident.Retryable(errors.New("slack 429"), 30*time.Second)
		}
		return nil
	})
	r.Handle("invalid", func(context.Context, incident.Job) error {
		calls["invalid"]++
		return incident.Errorf(incident.EINVALID, "channel_not_found")
	})
	r.Handle("panics", func(context.Context, incident.Job) error {
		calls["panics"]++
		panic("boom")
	})
	r.Handle("unknown", func(context.Context, incident.Job) error {
		calls["unknown"]++
		return errors.New("something odd")
	})
	enqueue(t, store, incident.Job{Kind: "flaky", Due: t0}, incident.Job{Kind: "invalid", Due: t0},
		incident.Job{Kind: "panics", Due: t0}, incident.Job{Kind: "unknown", Due: t0})

	if n := runDue(t, r); n != 4 {
		t.Fatalf("ran %d jobs, want 4", n)
	}
	if n := runDue(t, r); n != 0 {
		t.Fatalf("retries ran before their time (%d)", n)
	}
	clock.Advance(29 * time.Second)
	if n := runDue(t, r); n != 1 { // only "unknown": backoff 1s; flaky asked for 30s
		t.Fatalf("ran %d after 29s, want 1", n)
	}
	clock.Advance(time.Hour)
	runDue(t, r)
	clock.Advance(time.Hour)
	runDue(t, r)
	if calls["flaky"] != 3 || calls["invalid"] != 1 || calls["panics"] != 1 || calls["unknown"] != 3 {
		t.Fatalf("calls %v; want flaky 3 (retried until it worked), invalid 1, panics 1, unknown 3 (MaxAttempts)", calls)
	}
	dead, _ := store.DeadJobs()
	kinds := map[string]bool{}
	for _, j := range dead {
		kinds[j.Kind] = true
	}
	if len(dead) != 3 || !kinds["invalid"] || !kinds["panics"] || !kinds["unknown"] {
		t.Fatalf("dead letters %+v", dead)
	}
	if pending, _, _, _ := store.JobStats(); pending != 0 {
		t.Fatalf("%d jobs still pending", pending)
	}
}

func TestJobsWithoutHandlerWait(t *testing.T) {
	store, _, r := setup(t)
	enqueue(t, store, incident.Job{Kind: "slack.only", Due: t0})
	if n := runDue(t, r); n != 0 {
		t.Fatalf("ran a job with no handler")
	}
	if pending, _, dead, _ := store.JobStats(); pending != 1 || dead != 0 {
		t.Fatalf("pending %d dead %d; the job must wait for its feature", pending, dead)
	}
}

// TestRunKeepsOrderPerKeyAndOverlapsKeys runs the real loop with several
// workers: jobs of one key never overlap and run in order; different keys
// run at the same time.
func TestRunKeepsOrderPerKeyAndOverlapsKeys(t *testing.T) {
	store := bolttest.Open(t)
	r := queue.New(queue.Config{Store: store, Logger: zaptest.NewLogger(t), Workers: 4, PollInterval: 20 * time.Millisecond})
	store.OnEnqueue(r.Notify)
	const keys, perKey = 3, 15
	var (
		mu       sync.Mutex
		order    = map[string][]int{}
		inKey    = map[string]int{}
		overlap  atomic.Bool
		maxLive  atomic.Int32
		live     atomic.Int32
		finished = make(chan struct{}, keys*perKey)
		release  = make(chan struct{})
	)
	r.Handle("step", func(_ context.Context, j incident.Job) error {
		n := live.Add(1)
		defer live.Add(-1)
		for m := maxLive.Load(); n > m && !maxLive.CompareAndSwap(m, n); m = maxLive.Load() {
		}
		mu.Lock()
		inKey[j.Key]++
		if inKey[j.Key] > 1 {
			overlap.Store(true)
		}
		var i int
		fmt.Sscan(string(j.Payload), &i)
		order[j.Key] = append(order[j.Key], i)
		mu.Unlock()
		if i == 0 {
			<-release // the first job of each key waits until all keys started
		}
		mu.Lock()
		inKey[j.Key]--
		mu.Unlock()
		finished <- struct{}{}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for i := range perKey {
		for k := range keys {
			enqueue(t, store, incident.Job{Kind: "step", Key: fmt.Sprintf("k%d", k), Due: time.Now(), Payload: []byte(fmt.Sprint(i))})
		}
	}
	deadline := time.After(10 * time.Second)
	for live.Load() < keys {
		select {
		case <-deadline:
			t.Fatalf("only %d keys started at once, want %d", live.Load(), keys)
		case <-time.After(time.Millisecond):
		}
	}
	close(release)
	for range keys * perKey {
		select {
		case <-finished:
		case <-deadline:
			t.Fatal("jobs did not finish")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if overlap.Load() {
		t.Fatal("two jobs of one key ran at the same time")
	}
	for k, got := range order {
		for i, v := range got {
			if v != i {
				t.Fatalf("key %s ran out of order: %v", k, got)
			}
		}
	}
}

func TestOverdueJobsRunOnceAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	store := bolttest.OpenAt(t, path)
	enqueue(t, store, incident.Job{Kind: "remind", Due: t0.Add(time.Minute)})
	_ = store.Close() // the bot was down when the job came due

	store = bolttest.OpenAt(t, path)
	clock := incidenttest.NewClock(t0.Add(3 * time.Hour))
	var lag time.Duration
	r := queue.New(queue.Config{Store: store, Clock: clock, Logger: zaptest.NewLogger(t),
		Observe: func(_, _ string, _, l time.Duration) { lag = l }})
	runs := 0
	r.Handle("remind", func(context.Context, incident.Job) error { runs++; return nil })
	runDue(t, r)
	runDue(t, r)
	if runs != 1 {
		t.Fatalf("overdue job ran %d times, want once", runs)
	}
	if lag != 3*time.Hour-time.Minute {
		t.Errorf("lag %s", lag)
	}
}

func TestRunWaitsForRunningJobsOnShutdown(t *testing.T) {
	store := bolttest.Open(t)
	r := queue.New(queue.Config{Store: store, Logger: zaptest.NewLogger(t), PollInterval: 10 * time.Millisecond})
	started, finish := make(chan struct{}), make(chan struct{})
	var completed atomic.Bool
	r.Handle("slow", func(context.Context, incident.Job) error {
		close(started)
		<-finish
		completed.Store(true)
		return nil
	})
	enqueue(t, store, incident.Job{Kind: "slow", Due: time.Now()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-started
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a job was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	if err := <-done; err != nil || !completed.Load() {
		t.Fatalf("Run: %v, completed %v", err, completed.Load())
	}
	if pending, _, _, _ := store.JobStats(); pending != 0 {
		t.Fatal("the finished job was not recorded as done")
	}
}

// TestAbortCancelsRunningJobsAtOnce: a runner whose context ends with
// ErrAbort (a leader that lost its term) cancels its running jobs at once
// rather than letting them finish within ShutdownGrace, and the job,
// cancelled, stays pending for the next runner.
func TestAbortCancelsRunningJobsAtOnce(t *testing.T) {
	store := bolttest.Open(t)
	r := queue.New(queue.Config{Store: store, Logger: zaptest.NewLogger(t), PollInterval: 10 * time.Millisecond, ShutdownGrace: time.Hour})
	started := make(chan struct{})
	r.Handle("slow", func(ctx context.Context, _ incident.Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	enqueue(t, store, incident.Job{Kind: "slow", Due: time.Now()})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-started
	cancel(queue.ErrAbort)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second): // ShutdownGrace is an hour
		t.Fatal("Run still waits for its running job after an abort")
	}
	if pending, _, _, _ := store.JobStats(); pending != 1 {
		t.Fatalf("%d jobs pending after the abort, want the aborted one", pending)
	}
}

// TestDeferralsDoNotCountAsAttempts: work that only has to wait for
// capacity is run again after the wait, however often, and never backs
// off or fails for good; later jobs of its key keep waiting behind it; the
// wait budget reaches the handler.
func TestDeferralsDoNotCountAsAttempts(t *testing.T) {
	store, _, r := setup(t) // MaxAttempts 3
	var order []string
	var budget time.Duration
	deferrals := 0
	r.Handle("post", func(ctx context.Context, j incident.Job) error {
		budget, _ = incident.WaitBudget(ctx)
		if string(j.Payload) == "first" && deferrals < 10 {
			deferrals++
			return incident.Deferred(errors.New("channel paced"), time.Millisecond)
		}
		order = append(order, string(j.Payload))
		return nil
	})
	enqueue(t, store, incident.Job{Kind: "post", Key: "chat:INC-1", Due: t0, Payload: []byte("first")},
		incident.Job{Kind: "post", Key: "chat:INC-1", Due: t0, Payload: []byte("second")})
	// Deferrals are real-time waits (like the rate limiter's); keep
	// running what is due until both are done.
	deadline := time.Now().Add(10 * time.Second)
	for len(order) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("deferred job never finished: order %v after %d deferrals", order, deferrals)
		}
		runDue(t, r)
		if len(order) == 0 {
			jobs, _ := store.DueJobs(t0, 10, nil)
			if len(jobs) != 1 || jobs[0].Attempts != 0 || string(jobs[0].Payload) != "first" {
				t.Fatalf("while deferred: %+v (the head keeps its place, attempts do not grow)", jobs)
			}
		}
	}
	if deferrals != 10 || strings.Join(order, ",") != "first,second" {
		t.Fatalf("deferrals %d, order %v", deferrals, order)
	}
	if pending, _, dead, _ := store.JobStats(); pending != 0 || dead != 0 {
		t.Fatalf("pending %d dead %d", pending, dead)
	}
	if budget != 200*time.Millisecond {
		t.Fatalf("wait budget seen by the handler: %s", budget)
	}
}

// TestPanicInStoreBatchDeadLettersTheJob: a handler whose write panics
// inside the store's group commit (where the panic runs on the store's own
// goroutine) gets an error, the job is dead-lettered at once, a concurrent
// writer's commit is not lost, and the next start does not meet it again.
func TestPanicInStoreBatchDeadLettersTheJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	store := bolttest.OpenAt(t, path)
	r := queue.New(queue.Config{Store: store, Clock: incidenttest.NewClock(t0), Logger: zaptest.NewLogger(t), MaxAttempts: 20})
	applied := 0
	r.Handle("pagerduty.event", func(ctx context.Context, j incident.Job) error {
		applied++
		return store.Batch(ctx, func(tx incident.Tx) error {
			if string(j.Payload) == "poison" {
				var inc *incident.Incident
				_ = inc.ID() // a bug in applying this webhook
			}
			return tx.PutKey("applied:"+string(j.Payload), nil, t0)
		})
	})
	enqueue(t, store, incident.Job{Kind: "pagerduty.event", Key: "pd:P1", Due: t0, Payload: []byte("poison")},
		incident.Job{Kind: "pagerduty.event", Key: "pd:P1", Due: t0, Payload: []byte("good")})
	if n := runDue(t, r); n != 2 || applied != 2 {
		t.Fatalf("ran %d jobs (%d applications), want 2: the poison job once, then the next of its key", n, applied)
	}
	dead, _ := store.DeadJobs()
	if len(dead) != 1 || string(dead[0].Payload) != "poison" || !strings.Contains(dead[0].LastError, "panicked") {
		t.Fatalf("dead letters %+v; want the poison job, failed for good on its first attempt", dead)
	}
	if err := store.View(context.Background(), func(tx incident.Tx) error {
		if _, ok, err := tx.Key("applied:good"); err != nil || !ok {
			return fmt.Errorf("the good job's write is missing (%v)", err)
		}
		if _, ok, _ := tx.Key("applied:poison"); ok {
			return errors.New("the poison job's write was committed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = store.Close()

	// The next start finds nothing to run: no crash loop.
	store = bolttest.OpenAt(t, path)
	r = queue.New(queue.Config{Store: store, Clock: incidenttest.NewClock(t0), Logger: zaptest.NewLogger(t)})
	r.Handle("pagerduty.event", func(context.Context, incident.Job) error { applied++; return nil })
	if n := runDue(t, r); n != 0 {
		t.Fatalf("after a restart %d jobs ran again", n)
	}
}
