package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Shortcut is a shortcut the app declares in its manifests
// (deploy/slack/manifest.yaml and manifest-socket.yaml).
type Shortcut struct {
	Type       string // "global" or "message", as a manifest says
	CallbackID string
	Name       string // the name people see in Slack
}

// The callback ids of the message shortcuts and of the view that asks which
// incident a message goes to. DeclareCallbackID (modal.go) is the global
// shortcut and the declare form.
const (
	DeclareFromMessageCallbackID = "declare_from_message"
	AddToTimelineCallbackID      = "add_to_timeline"
	PickIncidentCallbackID       = "add_to_timeline_pick"
	blockPickIncident            = "incident"
)

// Shortcuts are every shortcut the bot handles. Both manifests declare
// exactly these (manifest_test.go), and each has a handler
// (shortcutHandlers): Incident Bot once shipped a shortcut without one
// (incidentbot issue #660).
var Shortcuts = []Shortcut{
	{Type: "global", CallbackID: DeclareCallbackID, Name: "Declare incident"},
	{Type: "message", CallbackID: DeclareFromMessageCallbackID, Name: "Declare incident from this message"},
	{Type: "message", CallbackID: AddToTimelineCallbackID, Name: "Add to incident timeline"},
}

// interactionFunc handles one interaction and returns the acknowledgement
// body (nil: an empty 200) and the metric outcome.
type interactionFunc func(h *Handler, ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string)

// shortcutHandlers handle the shortcuts, keyed by shortcutKey.
var shortcutHandlers = map[string]interactionFunc{
	shortcutKey("global", DeclareCallbackID):             (*Handler).declareShortcut,
	shortcutKey("message", DeclareFromMessageCallbackID): (*Handler).declareFromMessage,
	shortcutKey("message", AddToTimelineCallbackID):      (*Handler).addToTimeline,
}

// viewHandlers handle the submissions of the bot's modals, by callback id.
var viewHandlers = map[string]interactionFunc{
	DeclareCallbackID:      (*Handler).declareSubmission,
	PickIncidentCallbackID: (*Handler).pickSubmission,
	UpdateCallbackID:       (*Handler).updateSubmission,
	ResolveCallbackID:      (*Handler).resolveSubmission,
}

// shortcutKey names a shortcut by its manifest type and callback id. A
// global shortcut arrives as interaction type "shortcut", a message
// shortcut as "message_action" (api.slack.com/reference/interaction-payloads/shortcuts).
func shortcutKey(manifestType, callbackID string) string { return manifestType + " " + callbackID }

// shortcut runs the handler of a global or message shortcut. One that has
// none is acknowledged and logged: Slack shows nothing to the person.
func (h *Handler) shortcut(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	kind := "global"
	if ic.Type == slackapi.InteractionTypeMessageAction {
		kind = "message"
	}
	fn, ok := shortcutHandlers[shortcutKey(kind, ic.CallbackID)]
	if !ok {
		h.log.Warn("shortcut without a handler", zap.String("type", kind), zap.String("callback_id", ic.CallbackID))
		return nil, reqOK
	}
	return fn(h, ctx, ic, actor)
}

// viewSubmission runs the handler of a submitted modal.
func (h *Handler) viewSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	fn, ok := viewHandlers[ic.View.CallbackID]
	if !ok {
		return nil, reqOK
	}
	if ic.View.ID == "" || len(ic.View.ID) > maxIDLength {
		// The view id is the submission's idempotency key.
		return nil, reqMalformed
	}
	return fn(h, ctx, ic, actor)
}

// declareShortcut opens the declare form from the global shortcut.
func (h *Handler) declareShortcut(_ context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	if ic.TriggerID == "" {
		return nil, reqMalformed
	}
	h.goBackground(func(ctx context.Context) {
		if err := h.client.openView(ctx, ic.TriggerID, declareView("", 0)); err != nil {
			h.log.Warn("cannot open the declare form", zap.String("user", actor.ID), zap.Error(err))
		}
	})
	return nil, reqOK
}

// messageRef is the message a message shortcut was used on, as it travels
// in a view's private_metadata and in the job that records it. Text is
// Slack's text (entities not decoded), shortened to fit the metadata.
type messageRef struct {
	Channel     string `json:"c"`
	TS          string `json:"ts"`
	Thread      string `json:"th,omitempty"`
	Author      string `json:"u,omitempty"` // a person's user id
	AuthorName  string `json:"n,omitempty"` // an app's name, when no person wrote it
	BotID       string `json:"b,omitempty"`
	SubType     string `json:"st,omitempty"`
	Text        string `json:"t,omitempty"`
	Link        string `json:"l,omitempty"`
	ResponseURL string `json:"r,omitempty"` // the shortcut's, to answer later
	// FormChannel is where the declare form was opened (declare form only).
	FormChannel string `json:"f,omitempty"`
}

