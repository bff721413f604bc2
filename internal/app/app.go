// Package app is the composition root: it builds the store, the use cases,
// the adapters and the servers from the configuration, and owns their start
// and ordered stop. Nothing else imports every package.
//
// Each integration wires itself in its own file (slack.go, pagerduty.go,
// runbooks.go, postmortem.go, digest.go) through the steps Open runs in
// order: outbound clients first, then the command dispatcher that uses them,
// then the inbound handlers that use the dispatcher.
package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/handover"
	"github.com/incidentbot/incident-bot/internal/httpserver"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/postmortem"
	"github.com/incidentbot/incident-bot/internal/queue"
	"github.com/incidentbot/incident-bot/internal/runbookflow"
	"github.com/incidentbot/incident-bot/internal/shell"
	"github.com/incidentbot/incident-bot/internal/slack"
)

// Options adjust how the app is built; the zero value is production.
type Options struct {
	Clock incident.Clock // default: the system clock
	// Chat replaces the chat platform (the local shell prints instead).
	Chat incident.Chat
	// Workers is the number of job workers (default 8: jobs that wait for
	// Slack are deferred rather than hold a worker, and concurrent jobs
	// share commits).
	Workers int
	// MinBackoff and MaxBackoff bound job retry delays (defaults 1s, 5m);
	// tests shorten them.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval bounds how long the job runner sleeps (default 1s).
	PollInterval time.Duration
	// LeaderTTL is the etcd mode's leader session lease (default 10s): a
	// dead leader is replaced within it. Tests shorten it.
	LeaderTTL time.Duration
	// SlackRates overrides the Slack client's per-method rate limits
	// (tests that run Slack's minute faster against a fake).
	SlackRates map[string]slack.Rate
}

// App is the running bot's parts.
type App struct {
	cfg    config.Config
	opts   Options
	log    *zap.Logger
	clock  incident.Clock
	store  botStore
	svc    *incident.Service
	runner *queue.Runner
	chat   incident.Chat

	// registry holds the Prometheus metrics served on GET /metrics; each
	// integration registers its own collectors on it.
	registry *prometheus.Registry

	// Filled by the wiring steps.
	dispCfg  command.Config
	disp     *command.Dispatcher
	runbooks *runbookflow.Flow // nil: no runbooks
	handlers httpserver.Handlers
	admin    map[string]http.Handler
	pm       *postmortem.Service // previews for the admin API
	dir      *slack.Directory    // names in reports; see directory
	// handovers renders and posts the on-call handover.
	handovers *handover.Handovers
	// ingress runs while Serve takes requests (Socket Mode); schedulers run
	// until ingress has stopped (the digest cron). Both stop before the job
	// runner drains. closers run last, before the store closes.
	ingress    []func(ctx context.Context) error
	schedulers []func(ctx context.Context) error
	// leaderWork is background work that must run on one replica only
	// (pruning, the digest schedule); with the job runner it runs on the
	// elected leader in the etcd mode (see lead), always with bbolt.
	leaderWork []func(ctx context.Context) error
	closers    []func(ctx context.Context) error

	// fence is the etcd mode's current leader term; leading is whether
	// this replica leads now.
	fence   atomic.Pointer[etcdstore.Fence]
	leading atomic.Bool
	// queueCtx is the current term's context for the job queue's store
	// operations: it ends when leadership is lost (see leaderTerm).
	queueCtx atomic.Pointer[context.Context]
}

