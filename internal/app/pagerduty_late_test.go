package app_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestLateTriggerIsNotEscalatedWhileAcknowledgedInPagerDuty: after the
// bot's downtime PagerDuty redelivers a trigger before its acknowledgement.
// The acknowledgement timer, which starts at PagerDuty's created_at, is
// overdue at once; the bot neither escalates within milliseconds of the
// trigger nor later while PagerDuty says the incident is acknowledged, and
// the acknowledgement, when it arrives, ends the timer.
func TestLateTriggerIsNotEscalatedWhileAcknowledgedInPagerDuty(t *testing.T) {
	w := newPDWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	pdInc := w.pd.Trigger("PSVC001", "Checkout 500s") // SEV2: 10 minutes
	w.clock.Set(pdStart.Add(2 * time.Minute))
	w.pd.Acknowledge(pdInc.ID, "PALICE1")
	evs := w.pd.TakeEvents()
	if len(evs) != 2 || evs[0].Type != "incident.triggered" || evs[1].Type != "incident.acknowledged" {
		t.Fatalf("fake events: %+v", evs)
	}
	escalations := w.escalations

	// 15 minutes later the trigger is redelivered, alone.
	w.clock.Set(pdStart.Add(15 * time.Minute))
	if code, err := bot.hooks.DeliverEvent(t.Context(), evs[0]); err != nil || code/100 != 2 {
		t.Fatalf("delivering the trigger: %d %v", code, err)
	}
	waitUntil(t, "the incident", func() bool { return len(bot.incidents(t)) == 1 && bot.settled(w.clock.Now()) })
	if n := escalations(); n != 0 {
		t.Fatalf("escalated %d times as soon as the late trigger arrived", n)
	}

	// Past the grace the timer asks PagerDuty, which says acknowledged.
	w.clock.Set(pdStart.Add(16 * time.Minute))
	waitUntil(t, "the timer's look-up in PagerDuty", func() bool {
		return len(w.pd.CallsTo("GET /incidents/{id}")) == 1 && bot.settled(w.clock.Now())
	})
	if n := escalations(); n != 0 {
		t.Fatalf("escalated %d times although PagerDuty says the incident is acknowledged", n)
	}

	// The acknowledgement arrives and ends the timer.
	if code, err := bot.hooks.DeliverEvent(t.Context(), evs[1]); err != nil || code/100 != 2 {
		t.Fatalf("delivering the acknowledgement: %d %v", code, err)
	}
	waitUntil(t, "the acknowledgement", func() bool {
		return bot.incidents(t)[0].Status == incident.StatusAcknowledged && bot.settled(w.clock.Now())
	})
	w.clock.Set(pdStart.Add(3 * time.Hour))
	waitUntil(t, "the cancelled timer", func() bool { return bot.settled(w.clock.Now()) })
	if n := escalations(); n != 0 {
		t.Fatalf("%d escalations, want none", n)
	}
	if esc := ofKind(bot.timeline(t, 1), incident.EventEscalated); len(esc) != 0 {
		t.Fatalf("escalations on the timeline: %+v", esc)
	}
	if got, _ := w.pd.Incident(pdInc.ID); got.Level != 1 {
		t.Fatalf("PagerDuty level %d, want 1", got.Level)
	}
}

// escalations counts the escalations PagerDuty was asked for.
func (w *pdWorld) escalations() int {
	n := 0
	for _, c := range w.pd.CallsTo("PUT /incidents") {
		if strings.Contains(string(c.Body), "escalation_level") {
			n++
		}
	}
	return n
}
