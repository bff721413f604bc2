package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// parseInteraction decodes an interaction's form body (its payload field).
func parseInteraction(body []byte) (*slackapi.InteractionCallback, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	payload := v.Get("payload")
	if payload == "" {
		return nil, errors.New("no payload")
	}
	var ic slackapi.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &ic); err != nil {
		return nil, err
	}
	if ic.Type == "" || ic.User.ID == "" {
		return nil, errors.New("payload without type or user")
	}
	return &ic, nil
}

// buttonVerbs maps the summary buttons to the commands they run.
var buttonVerbs = map[string]command.Verb{
	ActionAck:      command.VerbAck,
	ActionMitigate: command.VerbMitigate,
	ActionResolve:  command.VerbResolve,
	ActionLead:     command.VerbLead,
	// followup_done's value is "INC-7#3"; see runButton.
	ActionFollowupDone: command.VerbFollowup,
}

// interaction handles one interaction and returns the acknowledgement body
// (nil: an empty 200) and the metric outcome. Buttons are acknowledged at
// once and answered through response_url; a form submission is validated
// and answered in the acknowledgement.
func (h *Handler) interaction(ctx context.Context, ic *slackapi.InteractionCallback) (any, string) {
	actor := incident.Actor{ID: ic.User.ID, Name: ic.User.Name, Source: incident.SourceSlack}
	switch ic.Type {
	case slackapi.InteractionTypeBlockActions:
		if len(ic.ActionCallback.BlockActions) == 0 {
			return nil, reqMalformed
		}
		if outcome, ok := h.menuAction(ic, ic.ActionCallback.BlockActions[0], actor); ok {
			return nil, outcome
		}
		return nil, h.blockAction(ctx, ic, ic.ActionCallback.BlockActions[0], actor)
	case slackapi.InteractionTypeViewSubmission:
		return h.viewSubmission(ctx, ic, actor)
	case slackapi.InteractionTypeShortcut, slackapi.InteractionTypeMessageAction:
		return h.shortcut(ctx, ic, actor)
	}
	return nil, reqOK
}

// clickJob is the payload of a JobButtonClick: what the click asks for and
// who clicked, as Slack's signed payload says.
type clickJob struct {
	ActionID     string         `json:"action_id"`
	Value        string         `json:"value"`
	ActionTS     string         `json:"action_ts"`
	Actor        incident.Actor `json:"actor"`
	TeamID       string         `json:"team_id,omitempty"`
	UserTeamID   string         `json:"user_team_id,omitempty"`
	EnterpriseID string         `json:"enterprise_id,omitempty"`
	ChannelID    string         `json:"channel_id,omitempty"`
	ResponseURL  string         `json:"response_url,omitempty"`
	Ephemeral    bool           `json:"ephemeral,omitempty"`
}

// blockAction takes a button click. Only the action id and the value (an
// incident id or a run id) are taken from the click; who clicked comes
// from the signed payload. The click is stored as a JobButtonClick in one
// durable transaction with its replay key (team, user, action and
// action_ts) before it is acknowledged, as events are: a crash after the
// 200 cannot lose it, a replayed click does nothing the second time, and a
// click that could not be stored is answered with an error (never an empty
// 200) so the person sees that it did not work.
func (h *Handler) blockAction(ctx context.Context, ic *slackapi.InteractionCallback, a *slackapi.BlockAction, actor incident.Actor) string {
	_, isIncident := buttonVerbs[a.ActionID]
	if !isIncident && !isRunbookAction(a.ActionID) {
		return reqOK
	}
	if len(ic.Team.ID) > maxIDLength || len(actor.ID) > maxIDLength || len(a.ActionTs) > maxIDLength || len(a.Value) > maxIDLength {
		return reqMalformed // not Slack's: they key the replay record and the job
	}
	click := clickJob{
		ActionID: a.ActionID, Value: a.Value, ActionTS: a.ActionTs, Actor: actor,
		TeamID: ic.Team.ID, UserTeamID: ic.User.TeamID, EnterpriseID: ic.Enterprise.ID, ChannelID: ic.Channel.ID,
		ResponseURL: ic.ResponseURL, Ephemeral: ic.Container.IsEphemeral,
	}
	raw, err := json.Marshal(click)
	if err != nil {
		return reqMalformed
	}
	key := fmt.Sprintf("slack-action:%s:%s:%s:%s", ic.Team.ID, actor.ID, a.ActionID, a.ActionTs)
	outcome := reqOK
	err = update(ctx, h.svc.Store(), func(tx incident.Tx) error {
		outcome = reqOK
		now := h.cfg.Clock.Now()
		fresh, err := firstTime(tx, key, now)
		if err != nil || !fresh {
			if err == nil {
				outcome = reqDuplicate
			}
			return err
		}
		return tx.Enqueue(&incident.Job{Kind: JobButtonClick, Key: clickJobKey(a.Value), Due: now, Payload: raw, Created: now})
	})
	switch {
	case err != nil:
		h.log.Error("cannot store slack button click", zap.String("action", a.ActionID), zap.Error(err))
		return reqError
	case outcome == reqDuplicate:
		h.log.Info("ignoring replayed slack button click", zap.String("action", a.ActionID), zap.String("user", actor.ID))
	}
	return outcome
}

