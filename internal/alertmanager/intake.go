package alertmanager

import (
	"context"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/webhook"
)

// JobNotification is the kind of the job that applies one stored
// notification.
const JobNotification = "alertmanager.notification"

// MaxBody is the largest notification read. A group of a thousand alerts
// with rich annotations stays well under it; set max_alerts on the
// receiver for bigger groups.
const MaxBody = 4 << 20

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	Store incident.Batcher
	// Tokens are the accepted bearer tokens (several during a rotation).
	Tokens []string
	Logger *zap.Logger
	Clock  incident.Clock // default incident.SystemClock
	// Timeout bounds the durable store step (default 5s; Alertmanager's
	// webhook client times out after its http_config timeout).
	Timeout time.Duration
}

// Intake is the http.Handler of POST /webhooks/alertmanager.
//
// Answers, chosen for what Alertmanager does with them (it retries 5xx
// and gives up on 4xx; a notification it gave up on is sent again at the
// group's next flush, since it was never logged as sent):
// 202 stored; 401 a missing or wrong token; 413 a body over MaxBody; 400 a
// body that is not a version 4 notification; 503 the store failed (retry).
// The 202 is sent only after the notification is durably stored.
type Intake struct {
	cfg    IntakeConfig
	log    *zap.Logger
	tokens webhook.Tokens
}

// NewIntake returns the webhook handler.
func NewIntake(cfg IntakeConfig) *Intake {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Intake{cfg: cfg, log: cfg.Logger.Named("alertmanager.webhook"), tokens: webhook.NewTokens(cfg.Tokens)}
}

func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.log.With(zap.String("remote", r.RemoteAddr))
	reply := func(code int, text string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text+"\n")
	}
	if !h.tokens.Authorized(r.Header) {
		log.Warn("rejected Alertmanager webhook: missing or wrong bearer token; check ALERTMANAGER_WEBHOOK_TOKEN and the receiver's http_config.authorization",
			zap.Bool("authorization_present", r.Header.Get("Authorization") != ""))
		reply(http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		reply(http.StatusBadRequest, "cannot read body")
		return
	}
	if len(body) > MaxBody {
		log.Warn("Alertmanager notification too large; set max_alerts on the receiver", zap.Int("max_bytes", MaxBody))
		reply(http.StatusRequestEntityTooLarge, "body too large; set max_alerts on the receiver")
		return
	}
	m, err := Decode(body)
	if err != nil {
		log.Warn("rejected Alertmanager webhook: malformed", zap.Error(err))
		reply(http.StatusBadRequest, err.Error())
		return
	}
	job := incident.Job{Kind: JobNotification, Key: incident.AlertJobKey(Source, m.GroupKey), Due: h.cfg.Clock.Now(), Payload: body}
	if err := webhook.Enqueue(r.Context(), h.cfg.Store, h.cfg.Timeout, job); err != nil {
		log.Error("storing Alertmanager notification", zap.Error(err))
		reply(http.StatusServiceUnavailable, "not stored; retry")
		return
	}
	log.Debug("stored Alertmanager notification", zap.String("status", m.Status), zap.Int("alerts", len(m.Alerts)))
	reply(http.StatusAccepted, "accepted")
}

// Worker applies stored notifications.
type Worker struct {
	Service *incident.Service
	Policy  incident.AlertPolicy
	Logger  *zap.Logger
}

// HandleNotification runs an alertmanager.notification job.
func (w *Worker) HandleNotification(ctx context.Context, job incident.Job) error {
	m, err := Decode(job.Payload)
	if err != nil {
		return incident.Errorf(incident.EINVALID, "stored Alertmanager notification cannot be decoded: %v", err)
	}
	inc, err := w.Service.ApplyAlerts(ctx, m.Notification(), w.Policy)
	if err != nil {
		return err
	}
	if inc != nil && w.Logger != nil {
		w.Logger.Debug("applied Alertmanager notification", zap.String("incident", inc.ID()), zap.String("status", m.Status))
	}
	return nil
}
