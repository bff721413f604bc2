// Package httpserver is the bot's HTTP server: every route in one place on
// the standard ServeMux with method patterns, health and readiness probes,
// panic recovery, and a bounded graceful shutdown. The listener is bound
// before serving so that a busy port is an error at start-up.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// Handlers are the routes' handlers. A nil handler leaves its route
// unregistered (404): the feature is not configured.
type Handlers struct {
	SlackCommands     http.Handler // POST /slack/commands
	SlackInteractions http.Handler // POST /slack/interactions
	SlackEvents       http.Handler // POST /slack/events
	PagerDutyWebhook  http.Handler // POST /webhooks/pagerduty
	AlertmanagerHook  http.Handler // POST /webhooks/alertmanager
	GrafanaWebhook    http.Handler // POST /webhooks/grafana
	Metrics           http.Handler // GET /metrics
}

// Routes selects which routes a Server registers.
type Routes int

const (
	// AllRoutes: the inbound routes, the probes and the metrics on one
	// listener (BOT_METRICS_ADDR unset).
	AllRoutes Routes = iota
	// InboundRoutes: only what Slack and PagerDuty call (/slack/*,
	// /webhooks/*), for the listener exposed to them.
	InboundRoutes
	// OpsRoutes: only /healthz, /readyz and /metrics (BOT_METRICS_ADDR),
	// for the kubelet and Prometheus.
	OpsRoutes
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to bind (":8080").
	Addr string
	// Listener, if set, is served instead of binding Addr (the admin API's
	// Unix socket, which its package creates safely). Closing the server
	// closes it.
	Listener net.Listener
	Logger   *zap.Logger
	// Ready reports whether the bot can take traffic (/readyz); nil: ready.
	Ready    func(ctx context.Context) error
	Handlers Handlers
	// Routes selects the routes to serve (default AllRoutes).
	Routes Routes
	// Extra registers further routes (the admin API on the Unix socket).
	Extra map[string]http.Handler
	// ShutdownTimeout bounds the graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
}

// Server is an HTTP server bound to its listener.
type Server struct {
	cfg Config
	log *zap.Logger
	srv *http.Server
	ln  net.Listener
}

// New binds the listener and builds the routes. It fails at once if the
// address is in use.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("http"), ln: ln}
	s.srv = &http.Server{
		Handler:           s.recoverer(s.routes()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	return s, nil
}

// routes registers every route of the bot.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	h := s.cfg.Handlers
	routes := map[string]http.Handler{}
	if s.cfg.Routes != InboundRoutes {
		routes["GET /healthz"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		})
		routes["GET /readyz"] = http.HandlerFunc(s.readyz)
		routes["GET /metrics"] = h.Metrics
	}
	if s.cfg.Routes != OpsRoutes {
		routes["POST /slack/commands"] = h.SlackCommands
		routes["POST /slack/interactions"] = h.SlackInteractions
		routes["POST /slack/events"] = h.SlackEvents
		routes["POST /webhooks/pagerduty"] = h.PagerDutyWebhook
		routes["POST /webhooks/alertmanager"] = h.AlertmanagerHook
		routes["POST /webhooks/grafana"] = h.GrafanaWebhook
	}
	for pattern, handler := range routes {
		if handler != nil {
			mux.Handle(pattern, handler)
		}
	}
	for pattern, handler := range s.cfg.Extra {
		mux.Handle(pattern, handler)
	}
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// recoverer turns a handler panic into a 500 and a log line with the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panicked", zap.String("path", r.URL.Path), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Close releases the listener of a server that was never served.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the bound address (useful with ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx ends, then shuts down gracefully within
// ShutdownTimeout: the listener closes at once, in-flight requests finish.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutting down http server: %w", err)
	}
	return nil
}
