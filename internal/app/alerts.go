package app

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/alertmanager"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/grafana"
)

// initAlerts serves POST /webhooks/alertmanager (and /webhooks/grafana)
// when their credentials are set, and runs the jobs that apply what they
// stored.
func (a *App) initAlerts() error {
	al := a.cfg.Alerts
	policy := al.Policy()
	if al.AlertmanagerToken.Set() {
		w := &alertmanager.Worker{Service: a.svc, Policy: policy, Logger: a.log.Named("alertmanager")}
		a.runner.Handle(alertmanager.JobNotification, w.HandleNotification)
		a.handlers.AlertmanagerHook = alertmanager.NewIntake(alertmanager.IntakeConfig{
			Store: a.store, Tokens: config.Tokens(al.AlertmanagerToken), Logger: a.log, Clock: a.clock,
		})
		a.log.Named("alertmanager").Info("Alertmanager webhooks configured")
	}
	if al.GrafanaSecret.Set() || al.GrafanaToken.Set() {
		w := &grafana.Worker{Service: a.svc, Policy: policy}
		a.runner.Handle(grafana.JobNotification, w.HandleNotification)
		a.handlers.GrafanaWebhook = grafana.NewIntake(grafana.IntakeConfig{
			Store: a.store, Logger: a.log, Clock: a.clock,
			Verifier: grafana.Verifier{Secrets: config.Tokens(al.GrafanaSecret), Tokens: config.Tokens(al.GrafanaToken), TimestampHeader: al.GrafanaTimestampHeader},
		})
		a.log.Named("grafana").Info("Grafana webhooks configured", zap.Bool("hmac", al.GrafanaSecret.Set()), zap.Bool("bearer_token", al.GrafanaToken.Set()))
	}
	return nil
}

// AlertSourceChecks says, for `bot doctor`, which alert sources are
// configured and where they deliver. An unconfigured source is not a
// failure: most teams use one or two.
func AlertSourceChecks(cfg config.Config) []SetupCheck {
	pd := cfg.PagerDuty.WebhookSecret.Set()
	am := cfg.Alerts.AlertmanagerToken.Set()
	gfHMAC, gfToken := cfg.Alerts.GrafanaSecret.Set(), cfg.Alerts.GrafanaToken.Set()
	state := func(on bool, how, unset string) string {
		if on {
			return "configured: " + how
		}
		return "not configured (" + unset + ")"
	}
	grafanaHow := "POST /webhooks/grafana, bearer token"
	if gfHMAC {
		grafanaHow = "POST /webhooks/grafana, HMAC signature"
		if cfg.Alerts.GrafanaTimestampHeader != "" {
			grafanaHow += " with timestamp header " + cfg.Alerts.GrafanaTimestampHeader
		}
		if gfToken {
			grafanaHow += " or bearer token"
		}
	}
	return []SetupCheck{
		{Name: "PagerDuty", OK: true, Detail: state(pd, "POST /webhooks/pagerduty, signed V3 webhooks", "set PAGERDUTY_WEBHOOK_SECRET")},
		{Name: "Alertmanager", OK: true, Detail: state(am, fmt.Sprintf("POST /webhooks/alertmanager, %d bearer token(s)", len(config.Tokens(cfg.Alerts.AlertmanagerToken))), "set ALERTMANAGER_WEBHOOK_TOKEN")},
		{Name: "Grafana", OK: true, Detail: state(gfHMAC || gfToken, grafanaHow, "set GRAFANA_WEBHOOK_SECRET or GRAFANA_WEBHOOK_TOKEN")},
	}
}
