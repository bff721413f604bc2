package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/runbookflow"
	"github.com/incidentbot/incident-bot/internal/shell"
	"github.com/incidentbot/incident-bot/internal/slack"
)

// Both chat front ends present runbook approvals and private results.
var (
	_ runbookflow.Presenter = (*slack.Client)(nil)
	_ runbookflow.Presenter = (*shell.Chat)(nil)
)

// initRunbooks wires the runbook flow to the store, the job queue, the
// chat and the command language.
func (a *App) initRunbooks() error {
	cfg := runbookflow.Config{
		Dir: a.cfg.RunbooksDir, SecretsDir: a.cfg.Runbooks.SecretsDir, Disabled: a.cfg.Runbooks.Disabled,
		Service: a.svc, Store: a.store, Chat: a.chat,
		Local: a.isShell(), Clock: a.clock, Logger: a.log, Registerer: a.registry,
	}
	if p, ok := a.chat.(runbookflow.Presenter); ok {
		cfg.Presenter = p
	}
	c := a.slackClient()
	if c != nil {
		cfg.GroupMembers = c.UserGroupMembers
	}
	f := runbookflow.New(cfg)
	a.runner.Handle(runbookflow.JobPost, f.HandlePost)
	switch {
	case a.isShell():
		if err := f.Start(""); err != nil {
			return err
		}
	case c != nil:
		// The engine denies callers from other workspaces, so it needs this
		// workspace's id: ask Slack now, and keep asking in the background
		// if Slack cannot be reached at start-up.
		teamID := func(ctx context.Context) (string, error) {
			id, _, err := c.AuthTest(ctx)
			return id.TeamID, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := teamID(ctx)
		cancel()
		if err == nil {
			if err := f.Start(id); err != nil {
				return err
			}
		} else {
			a.log.Warn("runbooks wait for Slack: cannot learn the workspace id yet", zap.Error(err))
			a.schedulers = append(a.schedulers, f.StartWhen(teamID))
		}
	default:
		// Without a chat there is nobody to run runbooks; the dispatcher
		// still answers.
	}
	a.schedulers = append(a.schedulers, f.ReloadOnSIGHUP)
	a.closers = append(a.closers, f.Close)
	a.dispCfg.Runbooks = f
	a.runbooks = f
	return nil
}

// runbookButtons adapts the flow to the Slack handler's card buttons.
type runbookButtons struct{ f *runbookflow.Flow }

var _ slack.RunbookActions = runbookButtons{}

func (b runbookButtons) act(ctx context.Context, action runbookflow.Action, c slack.RunbookClick) (string, error) {
	return b.f.Act(ctx, action, c.RunID, c.TeamID, c.Actor)
}

// Confirm implements slack.RunbookActions.
func (b runbookButtons) Confirm(ctx context.Context, c slack.RunbookClick) (string, error) {
	return b.act(ctx, runbookflow.ActionConfirm, c)
}

// Cancel implements slack.RunbookActions.
func (b runbookButtons) Cancel(ctx context.Context, c slack.RunbookClick) (string, error) {
	return b.act(ctx, runbookflow.ActionCancel, c)
}

// Approve implements slack.RunbookActions.
func (b runbookButtons) Approve(ctx context.Context, c slack.RunbookClick) (string, error) {
	return b.act(ctx, runbookflow.ActionApprove, c)
}

// Deny implements slack.RunbookActions.
func (b runbookButtons) Deny(ctx context.Context, c slack.RunbookClick) (string, error) {
	return b.act(ctx, runbookflow.ActionDeny, c)
}

// shellRunbookAction runs /confirm, /cancel, /approve and /deny typed in
// the shell.
func (a *App) shellRunbookAction(ctx context.Context, verb, runID string, actor incident.Actor) string {
	if a.runbooks == nil {
		return "runbooks are not available"
	}
	return a.runbooks.ActText(ctx, runbookflow.Action(verb), runID, "", actor)
}

// shellRunbookConfirm asks at the prompt whether to run what a
// confirmation describes.
func (a *App) shellRunbookConfirm(ctx context.Context, req command.Request, conf command.Confirmation, ask func(string) (string, bool)) string {
	if a.runbooks == nil {
		return ""
	}
	return a.runbooks.AnswerPrompt(ctx, req, conf, ask)
}
