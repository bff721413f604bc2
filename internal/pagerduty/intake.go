package pagerduty

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// JobEvent is the kind of the job that applies one stored webhook event.
const JobEvent = "pagerduty.event"

// MaxBody is the largest delivery read: 2 MB, as go-pagerduty's verifier
// reads. PagerDuty itself drops events over 256 KB.
const MaxBody = 2 << 20

// Headers of a V3 delivery besides the signature.
const (
	WebhookIDHeader           = "X-Webhook-Id"
	WebhookSubscriptionHeader = "X-Webhook-Subscription"
)

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// Store lets simultaneous deliveries share one commit and one fsync.
	Store incident.Batcher
	// Secrets are the webhook subscription secrets; a delivery signed with
	// any of them is accepted.
	Secrets []string
	Logger  *zap.Logger
	Clock   incident.Clock // default incident.SystemClock
	Metrics *Metrics       // nil: none
	// Timeout bounds the durable store step (default 4s: PagerDuty gives up
	// after 5s and retries, which is harmless, but an answer is better).
	Timeout time.Duration
}

// Intake is the http.Handler of POST /webhooks/pagerduty.
//
// Answers: 202 stored (or ignored: an event type the bot does not act on),
// 200 a duplicate of a stored delivery, 401 a bad or missing signature, 413
// a body over MaxBody, 400 a signed body that is not a V3 event, 500 the
// store failed (PagerDuty retries 5xx). Nothing is stored unless the answer
// is 202, and the 202 is sent only after the event is durably stored.
//
// PagerDuty drops a delivery answered with a 4xx and disables the
// subscription after three drops in a row, so every 4xx is logged as a
// warning and counted. An X-Webhook-Id that cannot be an id (over 256 bytes
// or with control characters; the header is not signed) is ignored with a
// warning, and the delivery is deduplicated on its event id alone.
type Intake struct {
	cfg IntakeConfig
	log *zap.Logger
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
		cfg.Timeout = 4 * time.Second
	}
	return &Intake{cfg: cfg, log: cfg.Logger.Named("pagerduty.webhook")}
}

// Keys of the store's idempotency records for deliveries.
func webhookKey(id string) string { return "pd:webhook:" + id }
func eventKey(id string) string   { return "pd:event:" + id }

// EventJobKey orders the events of one PagerDuty incident.
func EventJobKey(pagerIncidentID string) string { return "pd:" + pagerIncidentID }

func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	webhookID := r.Header.Get(WebhookIDHeader)
	log := h.log.With(zap.String("webhook_id", cutForLog(webhookID)), zap.String("subscription", cutForLog(r.Header.Get(WebhookSubscriptionHeader))), zap.String("remote", r.RemoteAddr))
	reply := func(code int, outcome, text string) {
		h.cfg.Metrics.webhook(outcome)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text+"\n")
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		log.Warn("reading PagerDuty webhook body", zap.Error(err))
		reply(http.StatusBadRequest, OutcomeMalformed, "cannot read body")
		return
	}
	if len(body) > MaxBody {
		log.Warn("PagerDuty webhook too large; PagerDuty drops it", zap.Int("max_bytes", MaxBody))
		reply(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body too large")
		return
	}
	sig := r.Header.Get(SignatureHeader)
	if !VerifySignature(body, sig, h.cfg.Secrets) {
		// Either a forgery or a secret mismatch; the latter disables the
		// subscription after three deliveries, so operators must see it.
		log.Warn("rejected PagerDuty webhook: bad or missing signature; check PAGERDUTY_WEBHOOK_SECRET",
			zap.Bool("signature_present", sig != ""), zap.Int("bytes", len(body)))
		reply(http.StatusUnauthorized, OutcomeBadSignature, "invalid signature")
		return
	}
	d, err := Decode(body)
	if err != nil {
		log.Warn("rejected PagerDuty webhook: malformed", zap.Error(err))
		reply(http.StatusBadRequest, OutcomeMalformed, err.Error())
		return
	}
	if webhookID != "" && !validID(webhookID) {
		// The header is not signed and PagerDuty's are UUIDs: dedupe on the
		// signed event id alone rather than drop a genuine event with a 4xx
		// or fail the store step on an unstorable key.
		log.Warn("ignoring malformed X-Webhook-Id; deduplicating on event.id")
		webhookID = ""
	}
	log = log.With(zap.String("event_id", d.Event.ID), zap.String("event_type", d.Event.EventType))
	if !d.Handled() {
		log.Debug("ignoring PagerDuty event type")
		reply(http.StatusAccepted, OutcomeIgnored, "ignored")
		return
	}
	dup, err := h.store(r.Context(), webhookID, d, body)
	switch {
	case err != nil:
		log.Error("storing PagerDuty webhook", zap.Error(err))
		reply(http.StatusInternalServerError, OutcomeError, "not stored; retry")
	case dup:
		log.Debug("duplicate PagerDuty webhook")
		reply(http.StatusOK, OutcomeDuplicate, "duplicate")
	default:
		log.Debug("stored PagerDuty webhook", zap.String("pager_incident", d.PagerIncidentID()))
		reply(http.StatusAccepted, OutcomeAccepted, "accepted")
	}
}

// store records the delivery's idempotency keys and enqueues its job in one
// durable transaction, unless the webhook id or the event id was stored
// before; then it reports a duplicate.
func (h *Intake) store(ctx context.Context, webhookID string, d *Delivery, body []byte) (bool, error) {
	// The commit must not be abandoned halfway because PagerDuty hung up:
	// bound it by our own timeout instead of the request's.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Timeout)
	defer cancel()
	dup := false
	err := h.cfg.Store.Batch(ctx, func(tx incident.Tx) error {
		dup = false // fn may run again if the batch it shared failed
		if webhookID != "" {
			if _, ok, err := tx.Key(webhookKey(webhookID)); err != nil || ok {
				dup = ok
				return err
			}
		}
		if _, ok, err := tx.Key(eventKey(d.Event.ID)); err != nil || ok {
			dup = ok
			return err
		}
		now := h.cfg.Clock.Now()
		if webhookID != "" {
			if err := tx.PutKey(webhookKey(webhookID), []byte(d.Event.ID), now); err != nil {
				return err
			}
		}
		if err := tx.PutKey(eventKey(d.Event.ID), []byte(webhookID), now); err != nil {
			return err
		}
		return tx.Enqueue(&incident.Job{Kind: JobEvent, Key: EventJobKey(d.PagerIncidentID()), Due: now, Payload: body})
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return false, errors.New("store did not commit in time")
	}
	return dup, err
}

// cutForLog bounds an unsigned header value before it is logged.
func cutForLog(s string) string {
	if len(s) > maxIDLength {
		return s[:maxIDLength] + "…"
	}
	return s
}
