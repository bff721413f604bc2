package runbook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Clock tells the time. The engine uses it for every timestamp, expiry,
// cache age, rate window and cooldown. Process timeouts and the kill grace
// use real time: they bound real processes.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Notifier receives asynchronous outcomes. The engine calls it from its own
// goroutines with a bounded context; implementations should hand the work
// to the chat adapter and return promptly.
type Notifier interface {
	// RunFinished delivers the outcome of a run or dry run.
	RunFinished(ctx context.Context, r Result)
	// RequestClosed reports a request that ended without running (expired,
	// denied, canceled, aborted, or dropped at shutdown), so the adapter
	// can update cards whose buttons are now stale.
	RequestClosed(ctx context.Context, c Closed)
}

// Closed describes a request that ended without running.
type Closed struct {
	RunID      string
	RunbookID  string
	State      State
	Reason     string // Slack-safe
	Requester  Caller
	ChannelID  string
	IncidentID string
}

// Config configures an Engine. Registry, TeamID and Notifier are required.
type Config struct {
	Registry *Registry
	// TeamID and EnterpriseID are this workspace's IDs. A caller whose IDs
	// differ (Slack Connect users) is denied.
	TeamID       string
	EnterpriseID string
	// Incidents supplies incident-channel binding and roles. nil: no
	// channel is an incident channel and incident_roles never match.
	Incidents Incidents
	// GroupMembers backs user_groups principals. nil: groups never match
	// (a runbook relying on them is denied).
	GroupMembers GroupMembersFunc
	// Secrets resolves secrets refs. nil: runbooks with secrets fail before
	// exec.
	Secrets  SecretResolver
	Notifier Notifier
	// Audit receives every audit event. nil: events are only logged.
	Audit  AuditFunc
	Logger *zap.Logger
	Clock  Clock
	// Caps are the bot-wide limits; zero means the Registry's LoadOptions.Caps
	// (then DefaultCaps).
	Caps Caps
	// DisableAll is the bot-wide kill switch: every request is refused.
	DisableAll bool
	// LocalUsers accepts plain user names ("alice") as caller ids instead of
	// Slack user ids, and counts every such user as a member of every user
	// group (there is no Slack to ask). Only for the local shell, whose
	// single operator owns the bot: incident roles still narrow, approvals
	// still need a different name.
	LocalUsers bool
	// KillGrace is the pause between SIGTERM and SIGKILL. Default 5s.
	KillGrace time.Duration
	// DrainTimeout bounds reading output after a process group is dead,
	// for grandchildren that escaped the group. Default 2s.
	DrainTimeout time.Duration
	// LookupTimeout bounds each incident, role and user-group lookup.
	// Default 5s.
	LookupTimeout time.Duration
	// GroupCacheTTL is how long user-group members are cached; at most
	// (and by default) 60s.
	GroupCacheTTL time.Duration
	// WorkDir is where per-run temporary directories are made. Default
	// os.TempDir().
	WorkDir string
	// SweepInterval is how often a background goroutine expires stale
	// requests. Default 15s; negative disables it (call Sweep yourself).
	SweepInterval time.Duration
	// Retention is how long ended requests are remembered so replayed
	// buttons get a clear "already handled". Default 1h.
	Retention time.Duration
	// NotifyTimeout bounds each Notifier call. Default 30s.
	NotifyTimeout time.Duration
	// Resolve looks up the hosts of url and host parameters. Default the
	// system resolver (net.DefaultResolver).
	Resolve ResolveFunc
	// Requests keeps the requests waiting for a confirmation or an
	// approval, so that they survive a restart and a click may reach any
	// process sharing it. nil: they live in this process's memory, and
	// Close cancels them.
	Requests RequestStore
}

