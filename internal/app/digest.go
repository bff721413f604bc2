package app

import (
	"context"
	"fmt"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// initDigest wires the weekly digest: the job that posts it (when there is
// a chat platform), the cron schedule that queues it once a week (when
// BOT_DIGEST_SCHEDULE is not "off" and there is a digest channel). The
// admin API serves `bot digest` (see mountAdmin).
func (a *App) initDigest() error {
	dcfg := a.cfg.Digest
	log := a.log.Named("digest")
	if a.chat == nil {
		log.Warn("no chat platform; the weekly digest is not posted")
		return nil
	}
	poster := digest.NewPoster(digest.PosterConfig{
		Store: a.store, Clock: a.clock, Chat: a.chat, Location: a.cfg.Location, TemplatesDir: a.cfg.TemplatesDir, Logger: a.log,
		Chart:     true, // the PNG of the last 12 weeks follows each digest
		Directory: a.directory(),
	})
	a.runner.Handle(digest.JobPost, poster.Handle)
	if !dcfg.Enabled() {
		log.Info("weekly digest is off (BOT_DIGEST_SCHEDULE is off, or no BOT_DIGEST_CHANNEL or BOT_ANNOUNCE_CHANNEL)")
		return nil
	}
	sched, err := digest.ParseSchedule(dcfg.Schedule, a.cfg.Location)
	if err != nil {
		return fmt.Errorf("BOT_DIGEST_SCHEDULE: %w", err)
	}
	s := digest.NewScheduler(digest.SchedulerConfig{Schedule: sched, Store: a.store, Clock: a.clock, Channel: dcfg.Channel, Logger: a.log})
	a.leaderWork = append(a.leaderWork, s.Run)
	return nil
}

// postDigest queues the digest of a period for posting (POST
// /admin/digest, used by `bot digest --post`).
func (a *App) postDigest(ctx context.Context, req admin.DigestRequest) (admin.DigestReply, error) {
	dcfg := a.cfg.Digest
	now := a.clock.Now()
	p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, a.cfg.Location)
	if err != nil {
		return admin.DigestReply{}, err
	}
	switch {
	case a.chat == nil:
		return admin.DigestReply{}, incident.Errorf(incident.ECONFLICT, "this bot has no chat platform to post to (set SLACK_BOT_TOKEN)")
	case dcfg.Channel == "":
		return admin.DigestReply{}, incident.Errorf(incident.ECONFLICT, "there is no digest channel: set BOT_DIGEST_CHANNEL (or BOT_ANNOUNCE_CHANNEL)")
	}
	queued, err := digest.EnqueueRequest(ctx, a.store, p, dcfg.Channel, now)
	if err != nil {
		return admin.DigestReply{}, err
	}
	reply := admin.DigestReply{Period: p.Label(), Queued: queued, Channel: dcfg.Channel,
		Message: fmt.Sprintf("The digest of %s is queued for posting to %s.", p.Label(), dcfg.Channel)}
	if !queued {
		reply.Message = fmt.Sprintf("The digest of %s is already queued for posting; it is posted once.", p.Label())
	}
	return reply, nil
}
