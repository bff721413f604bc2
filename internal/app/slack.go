package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
)

// slackCloseGrace bounds how long shutdown waits for Slack replies still
// being delivered (late command replies through response_url).
const slackCloseGrace = 10 * time.Second

// slackCheckTimeout bounds the setup checks logged at start-up.
const slackCheckTimeout = 20 * time.Second

// initSlackClient builds the Slack Web API client when Slack is configured
// and no other chat platform was given, makes it the chat platform, and
// registers the adapter's jobs.
func (a *App) initSlackClient() error {
	s := a.cfg.Slack
	if !s.Enabled() || a.chat != nil {
		return nil
	}
	c, err := slack.NewClient(slack.ClientConfig{
		Token:    s.BotToken.Value(),
		AppToken: s.AppToken.Value(),
		APIURL:   s.APIURL,
		Logger:   a.log,
		// Pacing against Slack's rate limits runs on real time even when
		// the app's clock is a test's manual clock, which would stall it.
		Clock:      incident.SystemClock,
		Registerer: a.registry,
		Rates:      a.opts.SlackRates,
	})
	if err != nil {
		return err
	}
	a.chat = c
	jobs := &slack.Jobs{Client: c, Service: a.svc, Logger: a.log}
	a.runner.Handle(slack.JobCaptureMessage, jobs.CaptureMessage)
	a.runner.Handle(slack.JobMemberJoined, jobs.MemberJoined)
	a.runner.Handle(slack.JobCatchupOffer, jobs.OfferCatchup)
	a.svc.AddHook(incident.CatchupOfferHook(slack.JobCatchupOffer))
	return nil
}

// slackClient returns the Slack client, or nil when Slack is not the chat
// platform. Integrations that need more of Slack than the chat ports (user
// groups for runbook access, cards, thread replies) get it here.
func (a *App) slackClient() *slack.Client {
	c, _ := a.chat.(*slack.Client)
	return c
}

// mountSlack serves Slack's requests: over HTTP on /slack/commands,
// /slack/interactions and /slack/events when a signing secret is set, and
// over Socket Mode when an app-level token is set. It also logs the setup
// checks of `bot doctor` as warnings once the bot is serving.
func (a *App) mountSlack() error {
	c := a.slackClient()
	if c == nil {
		return nil
	}
	s := a.cfg.Slack
	var runbooks slack.RunbookActions
	if a.runbooks != nil {
		runbooks = runbookButtons{a.runbooks}
	}
	h, err := slack.NewHandler(slack.HandlerConfig{
		Client:        c,
		Dispatcher:    a.disp,
		Service:       a.svc,
		SigningSecret: s.SigningSecret.Value(),
		Clock:         a.clock,
		Logger:        a.log,
		Registerer:    a.registry,
		PinReaction:   s.PinReaction,
		Runbooks:      runbooks,
		Location:      a.cfg.Location,
	})
	if err != nil {
		return err
	}
	a.runner.Handle(slack.JobButtonClick, h.RunClick)
	if s.SigningSecret.Set() {
		a.handlers.SlackCommands = h.Commands()
		a.handlers.SlackInteractions = h.Interactions()
		a.handlers.SlackEvents = h.Events()
	}
	if s.SocketMode() {
		a.ingress = append(a.ingress, h.SocketMode().Run)
	}
	a.ingress = append(a.ingress, func(ctx context.Context) error {
		a.logSlackChecks(ctx, c)
		return nil
	})
	a.closers = append(a.closers, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, slackCloseGrace)
		defer cancel()
		return h.Close(ctx)
	})
	a.log.Info("slack configured", zap.Bool("http", s.SigningSecret.Set()), zap.Bool("socket_mode", s.SocketMode()),
		zap.String("api_url", s.APIURL), zap.String("pin_reaction", s.PinReaction))
	return nil
}

// logSlackChecks runs the setup checks and logs each problem as a warning
// with its fix. They never stop the bot.
func (a *App) logSlackChecks(ctx context.Context, c *slack.Client) {
	ctx, cancel := context.WithTimeout(ctx, slackCheckTimeout)
	defer cancel()
	log := a.log.Named("slack")
	for _, ch := range slack.Doctor(ctx, a.slackDoctorConfig(c, false)) {
		if ctx.Err() != nil {
			return
		}
		if ch.OK {
			log.Info("slack setup check passed", zap.String("check", ch.Name), zap.String("detail", ch.Detail))
			continue
		}
		log.Warn("slack setup problem", zap.String("check", ch.Name), zap.String("problem", ch.Detail), zap.String("fix", ch.Fix))
	}
}

func (a *App) slackDoctorConfig(c *slack.Client, openSocket bool) slack.DoctorConfig {
	return slack.DoctorConfig{
		Client:          c,
		AnnounceChannel: a.cfg.AnnounceChannel,
		AppToken:        a.cfg.Slack.AppToken.Value(),
		SigningSecret:   a.cfg.Slack.SigningSecret.Set(),
		OpenSocket:      openSocket,
	}
}

// SetupCheck is one result of `bot doctor`.
type SetupCheck = slack.Check

// SlackChecks runs the Slack setup checks for `bot doctor`: the token
// (auth.test), its scopes, the announce channel, and the HTTP or Socket
// Mode set-up. It needs no database.
//
// It also checks the app manifest the app was created from (manifest; ""
// checks deploy/slack/manifest*.yaml when run from a checkout) for the
// shortcuts, scopes and interactivity the bot needs.
func SlackChecks(ctx context.Context, cfg config.Config, log *zap.Logger, manifest string) []SetupCheck {
	if !cfg.Slack.Enabled() {
		return []SetupCheck{{Name: "bot token (SLACK_BOT_TOKEN)", Detail: "not set: the bot cannot talk to Slack",
			Fix: "Install the app from deploy/slack/manifest.yaml and put its Bot User OAuth Token (xoxb-…) in SLACK_BOT_TOKEN."}}
	}
	c, err := slack.NewClient(slack.ClientConfig{
		Token: cfg.Slack.BotToken.Value(), AppToken: cfg.Slack.AppToken.Value(), APIURL: cfg.Slack.APIURL, Logger: log,
	})
	if err != nil {
		return []SetupCheck{{Name: "Slack client", Detail: err.Error(), Fix: "Check SLACK_API_URL."}}
	}
	a := &App{cfg: cfg}
	dc := a.slackDoctorConfig(c, true)
	dc.Manifests = slack.DefaultManifests
	if manifest != "" {
		dc.Manifests = []string{manifest}
	}
	return slack.Doctor(ctx, dc)
}