func (c *Config) setDefaults() error {
	switch {
	case c.Registry == nil:
		return errors.New("runbook engine: Registry is required")
	case c.TeamID == "":
		return errors.New("runbook engine: TeamID is required")
	case c.Notifier == nil:
		return errors.New("runbook engine: Notifier is required")
	}
	if c.Caps == (Caps{}) {
		c.Caps = c.Registry.opts.Caps // one set of caps for lint and run time
	}
	c.Caps = c.Caps.withDefaults()
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Audit == nil {
		c.Audit = func(Event) {}
	}
	if c.Resolve == nil {
		c.Resolve = defaultResolve
	}
	defaults := []struct {
		d   *time.Duration
		def time.Duration
	}{
		{&c.KillGrace, 5 * time.Second},
		{&c.DrainTimeout, 2 * time.Second},
		{&c.LookupTimeout, 5 * time.Second},
		{&c.SweepInterval, 15 * time.Second},
		{&c.Retention, time.Hour},
		{&c.NotifyTimeout, 30 * time.Second},
	}
	for _, d := range defaults {
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	if c.GroupCacheTTL <= 0 || c.GroupCacheTTL > time.Minute {
		c.GroupCacheTTL = time.Minute
	}
	if c.WorkDir == "" {
		c.WorkDir = os.TempDir()
	}
	return nil
}

// Engine validates, authorizes, confirms, approves and executes runbook
// requests. Requests waiting for someone live in Config.Requests, where
// every state change is a compare-and-set, so a request is confirmed,
// approved, denied or expired once however many clicks and processes race;
// runs and their processes belong to the process that started them. All methods are safe
// for concurrent use. Runs execute in goroutines owned by the Engine; Close
// stops and joins them.
type Engine struct {
	cfg     Config
	log     *zap.Logger
	clock   Clock
	auth    *authorizer
	hashKey []byte // keys the HMAC of secret values inside request hashes

	ctx    context.Context // parent of every run; canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests RequestStore

	mu     sync.Mutex
	closed bool
	reqs   map[string]*request // this process's copies: secret values, running processes
	slots  slots
	rate   rateLimiter // requests that run or wait for confirmation or approval
	refuse rateLimiter // refused requests
}

// localUserShape is what LocalUsers accepts: a plain user name.
var localUserShape = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

func callerIDShape(local bool) *regexp.Regexp {
	if local {
		return localUserShape
	}
	return userIDShape
}

// NewEngine validates cfg and starts the background sweeper.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("runbook engine: generating hash key: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger.Named("runbook"),
		clock:    cfg.Clock,
		hashKey:  key,
		ctx:      ctx,
		cancel:   cancel,
		reqs:     map[string]*request{},
		requests: cfg.Requests,
		slots:    slots{maxGlobal: cfg.Caps.MaxConcurrentRuns, byKey: map[string]int{}, coolUntil: map[string]time.Time{}},
		rate:     rateLimiter{limit: cfg.Caps.RequestsPerUserPerMinute, window: time.Minute, hits: map[string][]time.Time{}},
		refuse:   rateLimiter{limit: cfg.Caps.RefusalsPerUserPerMinute, window: time.Minute, hits: map[string][]time.Time{}},
		auth: &authorizer{
			teamID: cfg.TeamID, enterpriseID: cfg.EnterpriseID, userID: callerIDShape(cfg.LocalUsers), local: cfg.LocalUsers,
			incidents: cfg.Incidents, members: cfg.GroupMembers,
			clock: cfg.Clock, cacheTTL: cfg.GroupCacheTTL, timeout: cfg.LookupTimeout,
			cache: map[string]groupEntry{},
		},
	}
	if e.requests == nil {
		e.requests = &memoryRequests{reqs: map[string]StoredRequest{}}
	}
	if cfg.SweepInterval > 0 {
		e.wg.Add(1)
		go e.sweepLoop(cfg.SweepInterval)
	}
	return e, nil
}

func (e *Engine) sweepLoop(every time.Duration) {
	defer e.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.Sweep()
		}
	}
}

// Sweep expires pending requests past their deadline (auditing and
// notifying each, once across every process sharing the request store)
// and forgets old ended requests and rate-limit entries. The background
// sweeper calls it; tests call it after moving their clock.
func (e *Engine) Sweep() {
	now := e.clock.Now()
	ctx, cancel := e.notifyContext()
	defer cancel()
	e.sweepStored(ctx, now)
	e.mu.Lock()
	for id, req := range e.reqs {
		switch {
		case req.ended() && now.Sub(req.endedAt) > e.cfg.Retention,
			// copies of requests another process handled
			req.persist && req.state != StateRunning && !req.leftAt.IsZero() && now.Sub(req.leftAt) > e.cfg.Retention,
			req.persist && req.waiting() && now.Sub(req.deadline) > e.cfg.Retention:
			delete(e.reqs, id)
		}
	}
	e.rate.sweep(now)
	e.refuse.sweep(now)
	e.slots.sweep(now)
	e.mu.Unlock()
}

// Close refuses new requests, cancels pending ones, stops running
// processes (SIGTERM, then SIGKILL after KillGrace) and waits for every
// engine goroutine, or until ctx ends.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var dropped []*request
	if e.cfg.Requests == nil { // in memory only: they end with the process
		for _, req := range e.reqs {
			if req.waiting() {
				dropped = append(dropped, req)
			}
		}
	}
	e.mu.Unlock()
	for _, req := range dropped {
		nctx, cancel := e.notifyContext()
		ok, _ := e.transition(nctx, req, func(r *request, now time.Time) { r.end(StateCanceled, now) })
		cancel()
		if ok {
			e.closeNotice(req, EventCanceled, StateCanceled, "The bot is shutting down; the request was canceled. Nothing was run.")
		}
	}
	e.cancel()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for runbook runs to stop: %w", ctx.Err())
	}
}

// emit sends an audit event and logs it. Never call it with e.mu held.
func (e *Engine) emit(ev Event) {
	ev.Time = e.clock.Now()
	e.log.Info("runbook audit",
		zap.String("event", string(ev.Kind)), zap.String("run_id", ev.RunID),
		zap.String("runbook", ev.RunbookID), zap.String("user", ev.Actor.UserID),
		zap.String("status", string(ev.Status)), zap.String("reason", ev.Reason))
	e.cfg.Audit(ev)
}

func (e *Engine) notifyContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.cfg.NotifyTimeout)
}

// closeNotice audits and notifies a request that ended without running.
func (e *Engine) closeNotice(req *request, kind EventKind, state State, reason string) {
	ev := e.event(req, kind)
	ev.Reason = reason
	e.emit(ev)
	ctx, cancel := e.notifyContext()
	defer cancel()
	e.cfg.Notifier.RequestClosed(ctx, Closed{
		RunID: req.id, RunbookID: req.rb.ID, State: state, Reason: reason,
		Requester: req.caller, ChannelID: req.channelID, IncidentID: req.incident.ID,
	})
}

// Runbooks lists the enabled runbooks inv.Caller may request from
// inv.ChannelID ("/incident runbooks"). Unavailable ones are included;
// check Runbook.Available.
func (e *Engine) Runbooks(ctx context.Context, inv Invocation) []*Runbook {
	var out []*Runbook
	for _, rb := range e.cfg.Registry.List() {
		if !rb.Enabled {
			continue
		}
		if _, d := e.auth.requester(ctx, rb, inv.Caller, inv.ChannelID, inv.IsDM); d == nil {
			out = append(out, rb)
		}
	}
	return out
}
