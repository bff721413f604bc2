package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Rate is a sustained rate with a burst: PerMinute calls a minute, of
// which up to Burst may go back to back.
type Rate struct {
	PerMinute int
	Burst     int
}

func (r Rate) interval() time.Duration { return time.Minute / time.Duration(max(r.PerMinute, 1)) }

// Slack's published tiers (PROTOCOLS §3.1): limits apply per method per
// workspace. The bursts are our choice: enough for one incident's set-up,
// small enough not to trip Slack's own limiter.
var (
	Tier1 = Rate{PerMinute: 1, Burst: 1}
	Tier2 = Rate{PerMinute: 20, Burst: 3}
	Tier3 = Rate{PerMinute: 50, Burst: 5}
	Tier4 = Rate{PerMinute: 100, Burst: 10}
	// PostMessageRate is chat.postMessage's workspace-wide pace ("several
	// hundred a minute"); ChannelRate paces posts and updates in one channel
	// ("1 message per second, short bursts allowed").
	PostMessageRate = Rate{PerMinute: 300, Burst: 20}
	ChannelRate     = Rate{PerMinute: 60, Burst: 3}
)

// MethodRates is the rate of every Web API method the client calls.
var MethodRates = map[string]Rate{
	"auth.test":                    Tier4,
	"bookmarks.add":                Tier2,
	"chat.getPermalink":            Tier4, // "hundreds of requests per minute"
	"chat.postEphemeral":           Tier4,
	"chat.postMessage":             PostMessageRate,
	"chat.update":                  Tier3,
	"conversations.create":         Tier2,
	"conversations.history":        Tier3,
	"conversations.info":           Tier3,
	"conversations.invite":         Tier3,
	"conversations.join":           Tier3,
	"conversations.list":           Tier2,
	"conversations.replies":        Tier3,
	"conversations.setTopic":       Tier2,
	"files.completeUploadExternal": Tier4,
	"files.getUploadURLExternal":   Tier4,
	"files.upload":                 Tier4, // the upload step itself
	"usergroups.users.list":        Tier2,
	"users.lookupByEmail":          Tier3,
	"users.info":                   Tier4, // names in reports (Directory)
	"views.open":                   Tier4,
	"views.publish":                Tier4, // the Home tab
	"apps.connections.open":        Tier1,
}

// channelPaced are the methods paced per channel as well.
var channelPaced = map[string]bool{"chat.postMessage": true, "chat.update": true}

// ChannelRateKey is the key of ClientConfig.Rates that overrides
// ChannelRate. Tests that run Slack's clock faster scale every rate, and the
// per-channel pace must scale with the tiers or it alone decides how long
// the test takes.
const ChannelRateKey = "(per channel)"

// errLocalRateLimit is returned (as retryable) when a call would have to
// wait longer than the limiter's maximum.
var errLocalRateLimit = errors.New("slack rate limit: waiting for capacity")

// gcra is a generic cell rate limiter: tat is the theoretical arrival time
// of the next call.
type gcra struct {
	rate Rate
	tat  time.Time
}

// delay is how long a call at now must wait. A background call
// (incident.WithBackground) may not take the last call of the burst: it
// stays free for a call a person is waiting on, which therefore goes at
// once even while background calls queue (a page in an alert storm). A
// method without a burst keeps no reserve.
func (g *gcra) delay(now time.Time, background bool) time.Duration {
	tat := g.tat
	if tat.Before(now) {
		tat = now
	}
	burst := max(g.rate.Burst, 1)
	if background && burst > 1 {
		burst--
	}
	d := tat.Sub(now) - time.Duration(burst-1)*g.rate.interval()
	return max(d, 0)
}

// take books a call that starts at t.
func (g *gcra) take(t time.Time) {
	if g.tat.Before(t) {
		g.tat = t
	}
	g.tat = g.tat.Add(g.rate.interval())
}

// limiter paces calls per method and per channel and honours Slack's
// Retry-After for a method until it has passed. A call waits at most
// maxWait; a longer wait is returned as a retryable error so the job queue
// retries later instead of a worker sleeping.
type limiter struct {
	clock   incident.Clock
	maxWait time.Duration
	rates   map[string]Rate
	sleep   func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	methods  map[string]*gcra
	channels map[string]*gcra
	blocked  map[string]time.Time
}

func newLimiter(clock incident.Clock, maxWait time.Duration, rates map[string]Rate, sleep func(context.Context, time.Duration) error) *limiter {
	if sleep == nil {
		sleep = sleepCtx
	}
	return &limiter{clock: clock, maxWait: maxWait, rates: rates, sleep: sleep,
		methods: map[string]*gcra{}, channels: map[string]*gcra{}, blocked: map[string]time.Time{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait blocks until a call to method (in channel, for paced methods) may
// go, or returns a retryable error if that is more than maxWait away.
func (l *limiter) wait(ctx context.Context, method, channel string) error {
	l.mu.Lock()
	now := l.clock.Now()
	var d time.Duration
	if until, ok := l.blocked[method]; ok {
		if until.After(now) {
			d = until.Sub(now)
		} else {
			delete(l.blocked, method)
		}
	}
	bg := incident.Background(ctx)
	m := l.bucket(l.methods, method, l.rate(method))
	d = max(d, m.delay(now, bg))
	var ch *gcra
	if channel != "" && channelPaced[method] {
		ch = l.bucket(l.channels, channel, l.channelRate())
		d = max(d, ch.delay(now, bg))
	}
	limit := l.maxWait
	if budget, ok := incident.WaitBudget(ctx); ok && budget < limit {
		limit = budget // a queued job defers rather than hold a worker
	}
	if d > limit {
		l.mu.Unlock()
		return incident.Deferred(errLocalRateLimit, d)
	}
	start := now.Add(d)
	m.take(start)
	if ch != nil {
		ch.take(start)
	}
	l.pruneChannels(now)
	l.mu.Unlock()
	return l.sleep(ctx, d)
}

func (l *limiter) rate(method string) Rate {
	if r, ok := l.rates[method]; ok {
		return r
	}
	return Tier3
}

func (l *limiter) channelRate() Rate {
	if r, ok := l.rates[ChannelRateKey]; ok {
		return r
	}
	return ChannelRate
}

func (l *limiter) bucket(m map[string]*gcra, key string, r Rate) *gcra {
	g, ok := m[key]
	if !ok {
		g = &gcra{rate: r}
		m[key] = g
	}
	return g
}

// pruneChannels forgets idle channels so the map stays small.
func (l *limiter) pruneChannels(now time.Time) {
	if len(l.channels) < 1024 {
		return
	}
	for k, g := range l.channels {
		if g.tat.Before(now) {
			delete(l.channels, k)
		}
	}
}

// block stops calls to method until now+d (Slack answered 429).
func (l *limiter) block(method string, d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.clock.Now().Add(d)
	if until.After(l.blocked[method]) {
		l.blocked[method] = until
	}
}
