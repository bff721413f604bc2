package handover

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/digest"
)

// fireTimeout bounds one activation's store work.
const fireTimeout = time.Minute

// Scheduler queues the handover post at each activation of the schedule,
// and once at start for the latest activation missed while the bot was
// down. The queue's job (Handovers.Handle) then posts it.
type Scheduler struct {
	h        *Handovers
	schedule *digest.Schedule
	channel  string
}

// Scheduler returns the scheduler of the handovers' schedule (Config.Shifts),
// posting to channel; nil when there is no schedule.
func (h *Handovers) Scheduler(channel string) *Scheduler {
	if h.cfg.Shifts.Schedule == nil {
		return nil
	}
	return &Scheduler{h: h, schedule: h.cfg.Shifts.Schedule, channel: channel}
}

// Run catches up a missed handover, then runs the cron schedule until ctx
// ends, and returns once a running activation has finished. Failures of
// single activations are logged, not returned: the bot keeps running.
func (s *Scheduler) Run(ctx context.Context) error {
	log := s.h.log
	if _, err := s.Fire(ctx); err != nil {
		log.Error("handover catch-up failed", zap.Error(err))
	}
	digest.RunCron(ctx, s.schedule, log, func() {
		if _, err := s.Fire(ctx); err != nil {
			log.Error("queueing the handover failed", zap.Error(err))
		}
	}, func() {
		log.Info("handover scheduled", zap.String("schedule", s.schedule.String()), zap.Time("next", s.schedule.Next(s.h.clock().Now())), zap.String("channel", s.channel))
	})
	return nil
}

// Fire queues the handover of the shift that ended at the last activation
// at or before now, unless it is queued or posted already: it is what each
// activation runs, and what the start runs to catch up one missed while
// the bot was down (which then covers every shift missed, see Enqueue). An activation before this bot first ran the schedule
// is not posted (a fresh install posts no history). It reports whether it
// queued a handover.
func (s *Scheduler) Fire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, fireTimeout)
	defer cancel()
	now := s.h.clock().Now()
	since, err := digest.FirstRun(ctx, s.h.cfg.Store, sinceKey, now, true)
	if err != nil {
		return false, fmt.Errorf("reading when the handover schedule started: %w", err)
	}
	t, ok := s.schedule.Prev(now)
	if !ok || t.Before(since) {
		return false, nil
	}
	shift := s.h.cfg.Shifts.Ending(t)
	queued, err := Enqueue(ctx, s.h.cfg.Store, shift, s.channel, now)
	if queued {
		msg := "handover queued"
		if now.Sub(t) > time.Minute {
			msg = "missed handover queued"
		}
		s.h.log.Info(msg, zap.Time("shift_end", shift.To))
	}
	return queued, err
}
