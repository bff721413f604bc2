package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
)

var _ command.Pager = (*pagerduty.Worker)(nil)

// initPagerDuty wires automatic escalation and reminders (always: without
// PagerDuty they still tell the channel) and, when PagerDuty is configured,
// the outbound client, the PagerDuty jobs, the two-way status sync and the
// `page`, `escalate` and `oncall` commands.
func (a *App) initPagerDuty() error {
	pd := a.cfg.PagerDuty
	log := a.log.Named("pagerduty")
	rest := pd.APIToken.Set()
	policy := incident.EscalationPolicy{
		AckTimeouts:     pd.AckTimeoutsBySeverity(),
		MaxEscalations:  pd.Escalations(),
		UpdateReminders: pd.UpdateRemindersBySeverity(),
		PagerEscalates:  rest,
	}
	var client *pagerduty.Client // built below when PagerDuty is configured
	if rest {
		// Before escalating an overdue timer, ask PagerDuty whether the
		// incident is still triggered (a late-delivered trigger).
		policy.PagerStatus = func(ctx context.Context, id string) (incident.Status, error) {
			return client.IncidentStatus(ctx, id)
		}
	}
	switch {
	case rest && pd.DefaultService != "":
		policy.AutoPage = &incident.PagerTarget{Kind: pagerduty.KindService, ID: pd.DefaultService, Name: "PagerDuty service " + pd.DefaultService}
	case !rest && pd.RoutingKey.Set():
		policy.AutoPage = &incident.PagerTarget{Name: "PagerDuty (PAGERDUTY_ROUTING_KEY)"}
	}
	esc := incident.NewEscalator(a.svc, policy)
	a.svc.AddHook(esc.Hook())
	a.runner.Handle(incident.JobAckTimeout, esc.HandleAckTimeout)
	a.runner.Handle(incident.JobUpdateReminder, esc.HandleUpdateReminder)

	if !pd.Enabled() {
		return nil
	}
	metrics, err := pagerduty.NewMetrics(a.registry)
	if err != nil {
		return fmt.Errorf("registering PagerDuty metrics: %w", err)
	}
	if rest || pd.RoutingKey.Set() {
		client = pagerduty.NewClient(pagerduty.ClientConfig{
			Token: pd.APIToken.Value(), From: pd.FromEmail, RoutingKey: pd.RoutingKey.Value(),
			APIURL: pd.APIURL, EventsURL: pd.EventsURL, Metrics: metrics,
		})
	}
	dir, _ := a.chat.(pagerduty.UserDirectory)
	if dir == nil && rest {
		log.Warn("the chat platform cannot look users up by email; PagerDuty assignees and responders will not be invited")
	}
	w := pagerduty.NewWorker(pagerduty.WorkerConfig{
		Service: a.svc, Client: client, Directory: dir, Logger: a.log, Clock: a.clock,
		Severities:     pagerduty.Severities{Priorities: pd.Priorities(), Urgencies: pd.Urgencies()},
		DefaultService: pd.DefaultService,
	})
	a.runner.Handle(pagerduty.JobEvent, w.HandleEvent)
	a.runner.Handle(incident.JobPagerAction, w.HandleAction)
	a.runner.Handle(incident.JobPagerUsers, w.HandleUsers)
	if rest {
		a.dispCfg.OnCall = pagerduty.NewOnCall(pagerduty.OnCallConfig{Client: client, Directory: dir, Clock: a.clock, Logger: a.log})
	}
	if client != nil {
		a.svc.AddHook(incident.PagerSyncHook(incident.PagerSync{Status: pd.StatusSync(), Notes: pd.MirrorNotes && rest}))
		a.dispCfg.Pager = w
		a.dispCfg.PagerStatusSync = pd.StatusSync()
	}
	if !pd.WebhookSecret.Set() {
		log.Warn("PAGERDUTY_WEBHOOK_SECRET is not set; PagerDuty webhooks are not received")
	}
	log.Info("PagerDuty configured", zap.Bool("rest_api", rest), zap.Bool("events_api", pd.RoutingKey.Set()),
		zap.Bool("webhooks", pd.WebhookSecret.Set()), zap.Bool("status_sync", pd.StatusSync()), zap.Bool("mirror_notes", pd.MirrorNotes))
	return nil
}

// mountPagerDuty serves POST /webhooks/pagerduty when a webhook secret is
// set.
func (a *App) mountPagerDuty() error {
	pd := a.cfg.PagerDuty
	if !pd.WebhookSecret.Set() {
		return nil
	}
	// Registered in initPagerDuty already: NewMetrics shares the collectors.
	metrics, err := pagerduty.NewMetrics(a.registry)
	if err != nil {
		return fmt.Errorf("registering PagerDuty metrics: %w", err)
	}
	a.handlers.PagerDutyWebhook = pagerduty.NewIntake(pagerduty.IntakeConfig{
		Store: a.store, Secrets: pd.WebhookSecrets(), Logger: a.log, Clock: a.clock, Metrics: metrics,
	})
	return nil
}

// PagerDutyChecks runs the PagerDuty setup checks for `bot doctor`: the
// REST API token, the From user and the webhook secret. It needs no
// database.
func PagerDutyChecks(ctx context.Context, cfg config.Config) []SetupCheck {
	pd := cfg.PagerDuty
	if !pd.Enabled() {
		return []SetupCheck{{Name: "PagerDuty", OK: true, Detail: "not configured: incidents are not paged; set PAGERDUTY_API_TOKEN (and PAGERDUTY_FROM_EMAIL, PAGERDUTY_WEBHOOK_SECRET) to use it"}}
	}
	client := pagerduty.NewClient(pagerduty.ClientConfig{
		Token: pd.APIToken.Value(), From: pd.FromEmail, RoutingKey: pd.RoutingKey.Value(),
		APIURL: pd.APIURL, EventsURL: pd.EventsURL,
	})
	return pagerduty.Doctor(ctx, pagerduty.DoctorConfig{Client: client, WebhookSecret: pd.WebhookSecret.Set()})
}
