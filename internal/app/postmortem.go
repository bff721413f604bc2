package app

import (
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/postmortem"
	"github.com/incidentbot/incident-bot/internal/slack"
)

var _ command.Postmortems = (*postmortem.Service)(nil)

// initPostmortems wires `/incident postmortem`: drafts are rendered from
// BOT_TEMPLATES_DIR/postmortem.md.tmpl (or the built-in template), stored
// as versions and, when the chat platform can share files, posted to the
// incident's channel by a durable job. The admin API serves its previews
// to `bot postmortem` (see mountAdmin).
func (a *App) initPostmortems() error {
	up, _ := a.chat.(incident.Uploader)
	if a.chat != nil && up == nil {
		a.log.Warn("the chat platform cannot share files; postmortem drafts are stored but not posted")
	}
	pmCfg := postmortemConfig(a.cfg, a.svc, up, a.log)
	pmCfg.Directory = a.directory()
	pm := postmortem.New(pmCfg)
	if up != nil {
		a.runner.Handle(postmortem.JobPost, pm.HandlePost)
	}
	a.dispCfg.Postmortems = pm
	a.pm = pm
	return nil
}

// directory names people in reports (postmortems, the digest) through
// Slack's users.info, cached; nil without Slack.
func (a *App) directory() incident.Directory {
	if a.dir == nil {
		if c := a.slackClient(); c != nil {
			a.dir = slack.NewDirectory(c)
		}
	}
	if a.dir == nil {
		return nil // not a typed nil in the interface
	}
	return a.dir
}

func postmortemConfig(cfg config.Config, svc *incident.Service, up incident.Uploader, log *zap.Logger) postmortem.Config {
	return postmortem.Config{Incidents: svc, Location: cfg.Location, TemplatesDir: cfg.TemplatesDir, Uploader: up, Logger: log}
}
