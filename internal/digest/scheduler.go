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
	RunCron(ctx, s.cfg.Schedule, s.log, func() {
		if _, err := s.Fire(ctx); err != nil {
			s.log.Error("queueing the weekly digest failed", zap.Error(err))
		}
	}, func() {
		s.log.Info("digest scheduled", zap.String("schedule", s.cfg.Schedule.String()), zap.Time("next", s.cfg.Schedule.Next(s.cfg.Clock.Now())), zap.String("channel", s.cfg.Channel))
	})
	return nil
}

// RunCron calls fire at every activation of sched until ctx ends, and
// returns once a running activation has finished; started is called once
// the cron runs. A panic in fire is logged and the schedule goes on. It
// is the one cron loop of the bot's schedules (the digest, the on-call
// handover).
func RunCron(ctx context.Context, sched *Schedule, log *zap.Logger, fire, started func()) {
	logger := cronLogger{log.Named("cron")}
	c := cron.New(cron.WithLocation(sched.Location()), cron.WithLogger(logger), cron.WithChain(cron.Recover(logger)))
	c.Schedule(sched.sched, cron.FuncJob(fire))
	c.Start()
	if started != nil {
		started()
	}
	<-ctx.Done()
	<-c.Stop().Done()
}

// MaxCatchUpWeeks bounds how many weeks one activation posts: after a
// longer outage (or a schedule that was off for longer) the older weeks are
// left to `bot digest --week`, and the log says which.
const MaxCatchUpWeeks = 4

// Fire is what the schedule runs at an activation: it queues the digest of
// the week due now and of every earlier week not posted yet (see
// enqueueDue), unless they are queued or posted already. It reports whether
// it queued any.
func (s *Scheduler) Fire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FireTimeout)
	defer cancel()
	now := s.cfg.Clock.Now()
	since, err := s.since(ctx, now, false)
	if err != nil {
		return false, err
	}
	return s.enqueueDue(ctx, s.cfg.Schedule.WeekDue(now), since, now, "weekly digest queued")
}

// CatchUp queues the digests missed while the bot was down: if the last
// activation before now came after this bot started running the schedule,
// the week due then and every earlier week not posted yet (see enqueueDue).
// On the first run it records that moment instead. It reports whether it
// queued a digest.
func (s *Scheduler) CatchUp(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FireTimeout)
	defer cancel()
	now := s.cfg.Clock.Now()
	since, err := s.since(ctx, now, true)
	if err != nil {
		return false, err
	}
	w, _, due := s.cfg.Schedule.Due(now, since)
	if !due {
		return false, nil
	}
	return s.enqueueDue(ctx, w, since, now, "missed weekly digest queued")
}

// since returns when this bot first ran the schedule; record stores now
// if nothing is recorded yet (without record, now is returned).
func (s *Scheduler) since(ctx context.Context, now time.Time, record bool) (time.Time, error) {
	since, err := FirstRun(ctx, s.cfg.Store, sinceKey, now, record)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading when the digest schedule started: %w", err)
	}
	return since, nil
}

// FirstRun returns when this bot first ran a schedule, as recorded under
// key, so that a fresh install does not post for activations before it
// existed. With record, it stores now when nothing is recorded yet;
// without, it returns now then.
func FirstRun(ctx context.Context, store incident.Store, key string, now time.Time, record bool) (time.Time, error) {
	since := now
	read := func(tx incident.Tx) error {
		raw, ok, err := tx.Key(key)
		if err != nil || !ok {
			return err
		}
		return since.UnmarshalText(raw)
	}
	err := store.View(ctx, read)
	if err == nil && record && since.Equal(now) {
		err = store.Update(ctx, func(tx incident.Tx) error {
			if err := read(tx); err != nil || !since.Equal(now) {
				return err
			}
			text, _ := now.UTC().MarshalText()
			return tx.PutKey(key, text, now)
		})
	}
	return since, err
}

// enqueueDue queues the digest of week due and of the weeks before it back
// to the newest one whose post is recorded (queued, posted or requested),
// oldest first, so that each is posted once and in order. An activation's
// week is not always the one after the previous activation's: a schedule
// whose time falls on the other side of a week boundary in the digest's
// zone after a DST change (CRON_TZ=UTC 0 9 * * MON read in America/Adak),
// an activation that does not exist on the DST day (CRON_TZ=Europe/Berlin
// 30 2 * * SUN), or downtime over several activations would otherwise skip
// a week. Weeks that ended before this bot started running the schedule
// are not posted (a fresh install posts no history), and at most
// MaxCatchUpWeeks are.
func (s *Scheduler) enqueueDue(ctx context.Context, due Week, since, now time.Time, msg string) (bool, error) {
	loc := s.cfg.Schedule.Location()
	var weeks []Week // newest first
	older := false
	err := s.cfg.Store.View(ctx, func(tx incident.Tx) error {
		weeks, older = weeks[:0], false
		for w := due; ; w = w.Prev() {
			if w != due && !w.Period(loc).To.After(since) {
				return nil
			}
			if _, ok, err := tx.Key(WeekKey(w)); err != nil || ok {
				return err
			}
			if len(weeks) == MaxCatchUpWeeks {
				older = true
				return nil
			}
			weeks = append(weeks, w)
		}
	})
	if err != nil {
		return false, fmt.Errorf("reading which digests were posted: %w", err)
	}
	if older {
		s.log.Warn("older weekly digests were missed and are not posted; post them with `bot digest --week`",
			zap.Stringer("before", weeks[len(weeks)-1]), zap.Int("max_catch_up_weeks", MaxCatchUpWeeks))
	}
	queuedAny := false
	for i := len(weeks) - 1; i >= 0; i-- {
		queued, err := EnqueueWeek(ctx, s.cfg.Store, weeks[i], s.cfg.Channel, now)
		if err != nil {
			return queuedAny, err
		}
		if queued {
			queuedAny = true
			s.log.Info(msg, zap.Stringer("week", weeks[i]))
		}
	}
	return queuedAny, nil
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
