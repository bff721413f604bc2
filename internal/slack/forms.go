package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// The forms that `/incident update` and `/incident resolve` open when they
// are typed without text: their callback ids and the block (and action)
// ids of their inputs.
const (
	UpdateCallbackID  = "incident_update"
	ResolveCallbackID = "incident_resolve"
	blockUpdateText   = "update_text"
	blockResolution   = "resolution"
)

// form describes one of the two forms.
type form struct {
	verb       command.Verb
	callbackID string
	title      string // the modal's title (Slack allows 24 characters)
	submit     string
	block      string
	label      string
	hint       string
	missing    string // the error when the text is empty
	// facts are optional fields, filled in with the incident's current
	// value, that correct it before the command runs (the resolve form
	// asks for the summary and impact the postmortem needs).
	facts []factField
}

// factField is an optional field of a form that corrects one fact.
type factField struct {
	block, label, hint string
	verb               command.Verb
	fact               incident.Fact
	current            func(*incident.Incident) string
}

var (
	updateForm = form{
		verb: command.VerbUpdate, callbackID: UpdateCallbackID, title: "Status update", submit: "Post update",
		block: blockUpdateText, label: "Status update for stakeholders",
		hint:    "What is happening, what is being done, when the next update comes",
		missing: "Write the update for stakeholders.",
	}
	resolveForm = form{
		verb: command.VerbResolve, callbackID: ResolveCallbackID, title: "Resolve incident", submit: "Resolve",
		block: blockResolution, label: "Resolution",
		hint:    "What ended the impact, and what is left to do",
		missing: "Say how the incident was resolved.",
		facts: []factField{
			{block: "summary", label: "Summary (optional)", hint: "What happened, for the summary card and the postmortem",
				verb: command.VerbSummary, fact: incident.FactSummary, current: func(inc *incident.Incident) string { return inc.Description }},
			{block: "impact", label: "Customer impact (optional)", hint: "Who was affected and how",
				verb: command.VerbImpact, fact: incident.FactImpact, current: func(inc *incident.Incident) string { return inc.Impact }},
		},
	}
)

// formFor returns the form a command opens: `update` or `resolve` (or an
// alias) alone. Naming an incident (`resolve INC-7`) runs the command as
// typed, as before the forms.
func formFor(text string) (form, bool) {
	fields := strings.Fields(text)
	if len(fields) != 1 {
		return form{}, false
	}
	switch verb, _ := command.Lookup(fields[0]); verb {
	case command.VerbUpdate:
		return updateForm, true
	case command.VerbResolve:
		return resolveForm, true
	}
	return form{}, false
}

// openForm opens the update or resolve form for a command typed without
// text in an incident's channel. It reports false when the command is not
// one of those, or the channel is not an incident's (or it is resolved,
// for resolve): the command then runs as typed and gives its usual answer.
func (h *Handler) openForm(ctx context.Context, sc slackapi.SlashCommand, text string) (reply, bool) {
	f, ok := formFor(text)
	if !ok || sc.TriggerID == "" || sc.ChannelID == "" {
		return reply{}, false
	}
	inc, err := h.svc.Get(ctx, incident.Ref{ChannelID: sc.ChannelID})
	if err != nil || (f.verb == command.VerbResolve && inc.Status == incident.StatusResolved) {
		return reply{}, false
	}
	if err := h.client.openView(ctx, sc.TriggerID, f.view(inc, sc.ChannelID)); err != nil {
		h.log.Warn("cannot open a form", zap.String("form", f.callbackID), zap.String("user", sc.UserID), zap.Error(err))
		return reply{Text: SafeText(fmt.Sprintf("I could not open the form. Type it instead: `%s`.", command.Usage(f.verb)))}, true
	}
	return reply{}, true
}

// formMeta is a form's private_metadata: the incident and the channel the
// command ran in (where the answer goes).
type formMeta struct {
	Incident int64  `json:"n"`
	Channel  string `json:"c,omitempty"`
}

func (f form) view(inc *incident.Incident, channel string) slackapi.ModalViewRequest {
	meta := formMeta{Incident: inc.Number}
	if channelIDShape.MatchString(channel) {
		meta.Channel = channel
	}
	raw, _ := json.Marshal(meta)
	input := slackapi.NewPlainTextInputBlockElement(plain(f.hint), f.block)
	input.Multiline = true
	input.MaxLength = incident.MaxTextLength
	about := fmt.Sprintf("*%s* (%s, %s): %s", inc.ID(), inc.Severity, inc.Status, EscapeText(inc.Title))
	blocks := []slackapi.Block{
		slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, cut(about, 3000), false, false), nil, nil),
		slackapi.NewInputBlock(f.block, plain(f.label), nil, input),
	}
	for _, ff := range f.facts {
		el := slackapi.NewPlainTextInputBlockElement(plain(ff.hint), ff.block)
		el.Multiline = true
		el.MaxLength = incident.MaxTextLength
		el.InitialValue = cut(ff.current(inc), incident.MaxTextLength)
		b := slackapi.NewInputBlock(ff.block, plain(ff.label), nil, el)
		b.Optional = true
		blocks = append(blocks, b)
	}
	return slackapi.ModalViewRequest{
		Type:            slackapi.VTModal,
		CallbackID:      f.callbackID,
		Title:           plain(f.title),
		Submit:          plain(f.submit),
		Close:           plain("Cancel"),
		PrivateMetadata: string(raw),
		Blocks:          slackapi.Blocks{BlockSet: blocks},
	}
}

