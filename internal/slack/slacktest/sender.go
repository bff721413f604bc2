package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/incidentbot/incident-bot/internal/slack"
)

// Sender plays Slack towards the bot's HTTP endpoints: it signs requests
// with the signing secret, as Slack does, and fills in response URLs and
// trigger ids served by the fake.
type Sender struct {
	BaseURL string // the bot's base URL, e.g. "http://127.0.0.1:8080"
	Secret  string // SLACK_SIGNING_SECRET
	Fake    *Server
	Now     func() time.Time // signing time (default time.Now)
	Client  *http.Client     // default http.DefaultClient
}

// Reply is the bot's answer to one request.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Reply) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Text is the "text" field of a JSON body, or the body itself.
func (r Reply) Text() string {
	var v struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(r.Body, &v) == nil {
		return v.Text
	}
	return string(r.Body)
}

// Post sends a signed POST. hdr adds headers (X-Slack-Retry-Num…).
func (s *Sender) Post(ctx context.Context, path, contentType string, body []byte, hdr http.Header) (Reply, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if s.Secret != "" {
		slack.SignRequest(req, s.Secret, now(), body)
	}
	return s.do(req)
}

func (s *Sender) do(req *http.Request) (Reply, error) {
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// Command is a slash command invocation.
type Command struct {
	User, UserName, Channel, Text string
	// ResponseURL and TriggerID are issued by the fake when empty.
	ResponseURL, TriggerID string
}

// CommandForm is the form body Slack sends for cmd.
func (s *Sender) CommandForm(cmd Command) url.Values {
	if cmd.ResponseURL == "" && s.Fake != nil {
		cmd.ResponseURL = s.Fake.NewResponseURL()
	}
	if cmd.TriggerID == "" && s.Fake != nil {
		cmd.TriggerID = s.Fake.NewTriggerID()
	}
	if cmd.UserName == "" {
		cmd.UserName = cmd.User
	}
	team := "T0TEST"
	if s.Fake != nil {
		team = s.Fake.TeamID()
	}
	return url.Values{
		"token": {"deprecated-verification-token"}, "team_id": {team}, "team_domain": {"test"},
		"channel_id": {cmd.Channel}, "channel_name": {"channel"}, "user_id": {cmd.User}, "user_name": {cmd.UserName},
		"command": {"/incident"}, "text": {cmd.Text}, "response_url": {cmd.ResponseURL}, "trigger_id": {cmd.TriggerID},
		"api_app_id": {"A0TEST"},
	}
}

// Command sends a signed slash command to POST /slack/commands.
func (s *Sender) Command(ctx context.Context, cmd Command) (Reply, error) {
	return s.Post(ctx, "/slack/commands", "application/x-www-form-urlencoded", []byte(s.CommandForm(cmd).Encode()), nil)
}

// Interaction sends a signed interaction payload to POST /slack/interactions.
func (s *Sender) Interaction(ctx context.Context, payload any) (Reply, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Reply{}, err
	}
	body := url.Values{"payload": {string(raw)}}.Encode()
	return s.Post(ctx, "/slack/interactions", "application/x-www-form-urlencoded", []byte(body), nil)
}

// Event sends a signed Events API body to POST /slack/events; retry > 0
// marks it as Slack's retry number retry.
func (s *Sender) Event(ctx context.Context, body any, retry int) (Reply, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Reply{}, err
	}
	var hdr http.Header
	if retry > 0 {
		hdr = http.Header{"X-Slack-Retry-Num": {strconv.Itoa(retry)}, "X-Slack-Retry-Reason": {"http_timeout"}}
	}
	return s.Post(ctx, "/slack/events", "application/json", raw, hdr)
}

// --- payloads, shaped as Slack documents them ---