var clickKeyShape = regexp.MustCompile(`^[A-Za-z0-9._#-]{1,64}$`)

// clickJobKey orders the clicks on one incident or one run; a value of
// any other shape (not from a button of ours) needs no order.
func clickJobKey(value string) string {
	if !clickKeyShape.MatchString(value) {
		return ""
	}
	return "slack-click:" + value
}

func isRunbookAction(id string) bool {
	return id == ActionRunbookConfirm || id == ActionRunbookCancel || id == ActionRunbookApprove || id == ActionRunbookDeny
}

// RunClick runs a JobButtonClick job: the click's command or runbook
// action, then the answer to the person who clicked through the click's
// response_url. The answer is best effort: the job succeeds once the
// action ran, so a failed answer never runs the action again.
func (h *Handler) RunClick(ctx context.Context, job incident.Job) error {
	var c clickJob
	if err := json.Unmarshal(job.Payload, &c); err != nil || c.ActionID == "" || c.Actor.ID == "" {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobButtonClick, job.Payload)
	}
	var text string
	isRunbook := isRunbookAction(c.ActionID)
	if verb, ok := buttonVerbs[c.ActionID]; ok {
		text = h.runButton(ctx, c, verb)
	} else if isRunbook {
		text = h.runRunbookButton(ctx, c)
	} else {
		return incident.Errorf(incident.EINVALID, "%s: unknown action %q", JobButtonClick, c.ActionID)
	}
	if text == "" || c.ResponseURL == "" {
		return nil
	}
	// A card shown only to this person (a runbook confirmation) is
	// replaced by the outcome so its buttons cannot be used again.
	if err := h.client.Respond(ctx, c.ResponseURL, Response{Text: text, ReplaceOriginal: c.Ephemeral && isRunbook}); err != nil {
		h.log.Warn("cannot answer slack button click", zap.String("action", c.ActionID), zap.Error(err))
	}
	return nil
}

func (h *Handler) runButton(ctx context.Context, c clickJob, verb command.Verb) string {
	cmd := command.Command{Verb: verb}
	value := c.Value
	if c.ActionID == ActionFollowupDone {
		id, num, _ := strings.Cut(value, "#")
		f, err := strconv.Atoi(num)
		if err != nil || f <= 0 {
			return "That button is not for a follow-up I know."
		}
		value, cmd.Followup, cmd.FollowupOp = id, f, incident.FollowupDone
	}
	n, ok := incident.ParseID(value)
	if !ok {
		return "That button is not for an incident I know."
	}
	cmd.Incident = n
	req := command.Request{Actor: c.Actor, TeamID: c.TeamID, ChannelID: c.ChannelID}
	r := h.disp.Run(ctx, req, cmd)
	return SafeText(r.Text)
}