var tsShape = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,9}$`)

// messageOf reads the message of a message shortcut; false if the payload
// does not name one.
func messageOf(ic *slackapi.InteractionCallback) (messageRef, bool) {
	m := ic.Message
	ts := m.Timestamp
	if ts == "" {
		ts = ic.MessageTs
	}
	ref := messageRef{
		Channel: ic.Channel.ID, TS: ts, Thread: m.ThreadTimestamp, Author: m.User, BotID: m.BotID,
		SubType: m.SubType, Text: m.Text, ResponseURL: ic.ResponseURL,
	}
	if ref.Author == "" {
		ref.AuthorName = m.Username
		if m.BotProfile != nil && m.BotProfile.Name != "" {
			ref.AuthorName = m.BotProfile.Name
		}
		ref.AuthorName = cut(incident.CleanLine(ref.AuthorName), 80)
	}
	if ref.Thread == ts {
		ref.Thread = ""
	}
	ok := channelIDShape.MatchString(ref.Channel) && len(ref.Channel) <= maxIDLength && tsShape.MatchString(ts) &&
		(ref.Thread == "" || tsShape.MatchString(ref.Thread)) && len(ref.Author) <= maxIDLength && len(ref.BotID) <= maxIDLength &&
		len(ic.TriggerID) <= maxIDLength && len(ic.Team.ID) <= maxIDLength && len(ref.ResponseURL) <= 2000
	return ref, ok
}

// msg is the message as the capture job takes it.
func (m messageRef) msg() Msg {
	return Msg{TS: m.TS, ThreadTS: m.Thread, User: m.Author, BotID: m.BotID, SubType: m.SubType, Text: m.Text}
}

// maxMetadata is the size limit of a view's private_metadata, in
// characters (docs.slack.dev/reference/views: "max 3000 characters").
const maxMetadata = 3000

// metadata encodes the reference for a view's private_metadata, shortening
// the message text until it fits.
func (m messageRef) metadata() string {
	for {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(m)
		s := strings.TrimSpace(b.String())
		n := utf8.RuneCountInString(s)
		if n <= maxMetadata || m.Text == "" {
			return s
		}
		r := []rune(m.Text)
		keep := max(len(r)-(n-maxMetadata)-8, 0) // JSON escapes may count twice
		m.Text = string(r[:keep])
		if keep > 0 {
			m.Text += "…"
		}
	}
}

// parseMessageMetadata decodes messageRef.metadata; false if it is not one.
func parseMessageMetadata(s string) (messageRef, bool) {
	var m messageRef
	if !strings.HasPrefix(s, "{") || json.Unmarshal([]byte(s), &m) != nil {
		return messageRef{}, false
	}
	ok := channelIDShape.MatchString(m.Channel) && tsShape.MatchString(m.TS) && (m.Thread == "" || tsShape.MatchString(m.Thread))
	if !incident.IsWebLink(m.Link) {
		m.Link = ""
	}
	if m.FormChannel != "" && !channelIDShape.MatchString(m.FormChannel) {
		m.FormChannel = ""
	}
	return m, ok
}

// event is the timeline entry that keeps the message: its author, its own
// time, its text and its address. It is keyed by channel and ts like a
// pinned message, so a message is on a timeline once, however it got there.
func (m messageRef) event(by incident.Actor) incident.Event {
	data := map[string]string{"author": m.Author, "channel": m.Channel, "ts": m.TS}
	if m.Author == "" && m.AuthorName != "" {
		data["author_name"] = m.AuthorName
	}
	if incident.IsWebLink(m.Link) {
		data["link"] = m.Link
	}
	return incident.Event{
		Kind: incident.EventMessagePinned, Key: pinKey(m.Channel, m.TS), At: TSTime(m.TS), Actor: by,
		Text: cut(fromSlack(m.Text), incident.MaxTextLength), Data: data,
	}
}

// pinKey is the timeline key of a message kept on a timeline.
func pinKey(channel, ts string) string { return "pin:" + channel + ":" + ts }

var domainShape = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// permalinkWait bounds chat.getPermalink before a form opens: the
// trigger id expires a few seconds after the shortcut.
const permalinkWait = time.Second

// link returns the message's address: chat.getPermalink's answer, or,
// when that fails, the address built from the workspace's domain in the
// form the method returns ("https://ghostbusters.slack.com/archives/C1H9RESGL/p135854651700023?thread_ts=1358546515.000008&cid=C1H9RESGL",
// https://api.slack.com/methods/chat.getPermalink). "" if neither works.
func (h *Handler) link(ctx context.Context, m messageRef, domain string) string {
	ctx, cancel := context.WithTimeout(ctx, permalinkWait)
	defer cancel()
	l, err := h.client.Permalink(ctx, m.Channel, m.TS)
	if err == nil && incident.IsWebLink(l) {
		return l
	}
	h.log.Debug("no permalink from slack; building it", zap.String("channel", m.Channel), zap.Error(err))
	return builtLink(m, domain)
}

func builtLink(m messageRef, domain string) string {
	if !domainShape.MatchString(domain) {
		return ""
	}
	l := fmt.Sprintf("https://%s.slack.com/archives/%s/p%s", domain, m.Channel, strings.Replace(m.TS, ".", "", 1))
	if m.Thread != "" {
		l += fmt.Sprintf("?thread_ts=%s&cid=%s", m.Thread, m.Channel)
	}
	return l
}

// Permalink returns a message's address (chat.getPermalink: no scope
// needed; "hundreds of requests per minute").
func (c *Client) Permalink(ctx context.Context, channelID, ts string) (string, error) {
	var link string
	err := c.call(ctx, "chat.getPermalink", "", func(ctx context.Context) error {
		var err error
		link, err = c.api.GetPermalinkContext(ctx, &slackapi.PermalinkParameters{Channel: channelID, Ts: ts})
		return err
	})
	return link, err
}

// --- Declare incident from this message ---

// declareFromMessage opens the declare form filled in from the message:
// the title from its first line, the description from its text. The
// message's address travels in the form's metadata, and the submitted
// declaration records it on the new timeline (declareSubmission).
func (h *Handler) declareFromMessage(_ context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	m, ok := messageOf(ic)
	if !ok || ic.TriggerID == "" {
		return nil, reqMalformed
	}
	domain := ic.Team.Domain
	h.goBackground(func(ctx context.Context) {
		m.Link = h.link(ctx, m, domain)
		m.FormChannel = m.Channel
		if err := h.client.openView(ctx, ic.TriggerID, declareFromMessageView(m)); err != nil {
			h.log.Warn("cannot open the declare form", zap.String("user", actor.ID), zap.Error(err))
			h.answer(ctx, m.ResponseURL, "I could not open the declare form. Try the shortcut again, or declare with `/incident declare [sev1-4] <title>`.")
		}
	})
	return nil, reqOK
}

// declareFromMessageView is the declare form filled in from m.
func declareFromMessageView(m messageRef) slackapi.ModalViewRequest {
	v := declareView(m.Channel, 0)
	text := fromSlack(m.Text)
	title := ""
	for line := range strings.SplitSeq(text, "\n") {
		if title = incident.CleanLine(line); title != "" {
			break
		}
	}
	setInitial(&v, blockTitle, cut(title, incident.MaxTitleLength))
	setInitial(&v, blockDescription, cut(strings.TrimSpace(text), incident.MaxTextLength))
	v.PrivateMetadata = m.metadata()
	return v
}

// setInitial sets the initial value of the plain text input in block.
func setInitial(v *slackapi.ModalViewRequest, block, value string) {
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slackapi.InputBlock); ok && in.BlockID == block {
			if el, ok := in.Element.(*slackapi.PlainTextInputBlockElement); ok {
				el.InitialValue = value
			}
		}
	}
}

// declareMetadata reads the declare form's private_metadata: a channel id
// (the form opened from a command), or a messageRef (from a message).
func declareMetadata(meta string) (channel string, from *messageRef) {
	if channelIDShape.MatchString(meta) {
		return meta, nil
	}
	if m, ok := parseMessageMetadata(meta); ok {
		return m.FormChannel, &m
	}
	return "", nil
}

// fromEvents are the timeline entries a declaration from a message adds.
func fromEvents(from *messageRef, by incident.Actor) []incident.Event {
	if from == nil {
		return nil
	}
	return []incident.Event{from.event(by)}
}

// answer tells the person who used a shortcut something, through its
// response_url; best effort.
func (h *Handler) answer(ctx context.Context, responseURL, text string) {
	if responseURL == "" {
		return
	}
	if err := h.client.Respond(ctx, responseURL, Response{Text: text}); err != nil {
		h.log.Debug("cannot answer a shortcut", zap.Error(err))
	}
}

// --- Add to incident timeline ---

// addToTimeline keeps a message on an incident's timeline. In an incident
// channel the message goes to that incident: a capture job is stored in
// one transaction with the shortcut's replay key before the
// acknowledgement, like a pin. Elsewhere a form asks which open incident.
// Anyone may do it, as anyone may add a note.
func (h *Handler) addToTimeline(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	m, ok := messageOf(ic)
	if !ok {
		return nil, reqMalformed
	}
	m.Link = builtLink(m, ic.Team.Domain) // the job asks Slack for the real one
	queued := false
	outcome := reqOK
	err := update(ctx, h.svc.Store(), func(tx incident.Tx) error {
		queued, outcome = false, reqOK
		inc, err := tx.IncidentByChannel(m.Channel)
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		if ic.TriggerID != "" {
			// A redelivered envelope carries the same trigger id.
			fresh, err := firstTime(tx, "slack-shortcut:"+ic.Team.ID+":"+ic.TriggerID, h.cfg.Clock.Now())
			if err != nil || !fresh {
				if err == nil {
					outcome = reqDuplicate
				}
				return err
			}
		}
		queued = true
		return enqueueCapture(tx, inc.Number, m, actor.ID, h.cfg.Clock.Now())
	})
	switch {
	case err != nil:
		h.log.Error("cannot store a message for the timeline", zap.Error(err))
		return nil, reqError
	case outcome == reqDuplicate || queued:
		return nil, outcome
	case ic.TriggerID == "":
		return nil, reqMalformed
	}
	h.goBackground(func(ctx context.Context) {
		incs, err := h.svc.List(ctx, incident.Filter{OpenOnly: true, Newest: true, Limit: maxOptions})
		if err != nil {
			h.log.Error("cannot list open incidents", zap.Error(err))
			h.answer(ctx, m.ResponseURL, "I could not list the open incidents; try again in a moment.")
			return
		}
		if len(incs) == 0 {
			h.answer(ctx, m.ResponseURL, "There is no open incident to add this message to. Declare one with the *Declare incident from this message* shortcut.")
			return
		}
		if err := h.client.openView(ctx, ic.TriggerID, pickIncidentView(m, incs)); err != nil {
			h.log.Warn("cannot open the incident picker", zap.String("user", actor.ID), zap.Error(err))
			h.answer(ctx, m.ResponseURL, "I could not open the form. Try again, or use the shortcut in the incident's channel.")
		}
	})
	return nil, reqOK
}

// enqueueCapture stores the job that records m on incident n.
func enqueueCapture(tx incident.Tx, n int64, m messageRef, by string, now time.Time) error {
	msg := m.msg()
	raw, err := json.Marshal(eventJob{
		Incident: n, Channel: m.Channel, TS: m.TS, Message: &msg, By: by,
		Shortcut: &shortcutJob{Link: m.Link, ResponseURL: m.ResponseURL, AuthorName: m.AuthorName},
	})
	if err != nil {
		return err
	}
	return tx.Enqueue(&incident.Job{Kind: JobCaptureMessage, Key: recordJobKey(n), Due: now, Payload: raw, Created: now})
}

// maxOptions is the most options a static select takes
// (docs.slack.dev/reference/block-kit/block-elements/select-menu-element).
const maxOptions = 100

// pickIncidentView asks which open incident the message goes to.
func pickIncidentView(m messageRef, incs []*incident.Incident) slackapi.ModalViewRequest {
	var options []*slackapi.OptionBlockObject
	for _, inc := range incs {
		label := fmt.Sprintf("%s %s: %s", inc.ID(), inc.Severity, inc.Title)
		options = append(options, slackapi.NewOptionBlockObject(inc.ID(), plain(cut(label, 75)), nil))
	}
	sel := slackapi.NewOptionsSelectBlockElement(slackapi.OptTypeStatic, plain("Choose an incident"), blockPickIncident, options...)
	if len(options) == 1 {
		sel.InitialOption = options[0]
	}
	preview := cut(incident.CleanLine(fromSlack(m.Text)), 200)
	if preview == "" {
		preview = "(no text)"
	}
	m.Text = cut(m.Text, incident.MaxTextLength)
	return slackapi.ModalViewRequest{
		Type:            slackapi.VTModal,
		CallbackID:      PickIncidentCallbackID,
		Title:           plain("Add to timeline"),
		Submit:          plain("Add"),
		Close:           plain("Cancel"),
		PrivateMetadata: m.metadata(),
		Blocks: slackapi.Blocks{BlockSet: []slackapi.Block{
			slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, "Message: "+preview, false, false), nil, nil),
			slackapi.NewInputBlock(blockPickIncident, plain("Incident"), nil, sel),
		}},
	}
}

// pickSubmission stores the capture job for the incident chosen in the
// picker. A second submission of the same form stores the job again; the
// timeline keeps the message once (its key is channel and ts).
func (h *Handler) pickSubmission(ctx context.Context, ic *slackapi.InteractionCallback, actor incident.Actor) (any, string) {
	m, ok := parseMessageMetadata(ic.View.PrivateMetadata)
	if !ok {
		return nil, reqMalformed
	}
	var chosen string
	if ic.View.State != nil {
		chosen = ic.View.State.Values[blockPickIncident][blockPickIncident].SelectedOption.Value
	}
	n, ok := incident.ParseID(chosen)
	if !ok {
		return slackapi.NewErrorsViewSubmissionResponse(map[string]string{blockPickIncident: "Choose an incident."}), reqOK
	}
	err := update(ctx, h.svc.Store(), func(tx incident.Tx) error {
		if _, err := tx.Incident(n); err != nil {
			return err
		}
		return enqueueCapture(tx, n, m, actor.ID, h.cfg.Clock.Now())
	})
	if err != nil {
		if incident.ErrorCode(err) == incident.EINTERNAL {
			h.log.Error("cannot store a message for the timeline", zap.Error(err))
			return slackapi.NewErrorsViewSubmissionResponse(map[string]string{blockPickIncident: "I could not record that; try again in a moment."}), reqError
		}
		return slackapi.NewErrorsViewSubmissionResponse(map[string]string{blockPickIncident: incident.ErrorMessage(err)}), reqOK
	}
	return nil, reqOK
}

// shortcutJob is what a capture job from the shortcut adds to the pin's
// payload.
type shortcutJob struct {
	Link        string `json:"link,omitempty"` // built from the workspace domain, if Slack gives none
	ResponseURL string `json:"response_url,omitempty"`
	AuthorName  string `json:"author_name,omitempty"`
}

// addFromShortcut records a message someone added with the shortcut, with
// its address, and tells them. Unlike a pin it may be an app's message (an
// alert), but never the bot's own: those are the record already.
func (j *Jobs) addFromShortcut(ctx context.Context, p eventJob, m Msg, log *zap.Logger) error {
	s := p.Shortcut
	inc, err := j.Service.Get(ctx, incident.Ref{Number: p.Incident})
	if err != nil {
		return err
	}
	if j.ownMessage(ctx, m) {
		j.tell(ctx, s.ResponseURL, fmt.Sprintf("That is my own message; it is already part of *%s*'s record.", inc.ID()))
		return nil
	}
	ref := messageRef{Channel: p.Channel, TS: p.TS, Thread: m.ThreadTS, Author: m.User, AuthorName: s.AuthorName, Text: m.Text, Link: s.Link}
	if l, err := j.Client.Permalink(ctx, p.Channel, p.TS); err == nil && incident.IsWebLink(l) {
		ref.Link = l
	} else if err != nil {
		log.Info("no permalink from slack; keeping the built one", zap.Error(err))
	}
	recorded, err := j.Service.Record(ctx, incident.Ref{Number: p.Incident}, ref.event(incident.Actor{ID: p.By, Source: incident.SourceSlack}))
	if err != nil {
		return err
	}
	log.Info("message added to the timeline", zap.Bool("new", recorded), zap.String("by", p.By))
	text := fmt.Sprintf("Added to *%s*'s timeline.", inc.ID())
	if !recorded {
		text = fmt.Sprintf("That message is already on *%s*'s timeline.", inc.ID())
	}
	j.tell(ctx, s.ResponseURL, text)
	return nil
}

// ownMessage reports whether the bot wrote m.
func (j *Jobs) ownMessage(ctx context.Context, m Msg) bool {
	bot := j.Client.BotUserID()
	if bot == "" {
		if id, _, err := j.Client.AuthTest(ctx); err == nil {
			bot = id.UserID
		}
	}
	return bot != "" && m.User == bot
}

func (j *Jobs) tell(ctx context.Context, responseURL, text string) {
	if responseURL == "" {
		return
	}
	if err := j.Client.Respond(ctx, responseURL, Response{Text: text}); err != nil {
		j.logger().Debug("cannot answer a shortcut", zap.Error(err))
	}
}
