package slacktest

import (
	"fmt"
)

// domain is the workspace's subdomain (<domain>.slack.com).
func (s *Server) domain() string { return "test" }

// AppPost posts a message as another app (an alerting tool, say): subtype
// bot_message, a bot id and a name, no user. It returns its ts.
func (s *Server) AppPost(channelID, botID, name, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Channel: channelID, TS: s.nextTS(), BotID: botID, SubType: "bot_message", Username: name, Text: text}
	s.messages = append(s.messages, m)
	s.change()
	return m.TS
}

// MessageShortcut is the message_action payload Slack sends when user
// picks the message shortcut callbackID on the message ts in channel
// (api.slack.com/reference/interaction-payloads/shortcuts): with the
// message's full structure, the channel, a trigger id that views.open
// accepts once and a response_url served by the fake. Send it with
// Sender.Interaction or as an "interactive" Socket Mode envelope.
func (s *Server) MessageShortcut(user, callbackID, channel, ts string) map[string]any {
	trigger, responseURL := s.NewTriggerID(), s.NewResponseURL()
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := map[string]any{"type": "message", "ts": ts}
	if m := s.message(channel, ts); m != nil {
		msg = s.messageJSON(m, false)
	}
	name := "channel"
	if ch := s.channel(channel); ch != nil {
		name = ch.Name
	}
	s.seq++
	return map[string]any{
		"type": "message_action", "token": "deprecated", "api_app_id": s.cfg.AppID, "callback_id": callbackID,
		"trigger_id": trigger, "response_url": responseURL, "message_ts": ts,
		"action_ts": fmt.Sprintf("%d.%06d", s.cfg.Now().Unix(), s.seq),
		"team":      map[string]any{"id": s.cfg.TeamID, "domain": s.domain()},
		"user":      map[string]any{"id": user, "username": user, "name": user, "team_id": s.cfg.TeamID},
		"channel":   map[string]any{"id": channel, "name": name},
		"message":   msg,
	}
}

// GlobalShortcut is the shortcut payload of a global shortcut: no channel,
// no message, no response_url.
func (s *Server) GlobalShortcut(user, callbackID string) map[string]any {
	trigger := s.NewTriggerID()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return map[string]any{
		"type": "shortcut", "token": "deprecated", "api_app_id": s.cfg.AppID, "callback_id": callbackID, "trigger_id": trigger,
		"action_ts": fmt.Sprintf("%d.%06d", s.cfg.Now().Unix(), s.seq),
		"team":      map[string]any{"id": s.cfg.TeamID, "domain": s.domain()},
		"user":      map[string]any{"id": user, "username": user, "name": user, "team_id": s.cfg.TeamID},
	}
}
