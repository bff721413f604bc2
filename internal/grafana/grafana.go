// Package grafana receives Grafana alerting's webhook contact point
// (POST /webhooks/grafana) and turns each notification into the domain's
// alert-group notification, mapped exactly as Alertmanager's are.
//
// The payload is Grafana's webhookMessage (grafana/alerting,
// receivers/webhook/v1/webhook.go): Alertmanager's template data extended
// with Grafana's fields (orgId, state, title, message, and per alert
// silenceURL, dashboardURL, panelURL), version "1".
//
// Authentication: with GRAFANA_WEBHOOK_SECRET set, the contact point's
// HMAC signature (hmacConfig, Grafana 12) is verified as grafana/alerting
// http/hmac.go makes it: hex HMAC-SHA256 with the secret over the raw body,
// or over "<timestamp>:<body>" when the contact point names a timestamp
// header (Unix seconds in that header; GRAFANA_WEBHOOK_TIMESTAMP_HEADER
// must name the same header), in the X-Grafana-Alerting-Signature header.
// Otherwise, or as well, a bearer token (GRAFANA_WEBHOOK_TOKEN, the
// contact point's Authorization header credentials) is accepted.
package grafana

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/webhook"
)

// Source is Grafana as the domain names it; Name is how people do.
const (
	Source incident.Source = "grafana"
	Name                   = "Grafana"
)

// SignatureHeader is hmacConfig.header's default.
const SignatureHeader = "X-Grafana-Alerting-Signature"

// JobNotification is the kind of the job that applies one stored
// notification.
const JobNotification = "grafana.notification"

// MaxBody is the largest notification read.
const MaxBody = 4 << 20

// MaxClockSkew bounds how old (or how far ahead) a signed timestamp may
// be: a replayed delivery older than this is refused.
const MaxClockSkew = 5 * time.Minute

// Message is the webhook payload (only the fields the bot reads).
type Message struct {
	Version         string            `json:"version"`
	GroupKey        string            `json:"groupKey"`
	Status          string            `json:"status"`
	State           string            `json:"state"` // "alerting" or "ok"
	OrgID           int64             `json:"orgId"`
	Title           string            `json:"title"`
	GroupLabels     map[string]string `json:"groupLabels"`
	ExternalURL     string            `json:"externalURL"`
	TruncatedAlerts int               `json:"truncatedAlerts"`
	Alerts          []Alert           `json:"alerts"`
}

// Alert is Grafana's extended template alert.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	SilenceURL   string            `json:"silenceURL"`
	DashboardURL string            `json:"dashboardURL"`
	PanelURL     string            `json:"panelURL"`
}

// ErrMalformed marks a body that is not a Grafana notification.
var ErrMalformed = errors.New("malformed Grafana notification")

// Decode parses a webhook body.
func Decode(body []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: not JSON in the webhook contact point's default format (a custom payload template is not supported)", ErrMalformed)
	}
	if err := incident.CheckAlertGroup(m.GroupKey, m.Alerts, func(a Alert) (string, string) { return a.Fingerprint, a.Status }); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, incident.ErrorMessage(err))
	}
	return &m, nil
}

// Notification converts the message to the domain's alert notification.
// Grafana's group keys are per organisation, so the org is part of the
// group.
func (m *Message) Notification() incident.AlertNotification {
	n := incident.AlertNotification{
		Source: Source, SourceName: Name, GroupKey: strconv.FormatInt(m.OrgID, 10) + "/" + m.GroupKey,
		GroupLabels: m.GroupLabels, Truncated: max(m.TruncatedAlerts, 0), ExternalURL: m.ExternalURL,
	}
	for _, a := range m.Alerts {
		gen := a.GeneratorURL
		if a.PanelURL != "" {
			gen = a.PanelURL // the panel shows the data the rule evaluated
		}
		n.Alerts = append(n.Alerts, incident.Alert{
			Fingerprint: a.Fingerprint, Firing: a.Status == "firing", Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, GeneratorURL: gen, SilenceURL: a.SilenceURL,
		})
	}
	return n
}

