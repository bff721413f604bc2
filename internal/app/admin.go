package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/handover"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/postmortem"
)

// cliLockWait is how long a CLI command waits for the database lock before
// asking the running bot instead.
const cliLockWait = 200 * time.Millisecond

// mountAdmin builds the admin API's routes (served on BOT_ADMIN_SOCKET by
// Serve) over the bot's own store.
func (a *App) mountAdmin() error {
	a.admin = admin.Routes(admin.ServerConfig{
		Backend:    &storeBackend{store: a.store, cfg: a.cfg, now: a.clock.Now, pm: a.pm, handovers: a.handovers},
		PostDigest: a.postDigest,
		Logger:     a.log,
	})
	return nil
}

// AdminCLI returns what the command line's read commands run on: the
// database file read-only when it is free, otherwise the running bot's
// admin socket.
func AdminCLI(cfg config.Config) *admin.CLI {
	return &admin.CLI{
		Socket: cfg.AdminSocket,
		Open: func() (admin.Backend, io.Closer, error) {
			store, err := openStore(cfg, zap.NewNop(), true, cliLockWait)
			if errors.Is(err, boltstore.ErrLocked) {
				return nil, nil, fmt.Errorf("%w: %w", admin.ErrHeld, err)
			} else if err != nil {
				return nil, nil, err
			}
			svc := incident.NewService(incident.ServiceConfig{Store: store})
			pm := postmortem.New(postmortemConfig(cfg, svc, nil, zap.NewNop()))
			return &storeBackend{store: store, cfg: cfg, now: time.Now, pm: pm}, store, nil
		},
		CheckFile: func(path string) (admin.Stats, error) {
			st, err := boltstore.CheckFile(path, time.Second)
			return admin.Stats(st), err
		},
		Resolve: func(req admin.DigestRequest, now time.Time) (admin.DigestRequest, error) {
			p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, cfg.Location)
			if err != nil {
				return req, err
			}
			return periodRequest(p), nil
		},
	}
}

// periodRequest names a resolved period for the admin API.
func periodRequest(p digest.Period) admin.DigestRequest {
	if !p.Week.IsZero() {
		return admin.DigestRequest{Week: p.Week.String()}
	}
	return admin.DigestRequest{From: p.From.Format("2006-01-02"), To: p.To.AddDate(0, 0, -1).Format("2006-01-02")}
}

// storeBackend answers the admin API from a store: the running bot's, or
// the file the CLI opened read-only.
type storeBackend struct {
	store botStore
	cfg   config.Config
	now   func() time.Time
	pm    *postmortem.Service
	// handovers renders `bot handover`; nil: built over store (the CLI).
	handovers *handover.Handovers
}

var _ admin.Backend = (*storeBackend)(nil)

func (b *storeBackend) Incidents(ctx context.Context, f incident.Filter) ([]*incident.Incident, error) {
	var out []*incident.Incident
	err := b.store.View(ctx, func(tx incident.Tx) error {
		var err error
		out, err = tx.Incidents(f)
		return err
	})
	return out, err
}

func (b *storeBackend) Check(context.Context) (admin.Stats, error) {
	if err := b.store.Check(); err != nil {
		return admin.Stats{}, fmt.Errorf("%s is damaged: %w", b.store.Path(), err)
	}
	return storeStats(b.store)
}

func (b *storeBackend) WriteBackup(_ context.Context, w io.Writer) (int64, error) {
	return b.store.WriteBackup(w)
}

func (b *storeBackend) Digest(ctx context.Context, req admin.DigestRequest) (admin.DigestReply, error) {
	now := b.now()
	p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, b.cfg.Location)
	if err != nil {
		return admin.DigestReply{}, err
	}
	r, err := digest.Generate(ctx, b.store, p, digest.Options{TemplatesDir: b.cfg.TemplatesDir, Now: now, Chart: req.Chart})
	if err != nil {
		return admin.DigestReply{}, err
	}
	reply := admin.DigestReply{Period: p.Label(), Text: string(r.Body), Chart: r.Chart}
	if r.Warning != nil {
		reply.Warning = r.Warning.Error()
	}
	return reply, nil
}

func (b *storeBackend) Postmortem(ctx context.Context, n int64) (admin.PostmortemDraft, error) {
	r, err := b.pm.Preview(ctx, n)
	if err != nil {
		return admin.PostmortemDraft{}, err
	}
	d := admin.PostmortemDraft{Incident: incident.FormatID(n), Draft: string(r.Body)}
	if r.Warning != nil {
		d.Warning = r.Warning.Error()
	}
	return d, nil
}
