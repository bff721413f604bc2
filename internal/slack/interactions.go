package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

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
		return nil, h.blockAction(ctx, ic, ic.ActionCallback.BlockActions[0], actor)
	case slackapi.InteractionTypeViewSubmission:
		if ic.View.CallbackID != DeclareCallbackID {
			return nil, reqOK
		}
		if ic.View.ID == "" || len(ic.View.ID) > maxIDLength {
			// The view id is the declaration's idempotency key.
			return nil, reqMalformed
		}
		return h.declareSubmission(ctx, ic, actor)
	case slackapi.InteractionTypeShortcut:
		if ic.CallbackID == DeclareCallbackID && ic.TriggerID != "" {
			h.goBackground(func(ctx context.Context) {
				if err := h.client.openView(ctx, ic.TriggerID, declareView("", 0)); err != nil {
					h.log.Warn("cannot open the declare form", zap.String("user", actor.ID), zap.Error(err))
				}
			})
		}
		return nil, reqOK
	}
	return nil, reqOK
}

// blockAction handles a button click. Only the action id and the value (an
// incident id or a run id) are taken from the click; who clicked comes
// from the signed payload. A replayed click (same user, action and
// action_ts) does nothing the second time.
func (h *Handler) blockAction(ctx context.Context, ic *slackapi.InteractionCallback, a *slackapi.BlockAction, actor incident.Actor) string {
	verb, isIncident := buttonVerbs[a.ActionID]
	isRunbook := a.ActionID == ActionRunbookConfirm || a.ActionID == ActionRunbookCancel ||
		a.ActionID == ActionRunbookApprove || a.ActionID == ActionRunbookDeny
	if !isIncident && !isRunbook {
		return reqOK
	}
	if len(ic.Team.ID) > maxIDLength || len(actor.ID) > maxIDLength || len(a.ActionTs) > maxIDLength {
		return reqMalformed // not Slack's: they key the replay record
	}
	key := fmt.Sprintf("slack-action:%s:%s:%s:%s", ic.Team.ID, actor.ID, a.ActionID, a.ActionTs)
	fresh, err := h.claimKey(ctx, key)
	switch {
	case err != nil:
		h.log.Error("cannot record slack button click", zap.Error(err))
		return reqError
	case !fresh:
		h.log.Info("ignoring replayed slack button click", zap.String("action", a.ActionID), zap.String("user", actor.ID))
		return reqDuplicate
	}
	responseURL := ic.ResponseURL
	ephemeral := ic.Container.IsEphemeral
	h.goBackground(func(ctx context.Context) {
		var text string
		if isIncident {
			text = h.runButton(ctx, ic, a, verb, actor)
		} else {
			text = h.runRunbookButton(ctx, ic, a, actor)
		}
		if text == "" || responseURL == "" {
			return
		}
		// A card shown only to this person (a runbook confirmation) is
		// replaced by the outcome so its buttons cannot be used again.
		if err := h.client.Respond(ctx, responseURL, Response{Text: text, ReplaceOriginal: ephemeral && isRunbook}); err != nil {
			h.log.Warn("cannot answer slack button click", zap.String("action", a.ActionID), zap.Error(err))
		}
	})
	return reqOK
}

func (h *Handler) runButton(ctx context.Context, ic *slackapi.InteractionCallback, a *slackapi.BlockAction, verb command.Verb, actor incident.Actor) string {
	cmd := command.Command{Verb: verb}
	value := a.Value
	if a.ActionID == ActionFollowupDone {
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
	req := command.Request{Actor: actor, TeamID: ic.Team.ID, ChannelID: ic.Channel.ID}
	r := h.disp.Run(ctx, req, cmd)
	return SafeText(r.Text)
}

func (h *Handler) runRunbookButton(ctx context.Context, ic *slackapi.InteractionCallback, a *slackapi.BlockAction, actor incident.Actor) string {
	if h.cfg.Runbooks == nil {
		return "Runbooks are not configured."
	}
	click := RunbookClick{RunID: a.Value, Actor: actor, TeamID: ic.Team.ID, EnterpriseID: ic.Enterprise.ID, ChannelID: ic.Channel.ID}
	if click.TeamID == "" {
		click.TeamID = ic.User.TeamID
	}
	var (
		text string
		err  error
	)
	switch a.ActionID {
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
			h.log.Error("runbook button failed", zap.String("action", a.ActionID), zap.Error(err))
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
		Key: "slack-view:" + ic.View.ID,
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
		fresh = false
		if _, ok, err := tx.Key(key); err != nil || ok {
			return err
		}
		fresh = true
		return tx.PutKey(key, nil, h.cfg.Clock.Now())
	})
	return fresh, err
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
