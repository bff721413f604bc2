package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/queue"
)

// countingStore counts the runner's looks at the store: one NextDue per
// turn of its loop.
type countingStore struct {
	*boltstore.Store
	turns atomic.Int64
}

func (s *countingStore) NextDue() (time.Time, bool, error) {
	s.turns.Add(1)
	return s.Store.NextDue()
}

// idleTurns lets 10s of the bubble's fake time pass (long after any
// deferral in these tests ended), then counts the runner's turns in the
// next 10s.
func (s *countingStore) idleTurns() int64 {
	time.Sleep(10 * time.Second)
	synctest.Wait()
	before := s.turns.Load()
	time.Sleep(10 * time.Second)
	synctest.Wait()
	return s.turns.Load() - before
}

// TestIdleWhileWorkersBusyWithEndedDeferral: a deferral that ends while
// every worker is busy does not make the runner spin; it sleeps until a
// worker is free, then runs the deferred job. Time is the synctest bubble's
// fake clock, so the count of loop turns, not a duration, is asserted.
func TestIdleWhileWorkersBusyWithEndedDeferral(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{Store: bolttest.Open(t)}
		r := queue.New(queue.Config{Store: store, Logger: zaptest.NewLogger(t), Workers: 1, PollInterval: time.Hour})
		store.OnEnqueue(r.Notify)
		var deferrals atomic.Int32
		posted, started, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
		r.Handle("post", func(context.Context, incident.Job) error {
			if deferrals.Add(1) == 1 {
				return incident.Deferred(errors.New("channel paced"), time.Second)
			}
			close(posted)
			return nil
		})
		r.Handle("slow", func(context.Context, incident.Job) error {
			close(started)
			<-release
			return nil
		})
		enqueue(t, store.Store, incident.Job{Kind: "post", Key: "chat:INC-1", Due: time.Now()},
			incident.Job{Kind: "slow", Key: "runbook:1", Due: time.Now()})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		<-started // "post" was deferred for 1s and "slow" holds the only worker
		// Once the deferral has ended nothing can change until the worker
		// is free. (A runner that polls for the ended deferral turns every
		// millisecond.)
		if turns := store.idleTurns(); turns > 0 {
			t.Errorf("the runner woke %d times in 10s with every worker busy and nothing new to do", turns)
		}

		close(release)
		<-posted // the freed worker runs the deferred job
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := deferrals.Load(); n != 2 {
			t.Fatalf("post ran %d times, want 2 (deferred once, then done)", n)
		}
	})
}

// TestIdleAfterDeferredJobIsCancelled: a deferred job that is cancelled
// (a replaced timer) before its deferral ends leaves nothing for the runner
// to wake up for.
func TestIdleAfterDeferredJobIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{Store: bolttest.Open(t)}
		r := queue.New(queue.Config{Store: store, Logger: zaptest.NewLogger(t), Workers: 2, PollInterval: time.Hour})
		deferred := make(chan uint64, 1)
		r.Handle("remind", func(_ context.Context, j incident.Job) error {
			deferred <- j.ID
			return incident.Deferred(errors.New("channel paced"), time.Second)
		})
		enqueue(t, store.Store, incident.Job{Kind: "remind", Key: "remind:INC-1", Due: time.Now()})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		id := <-deferred
		if err := store.Update(context.Background(), func(tx incident.Tx) error { return tx.CancelJob(id) }); err != nil {
			t.Fatal(err)
		}
		if turns := store.idleTurns(); turns > 0 {
			t.Errorf("the runner woke %d times in 10s with nothing to do", turns)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
