package handover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// JobPost is the job kind that posts a scheduled handover. All handover
// jobs share one job key, so they run one at a time, in order.
const JobPost = "handover.post"

const jobKey = "handover"

// Keys in the store besides the shifts' (ShiftKey).
const (
	// sinceKey records when this bot first ran the handover schedule.
	sinceKey = "handover:since"
	// lastKey records the end of the last shift whose handover was
	// queued, so that the handover caught up after downtime covers the
	// whole gap.
	lastKey = "handover:last"
)

// MaxCatchUp bounds how far back a caught-up handover reaches: after
// longer downtime (or a schedule turned off and on again) it covers the
// last shift only.
const MaxCatchUp = 7 * 24 * time.Hour

// ShiftKey is the idempotency key of the handover of the shift ending at
// activation t: "handover:2026-12-02T09:00:00Z". Its value is a
// digest.PostRecord (queued, then posted).
func ShiftKey(t time.Time) string { return "handover:" + t.UTC().Format(time.RFC3339) }

// postKey names the handover's message in the channel, so that a post
// whose outcome a crash hid is found there (incident.Finder).
func postKey(to time.Time) incident.PostKey {
	return incident.PostKey{Kind: incident.PostHandover, Period: to.UTC().Format(time.RFC3339)}
}

// payload is a JobPost job's payload.
type payload struct {
	Key     string    `json:"key"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Channel string    `json:"channel"`
}

// Enqueue schedules the post of the handover of the shift ending at
// shift.To to channel, once: if the shift's key is recorded (queued or
// posted), it does nothing and reports false. The key and the job are
// written in one transaction. When the last shift whose handover was
// queued ended before shift.From (the bot was down over activations), the
// handover starts there instead, at most MaxCatchUp before shift.To, so
// that nothing that happened while nobody posted a handover is left out.
func Enqueue(ctx context.Context, store incident.Store, shift incident.Shift, channel string, now time.Time) (bool, error) {
	key := ShiftKey(shift.To)
	queued := false
	from := shift.From
	err := store.Update(ctx, func(tx incident.Tx) error {
		queued, shift.From = false, from
		if _, ok, err := tx.Key(key); err != nil || ok {
			return err
		}
		raw, ok, err := tx.Key(lastKey)
		if err != nil {
			return err
		}
		var last time.Time
		if ok {
			if err := last.UnmarshalText(raw); err != nil {
				return fmt.Errorf("decoding %s: %w", lastKey, err)
			}
		}
		if last.Before(shift.From) && !last.Before(shift.To.Add(-MaxCatchUp)) {
			shift.From = last
		}
		end, _ := shift.To.UTC().MarshalText()
		if err := tx.PutKey(lastKey, end, now); err != nil {
			return err
		}
		rec := digest.PostRecord{State: digest.StateQueued, Period: shiftLabel(shift), Channel: channel, At: now}
		if err := digest.PutRecord(tx, key, rec); err != nil {
			return err
		}
		raw, err = json.Marshal(payload{Key: key, From: shift.From, To: shift.To, Channel: channel})
		if err != nil {
			return err
		}
		queued = true
		return tx.Enqueue(&incident.Job{Kind: JobPost, Key: jobKey, Due: now, Payload: raw})
	})
	if err != nil {
		return false, fmt.Errorf("queueing the handover of %s: %w", shiftLabel(shift), err)
	}
	return queued, nil
}

func shiftLabel(s incident.Shift) string {
	return s.From.UTC().Format(time.RFC3339) + "/" + s.To.UTC().Format(time.RFC3339)
}

// Handle runs a JobPost job: it posts one shift's handover, once: a handover recorded as posted
// is not posted again, and the post itself goes through incident.PostOnce
// (recorded before the call, looked for in the channel after a crash).
func (h *Handovers) Handle(ctx context.Context, job incident.Job) error {
	var pl payload
	if err := json.Unmarshal(job.Payload, &pl); err != nil || pl.Key == "" || pl.Channel == "" || !pl.To.After(pl.From) {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobPost, job.Payload)
	}
	shift := incident.Shift{From: pl.From, To: pl.To}
	log := h.log.With(zap.String("shift", shiftLabel(shift)), zap.String("channel", pl.Channel))
	var rec digest.PostRecord
	err := h.cfg.Store.View(ctx, func(tx incident.Tx) error {
		var err error
		rec, _, err = digest.Posted(tx, pl.Key)
		return err
	})
	if err != nil {
		return err
	}
	if rec.State == digest.StatePosted {
		log.Info("handover already posted")
		return nil
	}
	text, err := h.Text(ctx, shift)
	if err != nil {
		return err
	}
	if _, err := incident.PostOnce(ctx, h.cfg.Store, h.cfg.Chat, h.clock(), postKey(pl.To), pl.Channel, incident.Message{Kind: incident.MessageText, Text: text}); err != nil {
		return fmt.Errorf("posting the handover of %s: %w", shiftLabel(shift), err)
	}
	err = h.cfg.Store.Update(context.WithoutCancel(ctx), func(tx incident.Tx) error {
		return digest.PutRecord(tx, pl.Key, digest.PostRecord{State: digest.StatePosted, Period: shiftLabel(shift), Channel: pl.Channel, At: h.clock().Now()})
	})
	if err != nil {
		return fmt.Errorf("recording the handover of %s as posted: %w", shiftLabel(shift), err)
	}
	log.Info("handover posted")
	return nil
}
