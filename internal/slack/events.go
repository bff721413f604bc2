package slack

import (
	"context"
	"encoding/json"
	"strings"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// eventEnvelope is the outer Events API payload (and a Socket Mode
// events_api envelope's payload).
type eventEnvelope struct {
	Type           string          `json:"type"`
	Challenge      string          `json:"challenge"`
	TeamID         string          `json:"team_id"`
	EventID        string          `json:"event_id"`
	EventTime      int64           `json:"event_time"`
	Event          json.RawMessage `json:"event"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
}

// innerEvent holds the fields of the events the bot subscribes to:
// reaction_added, pin_added, member_joined_channel and app_home_opened.
type innerEvent struct {
	Type     string `json:"type"`
	User     string `json:"user"`
	Reaction string `json:"reaction"`
	Item     struct {
		Type    string       `json:"type"`
		Channel string       `json:"channel"`
		TS      string       `json:"ts"`
		Message *wireMessage `json:"message"`
	} `json:"item"`
	Channel   string `json:"channel"`
	ChannelID string `json:"channel_id"`
	EventTS   string `json:"event_ts"`
	Tab       string `json:"tab"` // app_home_opened: "home" or "messages"
}

type wireMessage struct {
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts"`
	User     string `json:"user"`
	BotID    string `json:"bot_id"`
	SubType  string `json:"subtype"`
	Text     string `json:"text"`
}

// maxIDLength bounds the ids from Slack that key idempotency records
// (event ids, team and user ids, action timestamps, view ids). Slack's are
// a few dozen characters; a store key cannot exceed 32 KiB, and failing the
// store step on one would answer a 5xx that Slack retries (or an error log
// for what is only bad input).
const maxIDLength = 256

type eventResult struct {
	challenge string
	outcome   string
}

// event takes one Events API payload. Relevant events in incident
// channels are deduplicated on team and event id and turned into a job in
// one durable transaction before the acknowledgement, so a retry (or a
// crash right after the 200) neither loses nor repeats them. Everything
// else is acknowledged and ignored.
func (h *Handler) event(ctx context.Context, body []byte) eventResult {
	var env eventEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return eventResult{outcome: reqMalformed}
	}
	switch env.Type {
	case "url_verification":
		if env.Challenge == "" {
			return eventResult{outcome: reqMalformed}
		}
		return eventResult{challenge: env.Challenge, outcome: reqOK}
	case "app_rate_limited":
		h.log.Warn("slack is dropping events: the app exceeded 30,000 events an hour", zap.String("team", env.TeamID))
		return eventResult{outcome: reqOK}
	case "event_callback":
	default:
		return eventResult{outcome: reqOK}
	}
	if env.EventID == "" || len(env.Event) == 0 || len(env.EventID) > maxIDLength || len(env.TeamID) > maxIDLength {
		return eventResult{outcome: reqMalformed}
	}
	var ev innerEvent
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		return eventResult{outcome: reqMalformed}
	}
	if ev.Type == "app_home_opened" {
		return eventResult{outcome: h.homeOpened(ev.User, ev.Tab)}
	}
	job, ok := h.jobFor(env, ev)
	if !ok {
		return eventResult{outcome: reqOK}
	}
	outcome, err := h.intake(ctx, env, job)
	if err != nil {
		h.log.Error("cannot store slack event", zap.String("event_id", env.EventID), zap.Error(err))
		return eventResult{outcome: reqError}
	}
	return eventResult{outcome: outcome}
}

// botUser returns the bot's own user id, from the envelope's
// authorizations or else from auth.test.
func (h *Handler) botUser(env eventEnvelope) string {
	for _, a := range env.Authorizations {
		if a.IsBot && a.UserID != "" {
			return a.UserID
		}
	}
	return h.client.BotUserID()
}

// pendingJob is the work an event asks for, before its incident is known.
type pendingJob struct {
	kind    string
	channel string
	payload eventJob
}

// jobFor decides what an event asks for, if anything.
func (h *Handler) jobFor(env eventEnvelope, ev innerEvent) (pendingJob, bool) {
	bot := h.botUser(env)
	switch ev.Type {
	case "reaction_added":
		name, _, _ := strings.Cut(ev.Reaction, "::") // skin tones
		if name != h.cfg.PinReaction || ev.Item.Type != "message" || ev.Item.Channel == "" || ev.Item.TS == "" || (bot != "" && ev.User == bot) {
			return pendingJob{}, false
		}
		return pendingJob{kind: JobCaptureMessage, channel: ev.Item.Channel,
			payload: eventJob{Channel: ev.Item.Channel, TS: ev.Item.TS, By: ev.User, EventID: env.EventID}}, true
	case "pin_added":
		ch := ev.ChannelID
		if ch == "" {
			ch = ev.Item.Channel
		}
		m := ev.Item.Message
		if ev.Item.Type != "message" || m == nil || ch == "" || m.TS == "" {
			return pendingJob{}, false
		}
		msg := Msg{TS: m.TS, ThreadTS: m.ThreadTS, User: m.User, BotID: m.BotID, SubType: m.SubType, Text: m.Text}
		return pendingJob{kind: JobCaptureMessage, channel: ch,
			payload: eventJob{Channel: ch, TS: m.TS, By: ev.User, Message: &msg, EventID: env.EventID}}, true
	case "member_joined_channel":
		if ev.User == "" || ev.Channel == "" || (bot != "" && ev.User == bot) {
			return pendingJob{}, false
		}
		return pendingJob{kind: JobMemberJoined, channel: ev.Channel,
			payload: eventJob{Channel: ev.Channel, User: ev.User, EventID: env.EventID, At: TSTime(ev.EventTS)}}, true
	}
	return pendingJob{}, false
}

// intake stores the event's job in one transaction with its dedupe key.
func (h *Handler) intake(ctx context.Context, env eventEnvelope, pj pendingJob) (string, error) {
	key := "slack-event:" + env.TeamID + ":" + env.EventID
	outcome := reqOK
	err := update(ctx, h.svc.Store(), func(tx incident.Tx) error {
		outcome = reqOK
		inc, err := tx.IncidentByChannel(pj.channel)
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			return nil // not an incident channel: nothing to do
		} else if err != nil {
			return err
		}
		now := h.cfg.Clock.Now()
		fresh, err := firstTime(tx, key, now)
		if err != nil || !fresh {
			if err == nil {
				outcome = reqDuplicate
			}
			return err
		}
		p := pj.payload
		p.Incident = inc.Number
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return tx.Enqueue(&incident.Job{Kind: pj.kind, Key: recordJobKey(inc.Number), Due: now, Payload: raw, Created: now})
	})
	if outcome == reqDuplicate {
		h.log.Info("ignoring duplicate slack event", zap.String("event_id", env.EventID))
	}
	return outcome, err
}
