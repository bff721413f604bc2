package pagerduty

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook outcomes, the outcome label of incidentbot_webhooks_received_total.
const (
	OutcomeAccepted     = "accepted"
	OutcomeDuplicate    = "duplicate"
	OutcomeIgnored      = "ignored" // a type the bot does not act on
	OutcomeBadSignature = "bad_signature"
	OutcomeTooLarge     = "too_large"
	OutcomeMalformed    = "malformed"
	OutcomeError        = "error"
)

// API call outcomes, the outcome label of incidentbot_pagerduty_api_requests_total.
const (
	APIOK          = "ok"
	APIRateLimited = "rate_limited"
	APIServerError = "server_error"
	APIClientError = "client_error"
	APINetwork     = "network"
)

// Metrics are the PagerDuty collectors. A nil *Metrics records nothing.
type Metrics struct {
	webhooks    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

// NewMetrics registers the PagerDuty collectors on reg; nil reg: no metrics.
// A collector that is already registered (another component counts
// webhooks of its own source on the same family) is shared.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_webhooks_received_total",
			Help: "Webhook deliveries received, by source and outcome.",
		}, []string{"source", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_pagerduty_api_requests_total",
			Help: "PagerDuty API calls, by method (e.g. \"POST /incidents\") and outcome.",
		}, []string{"method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "incidentbot_pagerduty_api_request_duration_seconds",
			Help:    "PagerDuty API call latency, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_pagerduty_api_rate_limited_total",
			Help: "PagerDuty API calls answered 429, by method.",
		}, []string{"method"}),
	}
	var err error
	m.webhooks, err = register(reg, m.webhooks)
	if err != nil {
		return nil, err
	}
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.rateLimited, err = register(reg, m.rateLimited); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *Metrics) webhook(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues("pagerduty", outcome).Inc()
	}
}

func (m *Metrics) apiCall(method, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, outcome).Inc()
	m.duration.WithLabelValues(method).Observe(took.Seconds())
	if outcome == APIRateLimited {
		m.rateLimited.WithLabelValues(method).Inc()
	}
}
