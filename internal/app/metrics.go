package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// storeCollector reports what the store holds at scrape time: the job
// queue's depth and age, and open incidents by severity.
type storeCollector struct {
	a          *App
	jobs       *prometheus.Desc
	dueJobs    *prometheus.Desc
	deadJobs   *prometheus.Desc
	oldestJob  *prometheus.Desc
	open       *prometheus.Desc
	scrapeFail *prometheus.Desc
}

func newStoreCollector(a *App) *storeCollector {
	return &storeCollector{
		a:          a,
		jobs:       prometheus.NewDesc("incidentbot_jobs_pending", "Jobs waiting in the durable queue, timers set for later included.", nil, nil),
		dueJobs:    prometheus.NewDesc("incidentbot_jobs_due", "Jobs that are due now: work the bot has still to do.", nil, nil),
		deadJobs:   prometheus.NewDesc("incidentbot_jobs_dead", "Jobs that failed for good and were set aside.", nil, nil),
		oldestJob:  prometheus.NewDesc("incidentbot_jobs_oldest_due_age_seconds", "How long the most overdue pending job has been due (0 if none is overdue).", nil, nil),
		open:       prometheus.NewDesc("incidentbot_incidents_open", "Open incidents by severity.", []string{"severity"}, nil),
		scrapeFail: prometheus.NewDesc("incidentbot_store_scrape_errors", "1 if reading the store for these metrics failed.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.dueJobs
	ch <- c.deadJobs
	ch <- c.oldestJob
	ch <- c.open
	ch <- c.scrapeFail
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	failed := 0.0
	pending, oldest, dead, err := c.a.store.JobStats()
	if err != nil {
		failed = 1
	} else {
		age := 0.0
		if !oldest.IsZero() {
			age = max(c.a.clock.Now().Sub(oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(pending))
		if due, err := c.a.store.DueCount(c.a.clock.Now()); err == nil {
			ch <- prometheus.MustNewConstMetric(c.dueJobs, prometheus.GaugeValue, float64(due))
		} else {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(c.deadJobs, prometheus.GaugeValue, float64(dead))
		ch <- prometheus.MustNewConstMetric(c.oldestJob, prometheus.GaugeValue, age)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	open, err := c.a.svc.List(ctx, incident.Filter{OpenOnly: true})
	if err != nil {
		failed = 1
	} else {
		counts := map[incident.Severity]int{}
		for _, inc := range open {
			counts[inc.Severity]++
		}
		for _, sev := range incident.Severities {
			ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(counts[sev]), sev.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeFail, prometheus.GaugeValue, failed)
}

// jobMetrics observes every job run.
type jobMetrics struct {
	runs *prometheus.CounterVec
	dur  *prometheus.HistogramVec
	lag  *prometheus.HistogramVec
}

func newJobMetrics(reg prometheus.Registerer) *jobMetrics {
	m := &jobMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentbot_job_runs_total", Help: "Job runs by kind and outcome (done, retry, failed).",
		}, []string{"kind", "outcome"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "incidentbot_job_run_duration_seconds", Help: "How long job runs took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "incidentbot_job_lag_seconds", Help: "How late jobs started after they were due (timer lag).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.runs, m.dur, m.lag)
	return m
}

func (m *jobMetrics) observe(kind, outcome string, ran, lag time.Duration) {
	m.runs.WithLabelValues(kind, outcome).Inc()
	m.dur.WithLabelValues(kind).Observe(ran.Seconds())
	m.lag.WithLabelValues(kind).Observe(lag.Seconds())
}
