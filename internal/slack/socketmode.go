package slack

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"go.uber.org/zap"
)

// SocketMode receives commands, interactions and events over Slack's
// Socket Mode (a WebSocket the bot opens with its app-level token), so the
// bot needs no public URL. Envelopes go through the same code as HTTP
// requests; each is acknowledged once handled (with the reply as the ack
// payload where Slack accepts one), and a redelivered envelope is
// acknowledged without being handled again.
type SocketMode struct {
	h    *Handler
	log  *zap.Logger
	seen *seenSet
	// MaxConcurrent bounds envelopes handled at once (default 32).
	MaxConcurrent int
	// Backoff bounds the wait between failed connection attempts
	// (defaults 1s to 5m).
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how long without a ping from Slack before the
	// connection counts as dead (default 30s).
	PingInterval time.Duration
}

// SocketMode returns the Socket Mode receiver for this handler. The
// handler's client must have an app-level token.
func (h *Handler) SocketMode() *SocketMode {
	return &SocketMode{h: h, log: h.log.Named("socket"), seen: newSeenSet(10000, 15*time.Minute)}
}

// Run connects and serves until ctx ends, reconnecting with backoff when
// the connection fails (a rejected app token is logged and retried: the
// bot keeps running its queue and timers). It returns nil once everything
// it started has stopped.
func (s *SocketMode) Run(ctx context.Context) error {
	if s.h.client.cfg.AppToken == "" {
		return errors.New("socket mode: no app-level token (SLACK_APP_TOKEN)")
	}
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = time.Second
	}
	if maxB <= 0 {
		maxB = 5 * time.Minute
	}
	opts := []socketmode.Option{socketmode.OptionLog(zap.NewStdLog(s.log))}
	if s.PingInterval > 0 {
		opts = append(opts, socketmode.OptionPingInterval(s.PingInterval))
	}
	smc := socketmode.New(s.h.client.api, opts...)
	limit := s.MaxConcurrent
	if limit <= 0 {
		limit = 32
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() {
		wait := minB
		for {
			err := smc.RunContext(runCtx)
			if runCtx.Err() != nil {
				return
			}
			s.log.Error("socket mode connection failed; retrying", zap.Error(err), zap.Duration("retry_in", wait))
			if sleepCtx(runCtx, wait) != nil {
				return
			}
			wait = min(wait*2, maxB)
		}
	})
	for {
		select {
		case <-ctx.Done():
			stop()
			wg.Wait()
			return nil
		case evt := <-smc.Events:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				defer func() {
					if p := recover(); p != nil {
						s.log.Error("socket mode envelope handler panicked", zap.Any("panic", p))
					}
				}()
				s.handle(runCtx, smc, evt)
			})
		}
	}
}

// handle handles one Socket Mode event.
func (s *SocketMode) handle(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		s.log.Debug("socket mode connecting")
		return
	case socketmode.EventTypeConnected:
		s.log.Info("socket mode connected")
		return
	case socketmode.EventTypeConnectionError:
		s.log.Warn("socket mode connection error", zap.Any("detail", evt.Data))
		return
	case socketmode.EventTypeInvalidAuth:
		s.log.Error("socket mode: Slack rejected SLACK_APP_TOKEN; create an app-level token with connections:write")
		return
	case socketmode.EventTypeErrorBadMessage:
		// An envelope slack-go could not parse (an event type it does not
		// know): acknowledge it so Slack does not redeliver it forever.
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
				_ = s.ack(smc, env.EnvelopeID, nil)
			}
		}
		return
	}
	req := evt.Request
	if req == nil || req.EnvelopeID == "" {
		return
	}
	kind := map[socketmode.EventType]string{
		socketmode.EventTypeEventsAPI:    kindEvent,
		socketmode.EventTypeSlashCommand: kindCommand,
		socketmode.EventTypeInteractive:  kindInteraction,
	}[evt.Type]
	if kind == "" {
		return
	}
	if !s.seen.add(req.EnvelopeID, s.h.cfg.Clock.Now()) {
		s.h.metrics.count(kind, reqDuplicate)
		_ = s.ack(smc, req.EnvelopeID, nil)
		return
	}
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		res := s.h.event(ctx, req.Payload)
		s.h.metrics.count(kindEvent, res.outcome)
		if res.outcome == reqError {
			// Not acknowledged: Slack redelivers it, and it was not stored.
			s.seen.remove(req.EnvelopeID)
			return
		}
		_ = s.ack(smc, req.EnvelopeID, nil)
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slackapi.SlashCommand)
		if !ok || sc.UserID == "" {
			s.h.metrics.count(kindCommand, reqMalformed)
			_ = s.ack(smc, req.EnvelopeID, nil)
			return
		}
		// Over Socket Mode a command has no signature; a redelivered
		// envelope carries the same envelope id.
		key := commandKey(sc, "envelope:"+req.EnvelopeID)
		if key == "" {
			s.h.metrics.count(kindCommand, reqMalformed)
			_ = s.ack(smc, req.EnvelopeID, nil)
			return
		}
		r := s.h.command(sc, key)
		s.h.metrics.count(kindCommand, r.metricOutcome())
		if err := s.ack(smc, req.EnvelopeID, r.ack()); err != nil && r.ack() != nil {
			s.h.goBackground(func(ctx context.Context) {
				if err := s.h.client.Respond(ctx, sc.ResponseURL, Response{Text: r.Text, Blocks: r.Blocks}); err != nil {
					s.log.Warn("cannot deliver command reply", zap.Error(err))
				}
			})
		}
	case socketmode.EventTypeInteractive:
		ic, ok := evt.Data.(slackapi.InteractionCallback)
		if !ok || ic.User.ID == "" {
			s.h.metrics.count(kindInteraction, reqMalformed)
			_ = s.ack(smc, req.EnvelopeID, nil)
			return
		}
		out, outcome := s.h.interaction(ctx, &ic)
		s.h.metrics.count(kindInteraction, outcome)
		if outcome == reqError && out == nil {
			// Not acknowledged: Slack redelivers it, and it was not stored.
			s.seen.remove(req.EnvelopeID)
			return
		}
		_ = s.ack(smc, req.EnvelopeID, out)
	}
}

// ack acknowledges an envelope, with payload if not nil. A payload Slack
// would drop (20 KB or more) is left out and reported as an error.
func (s *SocketMode) ack(smc *socketmode.Client, envelopeID string, payload any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := smc.AckCtx(ctx, envelopeID, payload)
	if err != nil && payload != nil && ctx.Err() == nil {
		// Too large: acknowledge without it.
		if aerr := smc.AckCtx(ctx, envelopeID, nil); aerr != nil {
			s.log.Warn("cannot acknowledge socket mode envelope", zap.String("envelope", envelopeID), zap.Error(aerr))
		}
		return err
	}
	if err != nil {
		s.log.Warn("cannot acknowledge socket mode envelope", zap.String("envelope", envelopeID), zap.Error(err))
	}
	return err
}

// seenSet remembers recent envelope ids, bounded in size and age.
type seenSet struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[string]time.Time
}

func newSeenSet(max int, ttl time.Duration) *seenSet {
	return &seenSet{max: max, ttl: ttl, items: map[string]time.Time{}}
}

// add records id and reports whether it is new.
func (s *seenSet) add(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.items[id]; ok && now.Sub(at) < s.ttl {
		return false
	}
	if len(s.items) >= s.max {
		for k, at := range s.items {
			if now.Sub(at) >= s.ttl || len(s.items) >= s.max {
				delete(s.items, k)
			}
		}
	}
	s.items[id] = now
	return true
}

func (s *seenSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, id)
}
