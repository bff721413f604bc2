// Package queue runs the durable jobs stored by the incident store: outbound
// chat and pager calls, escalation timers, reminders and stored webhooks.
//
// Delivery is at least once: a job is removed only after its handler
// returns nil, so a crash re-runs it at the next start. Handlers must
// therefore be idempotent (they check the store before acting, or use
// outside idempotency keys). Jobs of one key run one at a time, in order.
//
// A handler's error decides what happens next: a deferral
// (incident.Deferred: wait for rate-limit capacity) runs the job again after
// the wait, in real time like the limiter that asked for it, without
// counting an attempt or writing anything, so waiting never holds a worker;
// a
// retryable error (incident.Retryable) is retried with backoff for as long
// as it takes, honouring the wait the remote side asked for; a domain error (invalid,
// not found, conflict, forbidden) or a panic (in the handler, or one a store
// recovered for it: incident.ErrPanicked) fails the job for good and moves
// it to the dead-letter bucket; any other error is retried with backoff up to
// MaxAttempts and then failed.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Store is the job storage the runner needs.
type Store interface {
	DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error)
	NextDue() (time.Time, bool, error)
	CompleteJob(id uint64) error
	RetryJob(id uint64, due time.Time, lastErr string) error
	FailJob(id uint64, lastErr string, at time.Time) error
}

// Handler runs one job.
type Handler func(ctx context.Context, job incident.Job) error

// Outcome of one job run, as reported to Config.Observe.
const (
	OutcomeDone     = "done"
	OutcomeRetry    = "retry"
	OutcomeDeferred = "deferred" // waited for capacity; not a failure
	OutcomeFailed   = "failed"
)

// Config configures a Runner.
type Config struct {
	Store  Store
	Clock  incident.Clock // default incident.SystemClock
	Logger *zap.Logger
	// Workers is how many jobs run at once (default 4).
	Workers int
	// JobTimeout bounds one run of one job (default 2m).
	JobTimeout time.Duration
	// PollInterval is the longest the runner sleeps without looking at the
	// store (default 1s); enqueues wake it earlier through Notify.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay (defaults 1s, 5m).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds retries of errors that are neither retryable nor
	// domain errors (default 20). Retryable errors are retried without limit.
	MaxAttempts int
	// ShutdownGrace is how long Run waits for running jobs after its context
	// ends before cancelling them (default 10s).
	ShutdownGrace time.Duration
	// WaitBudget is how long a job's outside calls may wait for rate-limit
	// capacity before the job is deferred (incident.WithWaitBudget;
	// default 200ms), so a crowd of jobs waiting for one Slack channel
	// never starves the others of workers.
	WaitBudget time.Duration
	// Observe, if set, is called after every run: the job's kind, the
	// outcome, how long it ran and how late it started.
	Observe func(kind, outcome string, ran, lag time.Duration)
}

// Runner runs due jobs with a fixed number of workers.
type Runner struct {
	cfg      Config
	log      *zap.Logger
	handlers map[string]Handler
	wake     chan struct{}

	mu      sync.Mutex
	running map[uint64]bool
	keys    map[string]bool
	// settled holds jobs finished (completed, rescheduled or failed) since
	// the last look at the store began. A look reads a snapshot that may
	// predate their commit, so they must not be picked from it.
	settled map[uint64]bool
	// deferred holds jobs waiting for capacity, until when (real time, like
	// the rate limiters that asked for the wait). Nothing is written for a
	// deferral: after a restart the job is simply due again.
	deferred map[uint64]time.Time
}

// New returns a runner; register handlers with Handle before Run.
func New(cfg Config) *Runner {
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.WaitBudget <= 0 {
		cfg.WaitBudget = 200 * time.Millisecond
	}
	return &Runner{
		cfg:      cfg,
		log:      cfg.Logger.Named("queue"),
		handlers: map[string]Handler{},
		wake:     make(chan struct{}, 1),
		running:  map[uint64]bool{},
		keys:     map[string]bool{},
		settled:  map[uint64]bool{},
		deferred: map[uint64]time.Time{},
	}
}