// EventCallback wraps an inner event in the Events API envelope.
func (s *Server) EventCallback(eventID string, event map[string]any) map[string]any {
	return map[string]any{
		"token": "deprecated", "team_id": s.cfg.TeamID, "api_app_id": s.cfg.AppID, "event": event,
		"type": "event_callback", "event_id": eventID, "event_time": s.cfg.Now().Unix(),
		"authorizations":        []map[string]any{{"enterprise_id": nil, "team_id": s.cfg.TeamID, "user_id": s.cfg.BotUserID, "is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false,
	}
}

// ReactionAdded is a reaction_added event on a message.
func (s *Server) ReactionAdded(eventID, user, reaction, channel, ts string) map[string]any {
	itemUser := ""
	if m, ok := s.Message(channel, ts); ok {
		itemUser = m.User
	}
	return s.EventCallback(eventID, map[string]any{
		"type": "reaction_added", "user": user, "reaction": reaction, "item_user": itemUser,
		"item": map[string]any{"type": "message", "channel": channel, "ts": ts}, "event_ts": s.eventTS(),
	})
}

// PinAdded is a pin_added event; it carries the message, as Slack's does.
func (s *Server) PinAdded(eventID, user, channel, ts string) map[string]any {
	m, _ := s.Message(channel, ts)
	s.mu.Lock()
	msg := s.messageJSON(&m, false)
	s.mu.Unlock()
	return s.EventCallback(eventID, map[string]any{
		"type": "pin_added", "user": user, "channel_id": channel,
		"item":     map[string]any{"type": "message", "channel": channel, "message": msg, "created": s.cfg.Now().Unix(), "created_by": user},
		"event_ts": s.eventTS(),
	})
}

// MemberJoined is a member_joined_channel event. Slack sends it once the
// user is in the channel, so the fake adds them to it first (a bot that
// answers with chat.postEphemeral finds them there).
func (s *Server) MemberJoined(eventID, user, channel string) map[string]any {
	s.JoinChannel(channel, user)
	return s.EventCallback(eventID, map[string]any{
		"type": "member_joined_channel", "user": user, "channel": channel, "channel_type": "C", "team": s.cfg.TeamID, "event_ts": s.eventTS(),
	})
}

func (s *Server) eventTS() string {
	now := s.cfg.Now()
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}

// URLVerification is the url_verification handshake body.
func URLVerification(challenge string) map[string]any {
	return map[string]any{"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}
}

// BlockAction is a block_actions payload: user clicked the button
// actionID (with value) on the message ts in channel.
func (s *Server) BlockAction(user, channel, ts, actionID, value, responseURL string) map[string]any {
	s.mu.Lock()
	s.seq++
	actionTS := fmt.Sprintf("%d.%06d", s.cfg.Now().Unix(), s.seq)
	s.mu.Unlock()
	return map[string]any{
		"type": "block_actions", "api_app_id": s.cfg.AppID, "token": "deprecated", "trigger_id": s.NewTriggerID(),
		"user":         map[string]any{"id": user, "username": user, "name": user, "team_id": s.cfg.TeamID},
		"team":         map[string]any{"id": s.cfg.TeamID, "domain": "test"},
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":      map[string]any{"id": channel, "name": "channel"},
		"message":      map[string]any{"type": "message", "ts": ts},
		"response_url": responseURL,
		"actions": []map[string]any{{
			"action_id": actionID, "block_id": "incident_actions", "type": "button", "value": value, "action_ts": actionTS,
			"text": map[string]any{"type": "plain_text", "text": actionID},
		}},
	}
}

// ViewSubmission is a view_submission payload for a view opened earlier,
// with the input values by block id (plain text inputs) and the selected
// option values (selects).
func (s *Server) ViewSubmission(user string, view View, texts map[string]string, selects map[string]string) map[string]any {
	var opened map[string]any
	_ = json.Unmarshal(view.JSON, &opened)
	values := map[string]any{}
	for block, v := range texts {
		values[block] = map[string]any{block: map[string]any{"type": "plain_text_input", "value": v}}
	}
	for block, v := range selects {
		values[block] = map[string]any{block: map[string]any{"type": "static_select", "selected_option": map[string]any{"value": v, "text": map[string]any{"type": "plain_text", "text": v}}}}
	}
	opened["id"] = view.ID
	opened["team_id"] = s.cfg.TeamID
	opened["state"] = map[string]any{"values": values}
	return map[string]any{
		"type": "view_submission", "api_app_id": s.cfg.AppID, "token": "deprecated", "trigger_id": s.NewTriggerID(),
		"user": map[string]any{"id": user, "username": user, "name": user, "team_id": s.cfg.TeamID},
		"team": map[string]any{"id": s.cfg.TeamID, "domain": "test"},
		"view": opened,
	}
}
