package slack

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// WorkingText is the acknowledgement of a command that takes longer than
// the acknowledgement deadline; the answer follows through response_url.
const WorkingText = "Working on it…"

// parseSlashCommand decodes a slash command's form body.
func parseSlashCommand(body []byte) (slackapi.SlashCommand, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return slackapi.SlashCommand{}, err
	}
	sc := slackapi.SlashCommand{
		Token: v.Get("token"), TeamID: v.Get("team_id"), TeamDomain: v.Get("team_domain"),
		EnterpriseID: v.Get("enterprise_id"), EnterpriseName: v.Get("enterprise_name"),
		IsEnterpriseInstall: v.Get("is_enterprise_install") == "true",
		ChannelID:           v.Get("channel_id"), ChannelName: v.Get("channel_name"),
		UserID: v.Get("user_id"), UserName: v.Get("user_name"), Command: v.Get("command"),
		Text: v.Get("text"), ResponseURL: v.Get("response_url"), TriggerID: v.Get("trigger_id"),
		APIAppID: v.Get("api_app_id"),
	}
	if sc.UserID == "" {
		return sc, errors.New("slash command without user_id")
	}
	return sc, nil
}

// reply is what a command answers the person who ran it: always ephemeral.
// The zero reply acknowledges with an empty body (a modal opened instead).
type reply struct {
	Text   string
	Blocks []slackapi.Block
	// outcome is the metric outcome (reqOK when empty); not sent.
	outcome string
}

type commandAck struct {
	ResponseType string           `json:"response_type"`
	Text         string           `json:"text"`
	Blocks       []slackapi.Block `json:"blocks,omitempty"`
}

// metricOutcome is the reply's outcome label.
func (r reply) metricOutcome() string {
	if r.outcome == "" {
		return reqOK
	}
	return r.outcome
}

// ack is the body of the acknowledgement (HTTP response or Socket Mode ack
// payload); nil for an empty one.
func (r reply) ack() any {
	if r.Text == "" && len(r.Blocks) == 0 {
		return nil
	}
	return commandAck{ResponseType: "ephemeral", Text: r.Text, Blocks: r.Blocks}
}

// Replies to a slash command that was not run.
const (
	// DuplicateCommandText answers a slash command delivered again (a
	// replayed request, a redelivered Socket Mode envelope). The first
	// delivery may have been cut short by a crash, hence the advice.
	DuplicateCommandText = "That command was already received, so it is not run again. If it shows no result, `/incident timeline` tells whether it was done; type it again if not."
	// UnrecordedCommandText answers a command whose replay record could
	// not be stored: it did not run, and running it again is safe.
	UnrecordedCommandText = "I could not record that command, so it did not run. Try again in a moment."
)

// readOnlyVerbs change nothing, so running one twice is harmless and they
// need no replay record.
var readOnlyVerbs = map[command.Verb]bool{
	command.VerbHelp: true, command.VerbList: true, command.VerbStatus: true,
	command.VerbTimeline: true, command.VerbRunbooks: true, command.VerbOnCall: true, command.VerbCatchup: true,
}

// commandKey is the replay key of one slash command invocation. Slack's
// trigger_id is unique per invocation and comes with every command; when it
// is missing the caller's fallback (the request's signature over HTTP, the
// envelope id over Socket Mode) stands in. "" means the command is
// malformed (an id too long to key a record).
func commandKey(sc slackapi.SlashCommand, fallback string) string {
	if len(sc.TeamID) > maxIDLength || len(sc.TriggerID) > maxIDLength || len(fallback) > maxIDLength {
		return ""
	}
	if sc.TriggerID != "" {
		return "slack-command:" + sc.TeamID + ":trigger:" + sc.TriggerID
	}
	if fallback != "" {
		return "slack-command:" + sc.TeamID + ":" + fallback
	}
	return ""
}