// Handle registers the handler for a job kind.
func (r *Runner) Handle(kind string, h Handler) { r.handlers[kind] = h }

// Notify wakes the runner to look for due jobs now. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// skip reports whether j must not start now: it or its key is running, or
// its kind has no handler (a feature that is not configured in this run; its
// jobs wait, they are not failed).
func (r *Runner) skip(j incident.Job) bool {
	if _, ok := r.handlers[j.Kind]; !ok {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if until, ok := r.deferred[j.ID]; ok {
		if time.Now().Before(until) {
			return true
		}
		delete(r.deferred, j.ID)
	}
	return r.running[j.ID] || r.settled[j.ID] || (j.Key != "" && r.keys[j.Key])
}

// nextDeferral returns how long until the earliest deferral that has not
// ended. Deferrals that have ended are forgotten here (as skip would), so
// their jobs are plainly due again, and expired reports whether there were
// any: they need a look at the store, but only when a worker is free (a
// finishing job wakes the loop), never a wake-up per millisecond while all
// workers are busy.
func (r *Runner) nextDeferral() (wait time.Duration, ok, expired bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var next time.Time
	for id, until := range r.deferred {
		if !until.After(now) {
			delete(r.deferred, id)
			expired = true
			continue
		}
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	return next.Sub(now), !next.IsZero(), expired
}

// dueJobs reads up to limit runnable jobs. Jobs settled before the read
// began cannot be in its snapshot, so they are forgotten afterwards.
func (r *Runner) dueJobs(limit int) ([]incident.Job, error) {
	r.mu.Lock()
	before := make([]uint64, 0, len(r.settled))
	for id := range r.settled {
		before = append(before, id)
	}
	r.mu.Unlock()
	jobs, err := r.cfg.Store.DueJobs(r.cfg.Clock.Now(), limit, r.skip)
	r.mu.Lock()
	for _, id := range before {
		delete(r.settled, id)
	}
	r.mu.Unlock()
	return jobs, err
}

func (r *Runner) claim(j incident.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[j.ID] = true
	if j.Key != "" {
		r.keys[j.Key] = true
	}
}

// release marks j settled and no longer running. Its result must be
// committed to the store before.
func (r *Runner) release(j incident.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled[j.ID] = true
	delete(r.running, j.ID)
	if j.Key != "" {
		delete(r.keys, j.Key)
	}
}

func (r *Runner) busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// ErrAbort, as the cause of Run's context (context.WithCancelCause), makes
// Run cancel its running jobs at once instead of giving them ShutdownGrace:
// the caller may no longer run jobs (a deposed leader in the etcd mode),
// so letting them finish could only repeat side effects another runner is
// about to make.
var ErrAbort = errors.New("queue: running jobs aborted")

// Run runs jobs until ctx ends, then waits for the running jobs (cancelling
// them after ShutdownGrace, or at once if ctx's cause is ErrAbort) and
// returns. Jobs overdue at start run at once, once each.
func (r *Runner) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), ErrAbort) {
				cancelJobs()
			}
			return r.drain(&wg, cancelJobs)
		case <-timer.C:
		case <-r.wake:
		}
		free := r.cfg.Workers - r.busy()
		if free > 0 {
			jobs, err := r.dueJobs(free)
			if err != nil {
				r.log.Error("reading due jobs", zap.Error(err))
			}
			for _, j := range jobs {
				r.claim(j)
				wg.Go(func() {
					r.runOne(jobCtx, j)
					r.release(j)
					r.Notify() // a finished job may unblock its key
				})
			}
		}
		timer.Reset(r.nextWait(r.cfg.Workers - r.busy()))
	}
}

func (r *Runner) drain(wg *sync.WaitGroup, cancel context.CancelFunc) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(r.cfg.ShutdownGrace):
		r.log.Warn("cancelling running jobs at shutdown", zap.Int("running", r.busy()))
		cancel()
		<-done
		return nil
	}
}

