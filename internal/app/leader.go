package app

import (
	"cmp"
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/queue"
)

// lead runs the work only one replica may do — the job runner and
// leaderWork (pruning, the digest schedule) — until ctx ends. With bbolt
// the one process is the leader. In the etcd mode the replicas elect one
// (etcdstore.Store.Lead): every replica serves requests, the leader alone
// runs jobs, woken by a watch on the queue, and every write of its term is
// fenced on its election so a deposed leader's writes change nothing.
func (a *App) lead(ctx context.Context, fail func(error)) error {
	es, ok := a.store.(*etcdstore.Store)
	if !ok {
		return a.leaderTerm(ctx, fail, nil)
	}
	name, err := os.Hostname()
	if err != nil {
		name = "incident-bot"
	}
	return es.Lead(ctx, etcdstore.LeadConfig{
		Name: name, TTL: cmp.Or(a.opts.LeaderTTL, a.cfg.Etcd.LeaderTTL), Logger: a.log,
		Elected: func(f etcdstore.Fence) {
			a.fence.Store(&f)
			a.leading.Store(true)
		},
	}, func(ctx context.Context) error {
		defer a.leading.Store(false)
		return a.leaderTerm(ctx, fail, es)
	})
}

// leaderTerm runs the leader's work until ctx ends, then stops leaderWork
// before the job runner drains (as Serve stops schedulers before the
// runner), and returns when all of it has stopped. A term that ended
// because leadership was lost (etcdstore.ErrLeadershipLost) aborts its
// running jobs at once: another replica may be running them already.
func (a *App) leaderTerm(ctx context.Context, fail func(error), es *etcdstore.Store) error {
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	// The runner's context keeps ctx's values (the term's fence) but ends
	// only after leaderWork has stopped.
	runnerCtx, stopRunner := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopRunner(nil)
	// The queue's reads and writes end with the term only if leadership is
	// lost: on a shutdown the running jobs still record their results.
	queueCtx, lost := context.WithCancel(context.WithoutCancel(ctx))
	defer lost()
	a.queueCtx.Store(&queueCtx)
	var work sync.WaitGroup
	for _, run := range a.leaderWork {
		work.Go(func() { fail(run(workCtx)) })
	}
	if es != nil {
		work.Go(func() { es.WatchJobs(workCtx, a.runner.Notify) })
	}
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- a.runner.Run(runnerCtx) }()
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), etcdstore.ErrLeadershipLost) {
		lost()
		stopRunner(queue.ErrAbort)
	}
	stopWork()
	work.Wait()
	stopRunner(nil)
	return <-runnerDone
}

// queueStore is the store the job runner completes, retries and fails
// jobs in: in the etcd mode fenced on the current term (a.fence).
func (a *App) queueStore() queue.Store {
	es, ok := a.store.(*etcdstore.Store)
	if !ok {
		return a.store
	}
	return &fencedQueue{Store: es, fence: &a.fence, ctx: &a.queueCtx}
}

// fencedQueue is queue.Store on etcd with every write fenced on the
// leader's current term, and every operation ended when the term is lost.
type fencedQueue struct {
	*etcdstore.Store
	fence *atomic.Pointer[etcdstore.Fence]
	ctx   *atomic.Pointer[context.Context]
}

func (q *fencedQueue) jobs() *etcdstore.Jobs {
	ctx := context.Background()
	if c := q.ctx.Load(); c != nil {
		ctx = *c
	}
	return q.Store.FencedIn(ctx, q.fence.Load())
}

func (q *fencedQueue) DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error) {
	return q.jobs().DueJobs(now, limit, skip)
}

func (q *fencedQueue) NextDue() (time.Time, bool, error) { return q.jobs().NextDue() }

func (q *fencedQueue) CompleteJob(id uint64) error { return q.jobs().CompleteJob(id) }

func (q *fencedQueue) RetryJob(id uint64, due time.Time, lastErr string) error {
	return q.jobs().RetryJob(id, due, lastErr)
}

func (q *fencedQueue) FailJob(id uint64, lastErr string, at time.Time) error {
	return q.jobs().FailJob(id, lastErr, at)
}

var _ queue.Store = (*fencedQueue)(nil)

// Leading reports whether this replica runs the leader's work now (always
// true with bbolt once serving).
func (a *App) Leading() bool {
	if _, ok := a.store.(*etcdstore.Store); !ok {
		return true
	}
	return a.leading.Load()
}