// command runs a slash command and returns the acknowledgement. A command
// that changes something runs at most once per invocation: its replay key
// (see commandKey) is recorded durably before it runs, so the same request
// replayed within the signature window, or an envelope Slack redelivers,
// even after a restart, answers DuplicateCommandText and does nothing.
//
// If the command finishes within AckTimeout its reply is the
// acknowledgement; otherwise the acknowledgement says WorkingText and the
// reply goes to the response_url when the command finishes, however slow
// the store or Slack.
func (h *Handler) command(sc slackapi.SlashCommand, key string) reply {
	var (
		mu       sync.Mutex
		result   *reply
		answered bool // the acknowledgement went out without the result
	)
	done := make(chan struct{})
	started := h.goBackground(func(ctx context.Context) {
		r := h.runCommand(ctx, sc, key)
		mu.Lock()
		late := answered
		result = &r
		mu.Unlock()
		close(done)
		if !late || (r.Text == "" && len(r.Blocks) == 0) {
			return
		}
		if err := h.client.Respond(ctx, sc.ResponseURL, Response{Text: r.Text, Blocks: r.Blocks}); err != nil {
			h.log.Warn("cannot deliver late command reply", zap.String("user", sc.UserID), zap.Error(err))
		}
	})
	if !started {
		return reply{Text: "The bot is restarting; try again in a moment.", outcome: reqError}
	}
	timer := time.NewTimer(h.cfg.AckTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	mu.Lock()
	defer mu.Unlock()
	if result != nil {
		return *result
	}
	answered = true
	h.log.Info("slow slash command; replying through response_url", zap.String("user", sc.UserID))
	return reply{Text: WorkingText}
}

// runCommand parses and runs one command, once per replay key.
func (h *Handler) runCommand(ctx context.Context, sc slackapi.SlashCommand, key string) reply {
	text := fromSlack(sc.Text)
	if strings.TrimSpace(text) == "" {
		return menuReply()
	}
	if r, ok := h.openForm(ctx, sc, text); ok {
		return r
	}
	cmd, err := command.Parse(text, command.Options{})
	if err == nil && cmd.Verb == command.VerbRun {
		// Runbook parameters are parsed by the runbook engine from the
		// text as Slack sent it: it decodes Slack's escaping itself,
		// exactly once, and refuses mentions and links as values.
		text = sc.Text
		cmd, err = command.Parse(text, command.Options{})
	}
	req := command.Request{
		Text:      text,
		Actor:     incident.Actor{ID: sc.UserID, Name: sc.UserName, Source: incident.SourceSlack},
		TeamID:    sc.TeamID,
		ChannelID: sc.ChannelID,
	}
	if err != nil {
		return reply{Text: SafeText(err.Error())}
	}
	if !readOnlyVerbs[cmd.Verb] && key != "" {
		fresh, err := h.claimKey(ctx, key)
		switch {
		case err != nil:
			h.log.Error("cannot record slash command", zap.String("user", sc.UserID), zap.Error(err))
			return reply{Text: UnrecordedCommandText, outcome: reqError}
		case !fresh:
			h.log.Info("ignoring replayed slash command", zap.String("verb", string(cmd.Verb)), zap.String("user", sc.UserID))
			return reply{Text: DuplicateCommandText, outcome: reqDuplicate}
		}
	}
	if cmd.Verb == command.VerbDeclare && strings.TrimSpace(cmd.Text) == "" {
		return h.openDeclare(ctx, sc, cmd.Severity)
	}
	r := h.disp.Run(ctx, req, cmd)
	if r.NeedsTitle {
		return h.openDeclare(ctx, sc, cmd.Severity)
	}
	if r.Error {
		h.log.Debug("command refused", zap.String("verb", string(cmd.Verb)), zap.String("user", sc.UserID), zap.String("reply", r.Text))
	}
	out := reply{Text: SafeText(r.Text)}
	if len(r.Sections) > 0 {
		rs := RenderSections(r.Sections)
		out = reply{Text: rs.Text, Blocks: rs.Blocks}
	}
	if r.Catchup != nil {
		rc := RenderCatchup(*r.Catchup)
		out = reply{Text: rc.Text, Blocks: rc.Blocks}
	}
	if c := r.Confirm; c != nil {
		rc := RenderCard(Card{Text: c.Text, RunID: c.RunID, Buttons: ConfirmButtons})
		out = reply{Text: rc.Text, Blocks: rc.Blocks}
	}
	return out
}

// openDeclare opens the declare form with the command's trigger id.
func (h *Handler) openDeclare(ctx context.Context, sc slackapi.SlashCommand, sev incident.Severity) reply {
	if sc.TriggerID == "" {
		return reply{Text: "Give the incident a title: `/incident declare [sev1-4] <title>`."}
	}
	if err := h.client.openView(ctx, sc.TriggerID, declareView(sc.ChannelID, sev)); err != nil {
		h.log.Warn("cannot open the declare form", zap.String("user", sc.UserID), zap.Error(err))
		return reply{Text: SafeText("I could not open the declare form. Declare with a title instead: `/incident declare [sev1-4] <title>`.")}
	}
	return reply{}
}