func (h *Handler) updateSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	return h.formSubmission(ctx, ic, actor, updateForm)
}

func (h *Handler) resolveSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	return h.formSubmission(ctx, ic, actor, resolveForm)
}

// formSubmission validates a submitted update or resolve form on the
// server and runs the command it stands for, as if it had been typed. A
// problem is answered on the field (response_action "errors") and the
// form stays open. The view id is recorded once the command succeeded, so
// a second submit of the same form does nothing.
func (h *Handler) formSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor, f form) (any, string) {
	var meta formMeta
	if err := json.Unmarshal([]byte(ic.View.PrivateMetadata), &meta); err != nil || meta.Incident <= 0 {
		return nil, reqMalformed
	}
	value := func(block string) string {
		if ic.View.State == nil {
			return ""
		}
		return strings.TrimSpace(fromSlack(ic.View.State.Values[block][block].Value))
	}
	text := value(f.block)
	problems := map[string]string{}
	if text == "" {
		problems[f.block] = f.missing
	}
	for _, b := range append([]string{f.block}, f.blocks()...) {
		if n := utf8.RuneCountInString(value(b)); n > incident.MaxTextLength {
			problems[b] = fmt.Sprintf("Keep it to %d characters (it has %d).", incident.MaxTextLength, n)
		}
	}
	if len(problems) > 0 {
		return slackapi.NewErrorsViewSubmissionResponse(problems), reqOK
	}
	h.forms.Lock()
	defer h.forms.Unlock()
	key := "slack-form:" + ic.View.ID
	done := false
	if err := h.svc.Store().View(ctx, func(tx incident.Tx) error {
		_, seen, err := tx.Key(key)
		done = seen
		return err
	}); err != nil {
		h.log.Error("cannot read a form's record", zap.Error(err))
		return fieldError(f.block, "I could not record that; try again in a moment."), reqError
	}
	if done {
		return nil, reqDuplicate
	}
	rctx, cancel := context.WithTimeout(ctx, h.cfg.AckTimeout)
	defer cancel()
	req := command.Request{Actor: actor, TeamID: ic.Team.ID, ChannelID: meta.Channel}
	if len(f.facts) > 0 {
		// Facts first, so the resolution's announcement shows them; a fact
		// left as it was, or emptied, is not changed.
		inc, err := h.svc.Get(rctx, incident.Ref{Number: meta.Incident})
		if err != nil {
			return fieldError(f.block, plainReply(incident.ErrorMessage(err))), reqOK
		}
		for _, ff := range f.facts {
			v := value(ff.block)
			if v == "" || v == strings.TrimSpace(ff.current(inc)) {
				continue
			}
			if r := h.disp.Run(rctx, req, command.Command{Verb: ff.verb, Incident: meta.Incident, Fact: ff.fact, Text: v}); r.Error {
				return fieldError(ff.block, plainReply(r.Text)), reqOK
			}
		}
	}
	r := h.disp.Run(rctx, req, command.Command{Verb: f.verb, Incident: meta.Incident, Text: text})
	if r.Error {
		msg := r.Text
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			msg = "That took too long; submit again in a moment."
		}
		return fieldError(f.block, plainReply(msg)), reqOK
	}
	if _, err := h.claimKey(ctx, key); err != nil {
		// Done, but not recorded: a second submit would say why it failed.
		h.log.Warn("cannot record a form as done", zap.Error(err))
	}
	if meta.Channel != "" {
		text := SafeText(r.Text)
		h.goBackground(func(ctx context.Context) {
			if err := h.client.PostEphemeral(ctx, meta.Channel, actor.ID, text); err != nil {
				h.log.Debug("cannot confirm a form to its sender", zap.Error(err))
			}
		})
	}
	return nil, reqOK
}

// blocks are the ids of the form's optional fact fields.
func (f form) blocks() []string {
	var out []string
	for _, ff := range f.facts {
		out = append(out, ff.block)
	}
	return out
}

// fieldError is a response_action "errors" for one block.
func fieldError(block, msg string) *slackapi.ViewSubmissionResponse {
	return slackapi.NewErrorsViewSubmissionResponse(map[string]string{block: msg})
}

// plainReply drops the mrkdwn of a reply for a form's field error, which
// Slack shows as plain text.
func plainReply(s string) string {
	s = strings.NewReplacer("*", "", "`", "").Replace(s)
	if i := strings.Index(s, "\nUsage:"); i >= 0 {
		s = s[:i]
	}
	return cut(s, 300)
}
