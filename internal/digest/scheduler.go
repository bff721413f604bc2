package digest

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Schedule *Schedule
	Store    incident.Store
	Clock    incident.Clock
	Channel  string // where digests go
	Logger   *zap.Logger
	// FireTimeout bounds one activation's store work (default 1m).
	FireTimeout time.Duration
}

// Scheduler queues the weekly digest post at each activation of the
// schedule, and once at start for an activation missed while the bot was
// down. The queue's job then posts it.
type Scheduler struct {
	cfg SchedulerConfig
	log *zap.Logger
}

// NewScheduler returns a scheduler.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.FireTimeout <= 0 {
		cfg.FireTimeout = time.Minute
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger.Named("digest")}
}

// Run catches up a missed digest, then runs the cron schedule until ctx
// ends, and returns once a running activation has finished. Failures of
// single activations are logged, not returned: the bot keeps running.
func (s *Scheduler) Run(ctx context.Context) error {
	if _, err := s.CatchUp(ctx); err != nil {
		s.log.Error("digest catch-up failed", zap.Error(err))
	}
	logger := cronLogger{s.log.Named("cron")}
	c := cron.New(cron.WithLocation(s.cfg.Schedule.Location()), cron.WithLogger(logger), cron.WithChain(cron.Recover(logger)))
	c.Schedule(s.cfg.Schedule.sched, cron.FuncJob(func() {
		if _, err := s.Fire(ctx); err != nil {
			s.log.Error("queueing the weekly digest failed", zap.Error(err))
		}
	}))
	c.Start()
	s.log.Info("digest scheduled", zap.String("schedule", s.cfg.Schedule.String()), zap.Time("next", s.cfg.Schedule.Next(s.cfg.Clock.Now())), zap.String("channel", s.cfg.Channel))
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// Fire is what the schedule runs at an activation: it queues the digest of
// the week due now, unless it is queued or posted already. It reports
// whether it queued one.
func (s *Scheduler) Fire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FireTimeout)
	defer cancel()
	now := s.cfg.Clock.Now()
	w := s.cfg.Schedule.WeekDue(now)
	queued, err := EnqueueWeek(ctx, s.cfg.Store, w, s.cfg.Channel, now)
	if err == nil && queued {
		s.log.Info("weekly digest queued", zap.Stringer("week", w))
	}
	return queued, err
}

// CatchUp queues the digest of the last activation before now if it was
// missed (the bot was down then) and this bot was already running the
// schedule at that time. On the first run it records that moment instead.
// It reports whether it queued a digest.
func (s *Scheduler) CatchUp(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FireTimeout)
	defer cancel()
	now := s.cfg.Clock.Now()
	var since time.Time
	err := s.cfg.Store.Update(ctx, func(tx incident.Tx) error {
		raw, ok, err := tx.Key(sinceKey)
		if err != nil {
			return err
		}
		if ok {
			return since.UnmarshalText(raw)
		}
		since = now
		text, _ := now.UTC().MarshalText()
		return tx.PutKey(sinceKey, text, now)
	})
	if err != nil {
		return false, fmt.Errorf("reading when the digest schedule started: %w", err)
	}
	w, at, due := s.cfg.Schedule.Due(now, since)
	if !due {
		return false, nil
	}
	queued, err := EnqueueWeek(ctx, s.cfg.Store, w, s.cfg.Channel, now)
	if err == nil && queued {
		s.log.Info("missed weekly digest queued", zap.Stringer("week", w), zap.Time("was_due", at))
	}
	return queued, err
}

// cronLogger adapts zap to cron's logr-style logger. Cron's routine
// messages (start, wake, run) are debug-level noise.
type cronLogger struct{ log *zap.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug(msg, fields(kv)...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(fields(kv), zap.Error(err))...)
}

func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}
