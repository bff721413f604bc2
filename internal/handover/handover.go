// Package handover makes the on-call handover: the summary of a shift that
// the person going off call leaves for the next (incident.Handover,
// rendered by command.HandoverText). It is posted three ways:
//
//   - `/incident handover` posts the current shift's handover in the
//     channel where it is typed (Handovers, for the command dispatcher);
//   - `bot handover` prints it (Text);
//   - BOT_HANDOVER_SCHEDULE posts it to BOT_HANDOVER_CHANNEL at the end of
//     every shift (Scheduler and Poster).
//
// A shift runs from one activation of the schedule to the next. The
// "current shift" is the one that began at the last activation before now;
// without a schedule it is the last DefaultWindow (24 hours).
//
// The scheduled post is as durable as the weekly digest's, and uses the
// digest's schedule parser and cron loop: each activation's post is
// recorded under "handover:<activation>" in the same transaction as the job
// that posts it, so it is queued once however often the activation is
// seen (a restart, a second replica); the job posts with incident.PostOnce,
// which looks for a post whose outcome a crash hid before posting again.
// After downtime the latest missed activation's handover is posted when
// the bot starts, covering every shift since the last handover it queued
// (at most MaxCatchUp), so that nothing falls between two handovers.
package handover

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// DefaultWindow is the current shift when there is no schedule: the last
// 24 hours, a day's shift and the usual follow-the-sun rotation.
const DefaultWindow = 24 * time.Hour

// Shifts tells shifts apart: by the schedule's activations, or (without a
// schedule) as the last Window before a moment.
type Shifts struct {
	Schedule *digest.Schedule // nil: no schedule
	Window   time.Duration    // default DefaultWindow
}

// Current is the shift in progress at now: from the last activation at or
// before now to now.
func (s Shifts) Current(now time.Time) incident.Shift {
	return incident.Shift{From: s.start(now), To: now}
}

// Ending is the shift that ends at activation t: from the activation
// before it to t.
func (s Shifts) Ending(t time.Time) incident.Shift {
	return incident.Shift{From: s.start(t.Add(-time.Second)), To: t}
}

// start is the last activation at or before t, or t minus the window when
// there is none (no schedule, or none in the five years before t).
func (s Shifts) start(t time.Time) time.Time {
	if s.Schedule != nil {
		if prev, ok := s.Schedule.Prev(t); ok {
			return prev
		}
	}
	w := s.Window
	if w <= 0 {
		w = DefaultWindow
	}
	return t.Add(-w)
}

// Config configures a Handovers.
type Config struct {
	Service *incident.Service
	// Store records scheduled posts (Handle, Scheduler); the store
	// Service uses.
	Store    incident.Store
	Shifts   Shifts
	Location *time.Location // times in the text; default UTC
	// DueWithin: how far ahead follow-ups count as due soon (default
	// incident.DefaultDueWithin).
	DueWithin time.Duration
	// Chat posts `/incident handover` and the scheduled handovers; nil:
	// the command replies with the handover instead.
	Chat   incident.Chat
	Logger *zap.Logger
}

// Handovers builds handovers and posts the one the command asks for.
type Handovers struct {
	cfg Config
	log *zap.Logger
}

var _ command.Handovers = (*Handovers)(nil)

// New returns a Handovers.
func New(cfg Config) *Handovers {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Handovers{cfg: cfg, log: cfg.Logger.Named("handover")}
}

func (h *Handovers) clock() incident.Clock { return h.cfg.Service.Clock() }

// Text renders the handover of shift as of now.
func (h *Handovers) Text(ctx context.Context, shift incident.Shift) (string, error) {
	ho, err := h.cfg.Service.Handover(ctx, incident.HandoverOptions{Shift: shift, DueWithin: h.cfg.DueWithin, Location: h.cfg.Location})
	if err != nil {
		return "", err
	}
	return command.HandoverText(ho, h.cfg.Location), nil
}

// Current renders the handover of the current shift.
func (h *Handovers) Current(ctx context.Context) (string, error) {
	return h.Text(ctx, h.cfg.Shifts.Current(h.clock().Now()))
}

// Handover posts the current shift's handover in the channel the command
// came from. When it cannot (no chat, or a channel the bot may not post
// in), the reply carries the handover itself, so the person who asked
// still has it.
func (h *Handovers) Handover(ctx context.Context, req command.Request) (string, error) {
	text, err := h.Current(ctx)
	if err != nil {
		return "", err
	}
	if h.cfg.Chat == nil || req.ChannelID == "" {
		return text, nil
	}
	if _, err := h.cfg.Chat.Post(ctx, req.ChannelID, incident.Message{Kind: incident.MessageText, Text: text}); err != nil {
		h.log.Warn("cannot post the handover where it was asked for", zap.String("channel", req.ChannelID), zap.Error(err))
		return fmt.Sprintf("I could not post the handover in this channel (%s); here it is for you:\n\n%s", strings.TrimSuffix(incident.ErrorMessage(err), "."), text), nil
	}
	return "Handover posted.", nil
}
