package slack

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// API call outcomes, the outcome label of incidentbot_slack_api_requests_total.
const (
	outcomeOK          = "ok"
	outcomeRateLimited = "rate_limited"
	outcomeServerError = "server_error"
	outcomeClientError = "client_error"
	outcomeNetwork     = "network"
)

// Inbound request outcomes, the outcome label of incidentbot_slack_requests_total.
const (
	reqOK           = "ok"
	reqBadSignature = "bad_signature"
	reqTooLarge     = "too_large"
	reqMalformed    = "malformed"
	reqDuplicate    = "duplicate"
	reqError        = "error"
)

// Inbound request kinds.
const (
	kindCommand     = "command"
	kindInteraction = "interaction"
	kindEvent       = "event"
)

type apiMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_slack_api_requests_total",
			Help: "Slack Web API calls by method and outcome (ok, rate_limited, server_error, client_error, network).",
		}, []string{"method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "incidentbot_slack_api_request_duration_seconds",
			Help:    "Duration of Slack Web API calls, by method.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 9),
		}, []string{"method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_slack_api_rate_limited_total",
			Help: "Slack Web API calls answered 429 (or ratelimited), by method.",
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.rateLimited)
	}
	return m
}

func (m *apiMetrics) observe(method, outcome string, d time.Duration) {
	m.requests.WithLabelValues(method, outcome).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
	if outcome == outcomeRateLimited {
		m.rateLimited.WithLabelValues(method).Inc()
	}
}

type inboundMetrics struct {
	requests *prometheus.CounterVec
}

func newInboundMetrics(reg prometheus.Registerer) *inboundMetrics {
	m := &inboundMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "incidentbot_slack_requests_total",
		Help: "Requests from Slack (HTTP and Socket Mode) by kind (command, interaction, event) and outcome.",
	}, []string{"kind", "outcome"})}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

func (m *inboundMetrics) count(kind, outcome string) { m.requests.WithLabelValues(kind, outcome).Inc() }