func (h *Handler) runRunbookButton(ctx context.Context, c clickJob) string {
	if h.cfg.Runbooks == nil {
		return "Runbooks are not configured."
	}
	click := RunbookClick{RunID: c.Value, Actor: c.Actor, TeamID: c.TeamID, EnterpriseID: c.EnterpriseID, ChannelID: c.ChannelID}
	if click.TeamID == "" {
		click.TeamID = c.UserTeamID
	}
	var (
		text string
		err  error
	)
	switch c.ActionID {
	case ActionRunbookConfirm:
		text, err = h.cfg.Runbooks.Confirm(ctx, click)
	case ActionRunbookCancel:
		text, err = h.cfg.Runbooks.Cancel(ctx, click)
	case ActionRunbookApprove:
		text, err = h.cfg.Runbooks.Approve(ctx, click)
	case ActionRunbookDeny:
		text, err = h.cfg.Runbooks.Deny(ctx, click)
	}
	if err != nil {
		if incident.ErrorCode(err) == incident.EINTERNAL {
			h.log.Error("runbook button failed", zap.String("action", c.ActionID), zap.Error(err))
		}
		return SafeText(incident.ErrorMessage(err))
	}
	return text
}

// declareSubmission validates the declare form and declares the incident.
// The declaration is keyed by the view id, so submitting the same form
// twice opens one incident.
func (h *Handler) declareSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	in, problems := parseDeclareView(ic.View)
	if problems != nil {
		return slackapi.NewErrorsViewSubmissionResponse(problems), reqOK
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.AckTimeout)
	defer cancel()
	inc, err := h.svc.Declare(dctx, incident.Declaration{
		Title: in.Title, Severity: in.Severity, Description: in.Description, By: actor,
		Key: "slack-view:" + ic.View.ID, Events: fromEvents(in.From, actor),
	})
	if err != nil {
		code := incident.ErrorCode(err)
		if code == incident.EINTERNAL {
			h.log.Error("declaring from the form failed", zap.Error(err))
		}
		msg := incident.ErrorMessage(err)
		if errors.Is(err, context.DeadlineExceeded) {
			// The declaration may still commit; a second submit of this
			// form finds it by the view id instead of declaring again.
			msg = "That took too long; submit again in a moment."
		}
		return slackapi.NewErrorsViewSubmissionResponse(map[string]string{blockTitle: msg}), reqError
	}
	if in.Channel != "" {
		text := fmt.Sprintf("Declared *%s* (%s): %s\nYou are its commander; its channel `#%s` is being set up and you will be invited.",
			inc.ID(), inc.Severity, inc.Title, incident.ChannelName(inc.Number, inc.Title, 0))
		h.goBackground(func(ctx context.Context) {
			if err := h.client.PostEphemeral(ctx, in.Channel, actor.ID, text); err != nil {
				h.log.Debug("cannot confirm declaration to its declarer", zap.Error(err))
			}
		})
	}
	h.log.Info("incident declared from the form", zap.String("incident", inc.ID()), zap.String("user", actor.ID))
	return nil, reqOK
}

// claimKey records a global idempotency key; it reports false if the key
// was recorded before.
func (h *Handler) claimKey(ctx context.Context, key string) (bool, error) {
	fresh := false
	err := update(ctx, h.svc.Store(), func(tx incident.Tx) error {
		var err error
		fresh, err = firstTime(tx, key, h.cfg.Clock.Now())
		return err
	})
	return fresh, err
}

// firstTime records the idempotency key in tx, stamped now, and reports
// whether it was new.
func firstTime(tx incident.Tx, key string, now time.Time) (bool, error) {
	if _, seen, err := tx.Key(key); err != nil || seen {
		return false, err
	}
	return true, tx.PutKey(key, nil, now)
}

// batcher is a store that can share one commit among concurrent callers
// (boltstore.Store.Batch); fn may run more than once.
type batcher interface {
	Batch(ctx context.Context, fn func(incident.Tx) error) error
}

// update runs fn in a durable transaction, sharing the commit with
// concurrent callers when the store can.
func update(ctx context.Context, s incident.Store, fn func(incident.Tx) error) error {
	if b, ok := s.(batcher); ok {
		return b.Batch(ctx, fn)
	}
	return s.Update(ctx, fn)
}
