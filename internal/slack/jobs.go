package slack

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// recordJobKey orders the jobs that record what happened in an incident's
// channel (pins, joins). It is not the incident's chat key: recording a pin
// reads from Slack and writes the timeline but posts nothing, so it must
// not wait behind the channel's paced outbound posts (a pin made seconds
// before /incident postmortem belongs in the draft).
func recordJobKey(n int64) string { return "record:" + incident.FormatID(n) }

// Job kinds of the Slack adapter. Their jobs are keyed by recordJobKey, so
// they run in the order their events came, apart from the chat sync.
const (
	// JobCaptureMessage records a pinned message (pushpin reaction or
	// pin_added) on the incident's timeline.
	JobCaptureMessage = "slack.capture_message"
	// JobMemberJoined records that someone joined the incident channel.
	JobMemberJoined = "slack.member_joined"
	// JobButtonClick runs a button click (Handler.RunClick), stored before
	// the click was acknowledged.
	JobButtonClick = "slack.button_click"
)

// eventJob is the payload of both job kinds.
type eventJob struct {
	Incident int64  `json:"incident"`
	Channel  string `json:"channel"`
	TS       string `json:"ts,omitempty"`      // the message (capture)
	Message  *Msg   `json:"message,omitempty"` // the message, when the event carried it
	By       string `json:"by,omitempty"`      // who pinned it
	User     string `json:"user,omitempty"`    // who joined
	// At is when they joined (the event's event_ts), so a join the bot
	// takes in late is not taken for a late join; zero in jobs stored
	// before it was kept.
	At      time.Time `json:"at,omitzero"`
	EventID string    `json:"event_id"`
	// Shortcut is set when someone added the message with the "Add to
	// incident timeline" shortcut (addFromShortcut).
	Shortcut *shortcutJob `json:"shortcut,omitempty"`
}

// Jobs runs the adapter's jobs.
type Jobs struct {
	Client  *Client
	Service *incident.Service
	Logger  *zap.Logger
}

// CaptureMessage runs a JobCaptureMessage job: it fetches the message (if
// the event did not carry it) and records it as incident.EventMessagePinned
// with its own time and author. The record is keyed by channel and ts, so
// a message is on the timeline once however often it is pinned.
func (j *Jobs) CaptureMessage(ctx context.Context, job incident.Job) error {
	var p eventJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 || p.Channel == "" || p.TS == "" {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobCaptureMessage, job.Payload)
	}
	log := j.logger().With(zap.String("incident", incident.FormatID(p.Incident)), zap.String("channel", p.Channel), zap.String("ts", p.TS))
	var m Msg
	if p.Message != nil {
		m = *p.Message
	} else {
		var err error
		m, err = j.Client.Message(ctx, p.Channel, p.TS, "")
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			log.Info("pinned message is gone; nothing to record")
			return nil
		}
		if err != nil {
			return err
		}
	}
	if p.Shortcut != nil {
		return j.addFromShortcut(ctx, p, m, log)
	}
	if m.FromBot() {
		log.Debug("not recording a bot's message")
		return nil
	}
	text := fromSlack(m.Text)
	if utf8.RuneCountInString(text) > incident.MaxTextLength {
		text = string([]rune(text)[:incident.MaxTextLength-1]) + "…"
	}
	ev := incident.Event{
		Kind:  incident.EventMessagePinned,
		Key:   pinKey(p.Channel, p.TS),
		At:    m.Time(),
		Actor: incident.Actor{ID: m.User, Source: incident.SourceSlack},
		Text:  text,
		Data:  map[string]string{"author": m.User, "channel": p.Channel, "ts": p.TS},
	}
	recorded, err := j.Service.Record(ctx, incident.Ref{Number: p.Incident}, ev)
	if err != nil {
		return err
	}
	log.Info("pinned message captured", zap.Bool("new", recorded), zap.String("by", p.By))
	return nil
}

// MemberJoined runs a JobMemberJoined job: a quiet timeline event (the
// chat sync does not tell it in the channel). Recording it offers a late
// joiner the catch-up (incident.CatchupOfferHook, JobCatchupOffer).
func (j *Jobs) MemberJoined(ctx context.Context, job incident.Job) error {
	var p eventJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 || p.Channel == "" || p.User == "" {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobMemberJoined, job.Payload)
	}
	ev := incident.Event{
		Kind:  incident.EventMemberJoined,
		At:    p.At,
		Key:   "joined:" + p.Channel + ":" + p.User + ":" + p.EventID,
		Actor: incident.Actor{ID: p.User, Source: incident.SourceSlack},
		Data:  map[string]string{"channel": p.Channel},
		Quiet: true,
	}
	_, err := j.Service.Record(ctx, incident.Ref{Number: p.Incident}, ev)
	return err
}

func (j *Jobs) logger() *zap.Logger {
	if j.Logger == nil {
		return zap.NewNop()
	}
	return j.Logger.Named("slack")
}
