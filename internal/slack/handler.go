package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// DefaultPinReaction is the reaction that adds a message to the timeline.
const DefaultPinReaction = "pushpin"

// RunbookClick is a click on a runbook card's button. Only RunID comes
// from the button; the rest is who clicked, as Slack's signed payload says.
type RunbookClick struct {
	RunID        string
	Actor        incident.Actor
	TeamID       string
	EnterpriseID string
	ChannelID    string
}

// RunbookActions handles the buttons of runbook cards. Each returns the
// text to show the person who clicked.
type RunbookActions interface {
	Confirm(ctx context.Context, c RunbookClick) (string, error)
	Cancel(ctx context.Context, c RunbookClick) (string, error)
	Approve(ctx context.Context, c RunbookClick) (string, error)
	Deny(ctx context.Context, c RunbookClick) (string, error)
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	Client     *Client
	Dispatcher *command.Dispatcher
	Service    *incident.Service
	// SigningSecret verifies HTTP requests; Socket Mode needs none.
	SigningSecret string
	Clock         incident.Clock // default incident.SystemClock
	Logger        *zap.Logger
	// Registerer receives the inbound metrics; nil: no metrics.
	Registerer prometheus.Registerer
	// PinReaction is the reaction name (without colons) that adds a
	// message to the timeline (default DefaultPinReaction).
	PinReaction string
	// Runbooks handles runbook card buttons; nil answers that runbooks are
	// not configured.
	Runbooks RunbookActions
	// AckTimeout is how long a slash command may run before the bot
	// answers "Working on it…" and replies later through response_url
	// (default 2s, inside Slack's 3 s).
	AckTimeout time.Duration
	// WorkTimeout bounds work that continues after the acknowledgement
	// (default 1m).
	WorkTimeout time.Duration
	// MaxBody caps a request body (default 1 MiB); larger is 413.
	MaxBody int64
	// HomeWindow coalesces Home tab opens: one person's opens within it
	// of the last publish to them publish nothing (default
	// DefaultHomeWindow). See home.go.
	HomeWindow time.Duration
	// Location is the time zone of due dates on the Home tab (default UTC).
	Location *time.Location
}

// Handler takes what Slack sends, over HTTP (Commands, Interactions,
// Events) or Socket Mode (SocketMode), through the same code paths. Work
// that outlives an acknowledgement runs in goroutines the Handler owns;
// Close stops and joins them.
type Handler struct {
	cfg      HandlerConfig
	log      *zap.Logger
	verifier Verifier
	metrics  *inboundMetrics
	client   *Client
	disp     *command.Dispatcher
	svc      *incident.Service
	home     homeGate

	ctx    context.Context // background work; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool

	forms sync.Mutex // one update or resolve form submission at a time (forms.go)
}

// NewHandler returns a handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Client == nil || cfg.Dispatcher == nil || cfg.Service == nil {
		return nil, errors.New("slack handler: client, dispatcher and service are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.PinReaction = strings.Trim(cfg.PinReaction, ": ")
	if cfg.PinReaction == "" {
		cfg.PinReaction = DefaultPinReaction
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 2 * time.Second
	}
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.HomeWindow <= 0 {
		cfg.HomeWindow = DefaultHomeWindow
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Handler{
		cfg:      cfg,
		log:      cfg.Logger.Named("slack"),
		verifier: Verifier{Secret: cfg.SigningSecret, Clock: cfg.Clock},
		metrics:  newInboundMetrics(cfg.Registerer),
		client:   cfg.Client,
		disp:     cfg.Dispatcher,
		svc:      cfg.Service,
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// goBackground runs fn in a goroutine the handler owns, with a context that
// ends after WorkTimeout or when Close gives up waiting. It reports false
// (and runs nothing) once Close has begun.
func (h *Handler) goBackground(fn func(ctx context.Context)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.WorkTimeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("slack background work panicked", zap.Any("panic", p))
			}
		}()
		fn(ctx)
	})
	return true
}

