package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/handover"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// initHandover wires the on-call handover: `/incident handover` (posted
// where it is typed), the job that posts scheduled handovers (when there is
// a chat platform) and the cron schedule that queues one at the end of each
// shift (when BOT_HANDOVER_SCHEDULE is set). The admin API serves `bot
// handover` (see mountAdmin).
func (a *App) initHandover() error {
	hcfg := a.cfg.Handover
	log := a.log.Named("handover")
	h, err := newHandovers(a.cfg, a.svc, a.store, a.chat, a.log)
	if err != nil {
		return err
	}
	a.handovers = h
	a.dispCfg.Handovers = h
	if a.chat == nil {
		log.Warn("no chat platform; the on-call handover is not posted")
		return nil
	}
	a.runner.Handle(handover.JobPost, h.Handle)
	s := h.Scheduler(hcfg.Channel)
	if s == nil {
		log.Info("scheduled on-call handover is off (no BOT_HANDOVER_SCHEDULE)")
		return nil
	}
	a.leaderWork = append(a.leaderWork, s.Run)
	return nil
}

// newHandovers builds the handover's use over svc; shifts follow
// BOT_HANDOVER_SCHEDULE when it is set.
func newHandovers(cfg config.Config, svc *incident.Service, store incident.Store, chat incident.Chat, log *zap.Logger) (*handover.Handovers, error) {
	var shifts handover.Shifts
	if cfg.Handover.Enabled() {
		sched, err := digest.ParseSchedule(cfg.Handover.Schedule, cfg.Location)
		if err != nil {
			return nil, fmt.Errorf("BOT_HANDOVER_SCHEDULE: %w", err)
		}
		shifts.Schedule = sched
	}
	return handover.New(handover.Config{Service: svc, Store: store, Shifts: shifts, Location: cfg.Location, Chat: chat, Logger: log}), nil
}

// Handover implements admin.Backend.
func (b *storeBackend) Handover(ctx context.Context) (admin.HandoverReply, error) {
	h := b.handovers
	if h == nil {
		var err error
		svc := incident.NewService(incident.ServiceConfig{Store: b.store, Clock: incident.ClockFunc(b.now)})
		if h, err = newHandovers(b.cfg, svc, b.store, nil, zap.NewNop()); err != nil {
			return admin.HandoverReply{}, err
		}
	}
	text, err := h.Current(ctx)
	return admin.HandoverReply{Text: text}, err
}