// Open opens the store and builds the use cases and adapters.
func Open(cfg config.Config, log *zap.Logger, opts Options) (*App, error) {
	if opts.Clock == nil {
		opts.Clock = incident.SystemClock
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if cfg.Location == nil {
		return nil, fmt.Errorf("configuration was not validated (no location)")
	}
	store, err := openStore(cfg, log, false, 0)
	if err != nil {
		return nil, err
	}
	if _, replicated := store.(*etcdstore.Store); replicated && opts.PollInterval <= 0 {
		// Wake-ups come from a watch on the queue (see lead); the poll is
		// only a safety net.
		opts.PollInterval = 30 * time.Second
	}
	a := &App{cfg: cfg, opts: opts, log: log, clock: opts.Clock, store: store, chat: opts.Chat}
	a.svc = incident.NewService(incident.ServiceConfig{Store: store, Clock: opts.Clock})
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newStoreCollector(a))
	a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "incidentbot_leader",
		Help: "1 if this replica runs the job queue, timers, digest and pruning (always, with bbolt), else 0.",
	}, func() float64 {
		if a.Leading() {
			return 1
		}
		return 0
	}))
	a.handlers.Metrics = promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})
	a.runner = queue.New(queue.Config{
		Store: a.queueStore(), Clock: opts.Clock, Logger: log, Workers: opts.Workers,
		MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff, PollInterval: opts.PollInterval,
		Observe: newJobMetrics(a.registry).observe,
	})
	store.OnEnqueue(a.runner.Notify)
	a.dispCfg = command.Config{
		Service:  a.svc,
		Location: cfg.Location,
		Options:  command.Options{PlainMentions: a.isShell()},
		Logger:   log,
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"slack client", a.initSlackClient},
		{"chat sync", a.initChatSync},
		{"pagerduty", a.initPagerDuty},
		{"runbooks", a.initRunbooks},
		{"postmortems", a.initPostmortems},
		{"digest", a.initDigest},
		{"handover", a.initHandover},
		{"commands", a.initDispatcher},
		{"slack handlers", a.mountSlack},
		{"pagerduty webhooks", a.mountPagerDuty},
		{"alert sources", a.initAlerts},
		{"admin api", a.mountAdmin},
	}
	a.leaderWork = append(a.leaderWork, a.prune)
	for _, s := range steps {
		if err := s.fn(); err != nil {
			for _, c := range a.closers { // stop what the earlier steps started
				_ = c(context.Background())
			}
			_ = store.Close()
			return nil, fmt.Errorf("setting up %s: %w", s.name, err)
		}
	}
	return a, nil
}

func (a *App) isShell() bool {
	_, ok := a.opts.Chat.(*shell.Chat)
	return ok
}

func (a *App) initChatSync() error {
	if a.chat == nil {
		a.log.Warn("no chat platform configured (set SLACK_BOT_TOKEN); channel work waits in the queue")
		return nil
	}
	// The shell's transcript must read in a fixed order; its calls take no
	// time, so running its steps side by side would save nothing.
	sync := &incident.ChatSync{Store: a.store, Chat: a.chat, Clock: a.clock, AnnounceChannel: a.cfg.AnnounceChannel, Serial: a.isShell()}
	a.runner.Handle(incident.JobChatSync, sync.Handle)
	return nil
}

func (a *App) initDispatcher() error {
	a.disp = command.NewDispatcher(a.dispCfg)
	return nil
}

// Close closes the store. Call it after Serve or Shell returned.
func (a *App) Close() error { return a.store.Close() }

// Service returns the incident use cases.
func (a *App) Service() *incident.Service { return a.svc }

// Dispatcher returns the command dispatcher.
func (a *App) Dispatcher() *command.Dispatcher { return a.disp }