// Close stops taking background work and waits for what is running: until
// ctx ends, then it cancels the work and waits for it to return.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		h.log.Warn("cancelling slack background work at shutdown")
		h.cancel()
		<-done
	}
	h.cancel()
	return nil
}

// Commands is the handler of POST /slack/commands.
func (h *Handler) Commands() http.Handler {
	return h.verified(kindCommand, func(w http.ResponseWriter, r *http.Request, body []byte) {
		sc, err := parseSlashCommand(body)
		if err != nil {
			h.metrics.count(kindCommand, reqMalformed)
			http.Error(w, "malformed slash command", http.StatusBadRequest)
			return
		}
		// Over HTTP the signature is unique per request: it keys a command
		// without a trigger_id, so a replay of it is refused too.
		key := commandKey(sc, "sig:"+r.Header.Get("X-Slack-Signature"))
		if key == "" {
			h.metrics.count(kindCommand, reqMalformed)
			http.Error(w, "malformed slash command", http.StatusBadRequest)
			return
		}
		resp := h.command(sc, key)
		h.metrics.count(kindCommand, resp.metricOutcome())
		writeJSON(w, resp.ack())
	})
}

// Interactions is the handler of POST /slack/interactions.
func (h *Handler) Interactions() http.Handler {
	return h.verified(kindInteraction, func(w http.ResponseWriter, r *http.Request, body []byte) {
		ic, err := parseInteraction(body)
		if err != nil {
			h.metrics.count(kindInteraction, reqMalformed)
			http.Error(w, "malformed interaction payload", http.StatusBadRequest)
			return
		}
		out, outcome := h.interaction(r.Context(), ic)
		h.metrics.count(kindInteraction, outcome)
		if outcome == reqError && out == nil {
			// Nothing was stored: the person sees the click fail instead
			// of an acknowledgement for work that will never run.
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		writeJSON(w, out)
	})
}

// Events is the handler of POST /slack/events.
func (h *Handler) Events() http.Handler {
	return h.verified(kindEvent, func(w http.ResponseWriter, r *http.Request, body []byte) {
		res := h.event(r.Context(), body)
		h.metrics.count(kindEvent, res.outcome)
		switch {
		case res.outcome == reqMalformed:
			http.Error(w, "malformed event", http.StatusBadRequest)
		case res.outcome == reqError:
			// Slack retries: nothing was stored.
			http.Error(w, "try again", http.StatusInternalServerError)
		case res.challenge != "":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, res.challenge)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

// verified reads the body (capped), checks Slack's signature and only then
// calls next. A failed check is 401 with no effect.
func (h *Handler) verified(kind string, next func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
		if err != nil {
			h.metrics.count(kind, reqMalformed)
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if int64(len(body)) > h.cfg.MaxBody {
			h.metrics.count(kind, reqTooLarge)
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := h.verifier.Verify(r.Header, body); err != nil {
			h.metrics.count(kind, reqBadSignature)
			h.log.Warn("rejected unsigned or forged slack request", zap.String("kind", kind), zap.String("reason", err.Error()), zap.String("remote", r.RemoteAddr))
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
			h.log.Info("slack retried a request", zap.String("kind", kind), zap.String("retry", n), zap.String("reason", r.Header.Get("X-Slack-Retry-Reason")))
		}
		next(w, r, body)
	})
}

// fromSlack turns text as Slack sends it (a command's text, a message, a
// form's values) into text as the bot keeps it: Slack's &amp;, &lt; and
// &gt; decoded exactly once, then incident.CleanText. Mentions and links
// stay Slack tokens (<@U…>, <url|label>), which EscapeText renders back
// safely; so "R&amp;D" is stored as "R&D" and posted as "R&amp;D".
func fromSlack(s string) string { return incident.CleanText(decodeEntities(s)) }

// writeJSON writes v as the response body; nil is an empty 200.
func writeJSON(w http.ResponseWriter, v any) {
	if v == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