// Verifier checks a delivery's credentials.
type Verifier struct {
	// Secrets are HMAC secrets (several during a rotation); Tokens bearer
	// tokens. A delivery passing either check is accepted.
	Secrets []string
	Tokens  []string
	// TimestampHeader is the contact point's hmacConfig.timestampHeader;
	// empty: Grafana signs the body alone and sends no timestamp.
	TimestampHeader string
	Clock           incident.Clock
}

// Verify reports whether the request's signature or token is valid, and
// why not.
func (v Verifier) Verify(h http.Header, body []byte) error {
	if sig := strings.TrimSpace(h.Get(SignatureHeader)); sig != "" && len(v.Secrets) > 0 {
		signed := body
		if v.TimestampHeader != "" {
			ts := strings.TrimSpace(h.Get(v.TimestampHeader))
			sec, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return fmt.Errorf("timestamp header %s missing or not Unix seconds", v.TimestampHeader)
			}
			if d := v.Clock.Now().Sub(time.Unix(sec, 0)); d > MaxClockSkew || d < -MaxClockSkew {
				return fmt.Errorf("signed timestamp is %s away from now (a replay, or clocks out of step)", d.Round(time.Second))
			}
			signed = append([]byte(ts+":"), body...)
		}
		got, err := hex.DecodeString(sig)
		match := 0
		for _, s := range v.Secrets {
			mac := hmac.New(sha256.New, []byte(s))
			mac.Write(signed)
			if err == nil && hmac.Equal(got, mac.Sum(nil)) {
				match = 1
			}
		}
		if match == 1 {
			return nil
		}
		return errors.New("signature does not match GRAFANA_WEBHOOK_SECRET")
	}
	if len(v.Tokens) > 0 {
		if webhook.NewTokens(v.Tokens).Authorized(h) {
			return nil
		}
	}
	if len(v.Secrets) > 0 {
		return errors.New("no valid " + SignatureHeader + " signature")
	}
	return errors.New("missing or wrong bearer token")
}

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	Store    incident.Batcher
	Verifier Verifier
	Logger   *zap.Logger
	Clock    incident.Clock
}

// Intake is the http.Handler of POST /webhooks/grafana. Answers as
// Alertmanager's intake: 202 stored (durably, before the answer), 401 bad
// credentials, 413 too large, 400 malformed, 503 the store failed (Grafana
// retries).
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
	if cfg.Verifier.Clock == nil {
		cfg.Verifier.Clock = cfg.Clock
	}
	return &Intake{cfg: cfg, log: cfg.Logger.Named("grafana.webhook")}
}

func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, text string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text+"\n")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		reply(http.StatusBadRequest, "cannot read body")
		return
	}
	if len(body) > MaxBody {
		reply(http.StatusRequestEntityTooLarge, "body too large; set max alerts on the contact point")
		return
	}
	if err := h.cfg.Verifier.Verify(r.Header, body); err != nil {
		h.log.Warn("rejected Grafana webhook; check GRAFANA_WEBHOOK_SECRET or GRAFANA_WEBHOOK_TOKEN and the contact point", zap.String("reason", err.Error()), zap.String("remote", r.RemoteAddr))
		reply(http.StatusUnauthorized, "invalid signature or token")
		return
	}
	m, err := Decode(body)
	if err != nil {
		h.log.Warn("rejected Grafana webhook: malformed", zap.Error(err))
		reply(http.StatusBadRequest, err.Error())
		return
	}
	job := incident.Job{Kind: JobNotification, Key: incident.AlertJobKey(Source, m.Notification().GroupKey), Due: h.cfg.Clock.Now(), Payload: body}
	if err := webhook.Enqueue(r.Context(), h.cfg.Store, 5*time.Second, job); err != nil {
		h.log.Error("storing Grafana notification", zap.Error(err))
		reply(http.StatusServiceUnavailable, "not stored; retry")
		return
	}
	reply(http.StatusAccepted, "accepted")
}

// Worker applies stored notifications.
type Worker struct {
	Service *incident.Service
	Policy  incident.AlertPolicy
}

// HandleNotification runs a grafana.notification job.
func (w *Worker) HandleNotification(ctx context.Context, job incident.Job) error {
	m, err := Decode(job.Payload)
	if err != nil {
		return incident.Errorf(incident.EINVALID, "stored Grafana notification cannot be decoded: %v", err)
	}
	_, err = w.Service.ApplyAlerts(ctx, m.Notification(), w.Policy)
	return err
}