// Serve runs the bot until ctx ends: the HTTP server on BOT_ADDR, the admin
// API on its Unix socket, the integrations' background loops and the job
// runner. Shutdown is ordered: stop taking requests, stop the schedulers,
// let the job runner finish running jobs, run the closers; the caller then
// closes the store. ready, if not nil, is called with the bound HTTP address
// once the bot is serving.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	// With BOT_METRICS_ADDR the probes and metrics get a listener of their
	// own, and BOT_ADDR serves only what Slack and PagerDuty call.
	servers, err := a.httpServers()
	if err != nil {
		return err
	}
	srv := servers[0]
	closeAll := func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	adminLn, err := admin.Listen(a.cfg.AdminSocket)
	if err != nil {
		closeAll()
		return err
	}
	adminSrv, err := httpserver.New(httpserver.Config{
		Addr:     a.cfg.AdminSocket,
		Listener: adminLn,
		Logger:   a.log.Named("admin"),
		Extra:    a.admin,
	})
	if err != nil {
		closeAll()
		_ = adminLn.Close()
		return err
	}
	fields := []zap.Field{zap.String("addr", srv.Addr().String()), zap.String("admin_socket", a.cfg.AdminSocket), zap.String("db", a.cfg.DB)}
	if len(servers) > 1 {
		fields = append(fields, zap.String("metrics_addr", servers[1].Addr().String()))
	}
	a.log.Info("serving", fields...)

	failed := make(chan error, 1)
	fail := func(err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	ingressCtx, stopIngress := context.WithCancel(ctx)
	defer stopIngress()
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	leaderCtx, stopLeader := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLeader()

	var ingress, scheds sync.WaitGroup
	for _, s := range servers {
		ingress.Go(func() { fail(s.Serve(ingressCtx)) })
	}
	ingress.Go(func() { fail(adminSrv.Serve(ingressCtx)) })
	for _, run := range a.ingress {
		ingress.Go(func() { fail(run(ingressCtx)) })
	}
	for _, run := range a.schedulers {
		scheds.Go(func() { fail(run(schedCtx)) })
	}
	leaderDone := make(chan error, 1)
	go func() { leaderDone <- a.lead(leaderCtx, fail) }()
	if ready != nil {
		ready(srv.Addr().String())
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-failed:
		a.log.Error("a component failed; shutting down", zap.Error(first))
	}
	a.log.Info("shutting down")
	stopIngress()
	ingress.Wait()
	stopSched()
	scheds.Wait()
	stopLeader()
	if err := <-leaderDone; err != nil && first == nil {
		first = err
	}
	for _, c := range a.closers {
		if err := c(context.WithoutCancel(ctx)); err != nil {
			a.log.Error("closing", zap.Error(err))
		}
	}
	a.log.Info("stopped")
	return first
}

// ready is /readyz: the store is open and can commit (a full disk makes
// every webhook and command fail, so the bot is not ready; it is again by
// itself once a write commits).
// httpServers binds the HTTP listeners: BOT_ADDR with every route, or,
// with BOT_METRICS_ADDR, BOT_ADDR with the inbound routes and
// BOT_METRICS_ADDR with the probes and metrics (in that order).
func (a *App) httpServers() ([]*httpserver.Server, error) {
	cfg := httpserver.Config{Addr: a.cfg.Addr, Logger: a.log, Ready: a.ready, Handlers: a.handlers}
	if a.cfg.MetricsAddr == "" {
		srv, err := httpserver.New(cfg)
		if err != nil {
			return nil, err
		}
		return []*httpserver.Server{srv}, nil
	}
	cfg.Routes = httpserver.InboundRoutes
	srv, err := httpserver.New(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Addr, cfg.Routes, cfg.Logger = a.cfg.MetricsAddr, httpserver.OpsRoutes, a.log.Named("metrics")
	ops, err := httpserver.New(cfg)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("BOT_METRICS_ADDR: %w", err)
	}
	return []*httpserver.Server{srv, ops}, nil
}

func (a *App) ready(ctx context.Context) error {
	if err := a.store.View(ctx, func(tx incident.Tx) error {
		_, err := tx.PendingJobs()
		return err
	}); err != nil {
		return err
	}
	return a.store.Writable(ctx)
}

// ShellOptions configure Shell.
type ShellOptions struct {
	In   io.Reader
	Out  io.Writer
	User string
	Echo bool
}

// Shell runs the local console on the app. The app must have been opened
// with a shell.Chat writing to the same output.
func (a *App) Shell(ctx context.Context, opts ShellOptions) error {
	c := shell.New(shell.Config{
		In:         opts.In,
		Out:        opts.Out,
		Dispatcher: a.disp,
		Service:    a.svc,
		RunJobs: func(ctx context.Context) error {
			if a.runbooks != nil {
				// A run's result is printed before the next prompt.
				wctx, cancel := context.WithTimeout(ctx, 16*time.Minute)
				a.runbooks.WaitIdle(wctx)
				cancel()
			}
			_, err := a.runner.RunDue(ctx)
			return err
		},
		Confirm: a.shellRunbookConfirm,
		Actions: a.shellRunbookAction,
		User:    opts.User,
		Echo:    opts.Echo,
	})
	err := c.Run(ctx)
	for _, cl := range a.closers {
		if cerr := cl(context.WithoutCancel(ctx)); cerr != nil {
			a.log.Error("closing", zap.Error(cerr))
		}
	}
	return err
}