// nextWait is how long the loop may sleep; free is how many workers are
// idle.
func (r *Runner) nextWait(free int) time.Duration {
	wait := r.cfg.PollInterval
	if next, ok, err := r.cfg.Store.NextDue(); err == nil && ok {
		// Due but not runnable (blocked behind its key, or workers full):
		// a completion or an enqueue will wake us; otherwise the poll does.
		if d := next.Sub(r.cfg.Clock.Now()); d > 0 && d < wait {
			wait = d
		}
	}
	d, ok, expired := r.nextDeferral()
	if ok {
		wait = min(wait, d)
	}
	if expired && free > 0 {
		wait = 0 // a deferred job is runnable again and a worker can take it
	}
	return wait
}

// RunDue runs every job that is due now, one at a time, until none is left,
// and returns how many runs it made. It is for the local shell and tests,
// which want the queue's effects before they go on; it must not be used
// while Run is running.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	ran := 0
	for ctx.Err() == nil {
		jobs, err := r.dueJobs(1)
		if err != nil {
			return ran, err
		}
		if len(jobs) == 0 {
			return ran, nil
		}
		r.claim(jobs[0])
		r.runOne(ctx, jobs[0])
		r.release(jobs[0])
		ran++
	}
	return ran, ctx.Err()
}

func (r *Runner) runOne(ctx context.Context, j incident.Job) {
	log := r.log.With(zap.Uint64("job", j.ID), zap.String("kind", j.Kind), zap.String("key", j.Key), zap.Int("attempt", j.Attempts+1))
	start := r.cfg.Clock.Now()
	lag := max(start.Sub(j.Due), 0)
	err := r.call(ctx, j)
	ran := r.cfg.Clock.Now().Sub(start)
	outcome := r.settle(j, err, start, log)
	if r.cfg.Observe != nil {
		r.cfg.Observe(j.Kind, outcome, ran, lag)
	}
}

func (r *Runner) call(ctx context.Context, j incident.Job) (err error) {
	h, ok := r.handlers[j.Kind]
	if !ok {
		return incident.Errorf(incident.EINVALID, "no handler for job kind %q", j.Kind)
	}
	ctx, cancel := context.WithTimeout(incident.WithWaitBudget(ctx, r.cfg.WaitBudget), r.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("job handler panicked", zap.String("kind", j.Kind), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("job handler %w: %v", incident.ErrPanicked, p)
		}
	}()
	return h(ctx, j)
}

// settle records the result of a run and returns its outcome.
func (r *Runner) settle(j incident.Job, err error, now time.Time, log *zap.Logger) string {
	if err == nil {
		if cerr := r.cfg.Store.CompleteJob(j.ID); cerr != nil {
			log.Error("completing job", zap.Error(cerr))
		}
		return OutcomeDone
	}
	if wait, ok := incident.IsDeferred(err); ok {
		log.Debug("job deferred", zap.Duration("for", wait), zap.Error(err))
		r.mu.Lock()
		r.deferred[j.ID] = time.Now().Add(max(wait, time.Millisecond))
		r.mu.Unlock()
		return OutcomeDeferred
	}
	after, retryable := incident.IsRetryable(err)
	permanent := errors.Is(err, incident.ErrPanicked) || (!retryable && incident.ErrorCode(err) != incident.EINTERNAL)
	if !retryable && !permanent && j.Attempts+1 >= r.cfg.MaxAttempts {
		permanent = true
	}
	if permanent {
		log.Error("job failed for good; moved to dead letters", zap.Error(err))
		if ferr := r.cfg.Store.FailJob(j.ID, err.Error(), r.cfg.Clock.Now()); ferr != nil {
			log.Error("failing job", zap.Error(ferr))
		}
		return OutcomeFailed
	}
	wait := max(after, r.backoff(j.Attempts))
	log.Warn("job failed; will retry", zap.Error(err), zap.Duration("retry_in", wait))
	if rerr := r.cfg.Store.RetryJob(j.ID, now.Add(wait), err.Error()); rerr != nil {
		log.Error("rescheduling job", zap.Error(rerr))
	}
	return OutcomeRetry
}

// backoff is MinBackoff doubled per earlier attempt, capped at MaxBackoff,
// with up to 20% jitter so that retries after an outage do not stampede.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.cfg.MinBackoff
	for i := 0; i < attempts && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxBackoff)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}
