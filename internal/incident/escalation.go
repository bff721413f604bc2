package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Automatic escalation and status-update reminders run on the durable job
// queue. Each incident has at most one live timer of each kind: its state
// (which job may act, and what it acts on) is kept under an idempotency key
// and changed in the same transaction as the jobs, so a job that was
// superseded (the severity changed, a status update restarted the clock,
// the job ran before a crash and runs again) finds it is not the live one
// and does nothing. Nothing is ever deleted from the queue.

// Job kinds of the escalation timers.
const (
	JobAckTimeout     = "incident.ack_timeout"
	JobUpdateReminder = "incident.update_reminder"
)

// DefaultMaxEscalations is how many times the bot escalates one
// unacknowledged episode by default.
const DefaultMaxEscalations = 3

// DefaultAckTimeouts are the default acknowledgement timeouts: SEV1 5
// minutes, SEV2 10, SEV3 30, SEV4 never.
func DefaultAckTimeouts() map[Severity]time.Duration {
	return map[Severity]time.Duration{SEV1: 5 * time.Minute, SEV2: 10 * time.Minute, SEV3: 30 * time.Minute}
}

// DefaultUpdateReminders are the default status-update intervals: SEV1 30
// minutes, SEV2 an hour, SEV3 4 hours, SEV4 never.
func DefaultUpdateReminders() map[Severity]time.Duration {
	return map[Severity]time.Duration{SEV1: 30 * time.Minute, SEV2: time.Hour, SEV3: 4 * time.Hour}
}

// EscalationPolicy configures automatic escalation and reminders. A
// severity missing from a map (or mapped to zero) is never escalated or
// reminded.
type EscalationPolicy struct {
	// AckTimeouts: how long a triggered incident may stay unacknowledged
	// before the bot escalates it, and then between escalations.
	AckTimeouts map[Severity]time.Duration
	// MaxEscalations caps the automatic escalations of one unacknowledged
	// episode; zero disables automatic escalation.
	MaxEscalations int
	// UpdateReminders: how long an open incident may go without a status
	// update before the commander is reminded, and then between reminders.
	UpdateReminders map[Severity]time.Duration
	// AutoPage, if set, is paged when an unacknowledged incident has no
	// linked pager incident (a default service or routing key is
	// configured); otherwise the channel is told that nobody could be paged.
	AutoPage *PagerTarget
	// PagerEscalates reports whether the bot can move a linked pager
	// incident to its next level (PagerDuty's REST API is configured).
	// Without it the channel is told, and the pager's own escalation
	// policy is left to act.
	PagerEscalates bool
	// PagerStatus, if set, reads a linked pager incident's current status
	// (PagerDuty's REST API, configured whenever the bot escalates there).
	// An overdue acknowledgement timer asks it before escalating: after the
	// bot's downtime PagerDuty may redeliver a trigger before its
	// acknowledgement, so the timer, which starts at PagerDuty's created_at,
	// is overdue at once although the incident was acknowledged long ago.
	// If the pager says it is no longer triggered the bot does not escalate
	// and checks again one timeout later (by then the acknowledgement has
	// arrived and cancelled the timer). If the look-up fails the bot
	// escalates as it would without it: an outage of the pager's API must
	// not silence escalation.
	PagerStatus func(ctx context.Context, pagerIncidentID string) (Status, error)
}

// AckGrace is the least time the bot waits, from receiving an episode's
// trigger, before escalating it: a trigger delivered late (after the bot's
// downtime, PagerDuty redelivers its backlog, not necessarily in order)
// gives its acknowledgement that long to arrive.
const AckGrace = time.Minute

// Escalator runs the escalation timers of a Service.
type Escalator struct {
	svc    *Service
	policy EscalationPolicy
}

// NewEscalator returns the escalation timers for svc. Register Hook on the
// service and the two handlers on the job runner.
func NewEscalator(svc *Service, p EscalationPolicy) *Escalator {
	return &Escalator{svc: svc, policy: p}
}

// ackTimer is the live acknowledgement timer of an incident.
type ackTimer struct {
	Job     uint64    `json:"job"`     // the only job that may act; 0: none scheduled
	Episode int64     `json:"episode"` // seq of the event that made the incident triggered
	Start   time.Time `json:"start"`   // when the episode started
	Last    time.Time `json:"last"`    // the start, or the last escalation
	Level   int       `json:"level"`   // the automatic escalation the job makes, from 1
	// NotBefore is the episode's receipt plus AckGrace: no escalation
	// before it, however old the trigger.
	NotBefore time.Time `json:"not_before,omitzero"`
}

// reminderTimer is the live status-update reminder of an incident.
type reminderTimer struct {
	Job  uint64    `json:"job"`
	Base time.Time `json:"base"` // the last status update, declaration or reopening
	Last time.Time `json:"last"` // the last reminder since Base, if any
}

type timerJob struct {
	Incident int64 `json:"incident"`
	Episode  int64 `json:"episode,omitempty"`
	Level    int   `json:"level,omitempty"`
}

func ackTimerKey(n int64) string      { return "timer:ack:" + FormatID(n) }
func reminderTimerKey(n int64) string { return "timer:update:" + FormatID(n) }

func loadTimer(tx Tx, key string, v any) (bool, error) {
	raw, ok, err := tx.Key(key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decoding timer %s: %w", key, err)
	}
	return true, nil
}

func saveTimer(tx Tx, key string, v any, now time.Time) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.PutKey(key, raw, now)
}

// entersTriggered reports whether ev made the incident triggered: a pager
// declaration, an unacknowledgement, a reopening by the pager.
func entersTriggered(ev Event) bool {
	switch ev.Kind {
	case EventDeclared:
		return ev.Data["status"] == string(StatusTriggered)
	case EventStatusChanged:
		return ev.Data["to"] == string(StatusTriggered)
	}
	return false
}

// Hook returns the change hook that starts and restarts the timers: an
// acknowledgement timer when an incident becomes triggered (or its severity
// changes while it is), a reminder timer when an incident is declared or
// reopened, gets a status update, or changes severity.
func (e *Escalator) Hook() ChangeHook {
	return func(tx Tx, inc *Incident, events []Event) error {
		for _, ev := range events {
			now := ev.Recorded
			if entersTriggered(ev) {
				start := ev.At
				if ev.Kind == EventDeclared {
					start = inc.DetectedAt
				}
				t := ackTimer{Episode: ev.Seq, Start: start, Last: start, Level: 1, NotBefore: now.Add(AckGrace)}
				if err := e.scheduleAck(tx, inc, &t, now); err != nil {
					return err
				}
			} else if ev.Kind == EventSeverityChanged && inc.Status == StatusTriggered {
				var t ackTimer
				if ok, err := loadTimer(tx, ackTimerKey(inc.Number), &t); err != nil {
					return err
				} else if ok {
					if err := e.scheduleAck(tx, inc, &t, now); err != nil {
						return err
					}
				}
			}

			var base time.Time
			switch {
			case ev.Kind == EventDeclared:
				base = inc.DeclaredAt
			case ev.Kind == EventStatusUpdate:
				base = ev.At
			case ev.Kind == EventStatusChanged && ev.Data["from"] == string(StatusResolved):
				base = ev.At
			case ev.Kind != EventSeverityChanged:
				continue
			}
			var r reminderTimer
			if _, err := loadTimer(tx, reminderTimerKey(inc.Number), &r); err != nil {
				return err
			}
			if !base.IsZero() {
				r = reminderTimer{Base: base}
			} else if r.Base.IsZero() {
				r.Base = inc.DeclaredAt
			}
			if err := e.scheduleReminder(tx, inc, &r, now); err != nil {
				return err
			}
		}
		return nil
	}
}

// scheduleAck enqueues the job that makes escalation t.Level (due one
// timeout after t.Last) and makes it the live one; with nothing to do it
// records that no job is live.
func (e *Escalator) scheduleAck(tx Tx, inc *Incident, t *ackTimer, now time.Time) error {
	if err := cancelLiveJob(tx, ackTimerKey(inc.Number)); err != nil {
		return err
	}
	t.Job = 0
	timeout := e.policy.AckTimeouts[inc.Severity]
	if inc.Status == StatusTriggered && timeout > 0 && t.Level <= e.policy.MaxEscalations {
		payload, _ := json.Marshal(timerJob{Incident: inc.Number, Episode: t.Episode, Level: t.Level})
		// No job key: a timer due sooner must not wait behind one due later.
		job := &Job{Kind: JobAckTimeout, Due: later(t.Last.Add(timeout), t.NotBefore), Payload: payload}
		if err := tx.Enqueue(job); err != nil {
			return err
		}
		t.Job = job.ID
	}
	return saveTimer(tx, ackTimerKey(inc.Number), t, now)
}

// scheduleReminder enqueues the next reminder of r and makes it the live one.
func (e *Escalator) scheduleReminder(tx Tx, inc *Incident, r *reminderTimer, now time.Time) error {
	if err := cancelLiveJob(tx, reminderTimerKey(inc.Number)); err != nil {
		return err
	}
	r.Job = 0
	if every := e.policy.UpdateReminders[inc.Severity]; inc.Status.Open() && every > 0 {
		payload, _ := json.Marshal(timerJob{Incident: inc.Number})
		job := &Job{Kind: JobUpdateReminder, Due: later(r.Base, r.Last).Add(every), Payload: payload}
		if err := tx.Enqueue(job); err != nil {
			return err
		}
		r.Job = job.ID
	}
	return saveTimer(tx, reminderTimerKey(inc.Number), r, now)
}

// cancelLiveJob removes the job of the timer stored under key, which is
// about to be replaced: a status update or an acknowledgement would
// otherwise leave a no-op job waiting in the queue until its due time.
// (The job may be the one running now; completing a cancelled job is fine.)
func cancelLiveJob(tx Tx, key string) error {
	var prev struct {
		Job uint64 `json:"job"`
	}
	if ok, err := loadTimer(tx, key, &prev); err != nil || !ok || prev.Job == 0 {
		return err
	}
	return tx.CancelJob(prev.Job)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func decodeTimerJob(job Job) (timerJob, error) {
	var p timerJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 {
		return p, Errorf(EINVALID, "bad %s payload %q", job.Kind, job.Payload)
	}
	return p, nil
}

// HandleAckTimeout runs an incident.ack_timeout job: if the incident is
// still unacknowledged, the bot escalates it (the linked pager incident to
// its next level, or a page of the configured target, or at least a word in
// the channel), records the escalation with a key unique to the episode and
// level, and schedules the next check up to MaxEscalations. An
// acknowledgement in the meantime makes it do nothing.
func (e *Escalator) HandleAckTimeout(ctx context.Context, job Job) error {
	p, err := decodeTimerJob(job)
	if err != nil {
		return err
	}
	if acked, err := e.pagerAcknowledged(ctx, job, p); err != nil || acked {
		return err
	}
	s := e.svc
	err = s.store.Update(ctx, func(tx Tx) error {
		t, inc, live, err := liveAckTimer(tx, job, p)
		if err != nil || !live {
			return err // superseded, or already done before a crash
		}
		now := s.clock.Now()
		if inc.Status != StatusTriggered || t.Level > e.policy.MaxEscalations || e.policy.AckTimeouts[inc.Severity] <= 0 {
			t.Job = 0 // acknowledged (or no longer escalated): cancelled
			return saveTimer(tx, ackTimerKey(inc.Number), &t, now)
		}
		ev, action := e.escalation(inc, &t, now)
		inc.Escalations = t.Level
		if err := s.commit(tx, inc, []Event{ev}, now); err != nil {
			return err
		}
		if action != nil {
			if err := EnqueuePagerAction(tx, *action, now); err != nil {
				return err
			}
		}
		t.Level++
		t.Last = now
		return e.scheduleAck(tx, inc, &t, now)
	})
	if err != nil {
		return fmt.Errorf("acknowledgement timeout of %s: %w", FormatID(p.Incident), err)
	}
	return nil
}

// liveAckTimer loads the acknowledgement timer of p's incident and the
// incident; live is false if job is no longer the timer's job (it was
// superseded, or it ran before a crash).
func liveAckTimer(tx Tx, job Job, p timerJob) (t ackTimer, inc *Incident, live bool, err error) {
	if ok, err := loadTimer(tx, ackTimerKey(p.Incident), &t); err != nil || !ok || t.Job != job.ID {
		return t, nil, false, err
	}
	inc, err = tx.Incident(p.Incident)
	return t, inc, err == nil, err
}

// pagerAcknowledged asks the pager (EscalationPolicy.PagerStatus) whether
// the linked pager incident of a timer that is about to escalate it is
// still triggered. If it is not, the timer checks again one timeout later
// and pagerAcknowledged reports true: the job is done. Anything else
// (no look-up configured, nothing to escalate in the pager, the look-up
// failed) reports false: escalate as usual.
func (e *Escalator) pagerAcknowledged(ctx context.Context, job Job, p timerJob) (bool, error) {
	if e.policy.PagerStatus == nil || !e.policy.PagerEscalates {
		return false, nil
	}
	var pagerID string
	err := e.svc.store.View(ctx, func(tx Tx) error {
		_, inc, live, err := liveAckTimer(tx, job, p)
		if live && inc.Status == StatusTriggered {
			pagerID = inc.Pager.IncidentID
		}
		return err
	})
	if err != nil || pagerID == "" {
		return false, err
	}
	status, err := e.policy.PagerStatus(ctx, pagerID)
	if err != nil || status == StatusTriggered || status == "" {
		return false, nil
	}
	s := e.svc
	err = s.store.Update(ctx, func(tx Tx) error {
		t, inc, live, err := liveAckTimer(tx, job, p)
		if err != nil || !live {
			return err // an acknowledgement arrived meanwhile
		}
		t.Last = s.clock.Now() // same level, one timeout from now
		return e.scheduleAck(tx, inc, &t, t.Last)
	})
	if err != nil {
		return false, fmt.Errorf("acknowledgement timeout of %s: %w", FormatID(p.Incident), err)
	}
	return true, nil
}

// escalation decides what escalation t.Level of inc does, changes inc
// accordingly and returns the event that records it and the pager action
// to run, if any.
func (e *Escalator) escalation(inc *Incident, t *ackTimer, now time.Time) (Event, *PagerAction) {
	var (
		b      strings.Builder
		action *PagerAction
		data   = map[string]string{"reason": "ack_timeout", "escalation": strconv.Itoa(t.Level)}
	)
	fmt.Fprintf(&b, "%s is still unacknowledged after %s", inc.ID(), FormatWait(now.Sub(t.Start)))
	switch {
	case inc.Pager.IncidentID != "" && !e.policy.PagerEscalates:
		fmt.Fprintf(&b, ". The bot cannot escalate %s itself (no %s API token), so %s's own escalation policy applies; acknowledge it with `ack`", inc.Pager.Label(), inc.Pager.Name(), inc.Pager.Name())
	case inc.Pager.IncidentID != "":
		level := max(inc.Pager.EscalationLevel, 1) + 1
		inc.Pager.EscalationLevel = level
		data["level"], data["pager_incident"] = strconv.Itoa(level), inc.Pager.IncidentID
		fmt.Fprintf(&b, ": escalating %s to escalation level %d", inc.Pager.Label(), level)
		action = &PagerAction{Incident: inc.Number, Op: PagerOpEscalate, By: BotActor, PagerIncidentID: inc.Pager.IncidentID, Level: level, Reason: "ack_timeout"}
	case !inc.Pager.Linked() && e.policy.AutoPage != nil:
		target := *e.policy.AutoPage
		data["level"], data["target"] = "1", target.String()
		fmt.Fprintf(&b, ": paging %s", target)
		action = &PagerAction{Incident: inc.Number, Op: PagerOpPage, By: BotActor, Target: target, Page: 0,
			Message: fmt.Sprintf("unacknowledged for %s", FormatWait(now.Sub(t.Start)))}
	case inc.Pager.Linked():
		fmt.Fprintf(&b, ". It was paged through the %s Events API, which cannot escalate; acknowledge it with `ack` or page someone else with `page <service>`", inc.Pager.Name())
	default:
		b.WriteString(". No pager incident is linked and no default service is configured, so nobody else was paged; acknowledge it with `ack` or page someone with `page <service>`")
	}
	fmt.Fprintf(&b, " (automatic escalation %d of %d)", t.Level, e.policy.MaxEscalations)
	ev := inc.newEvent(EventEscalated, BotActor, now, b.String(), data)
	ev.Key = fmt.Sprintf("ack-timeout:%d:%d", t.Episode, t.Level)
	return ev, action
}

// HandleUpdateReminder runs an incident.update_reminder job: if the incident
// is open and has had no status update for its severity's interval, the
// commander is reminded in the channel, and the next reminder is scheduled
// one interval later.
func (e *Escalator) HandleUpdateReminder(ctx context.Context, job Job) error {
	p, err := decodeTimerJob(job)
	if err != nil {
		return err
	}
	s := e.svc
	err = s.store.Update(ctx, func(tx Tx) error {
		var r reminderTimer
		if ok, err := loadTimer(tx, reminderTimerKey(p.Incident), &r); err != nil || !ok || r.Job != job.ID {
			return err
		}
		inc, err := tx.Incident(p.Incident)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		every := e.policy.UpdateReminders[inc.Severity]
		if !inc.Status.Open() || every <= 0 || now.Before(later(r.Base, r.Last).Add(every)) {
			// Closed, no longer reminded, or the interval grew: start over.
			return e.scheduleReminder(tx, inc, &r, now)
		}
		text := fmt.Sprintf("%s (%s) has had no status update for %s. Post one for stakeholders with `/incident update <text>`.",
			inc.ID(), inc.Severity, FormatWait(now.Sub(r.Base)))
		if c := inc.Commander(); c != "" {
			text = "<@" + c + "> " + text
		} else {
			text = fmt.Sprintf("%s (%s) has no commander and no status update for %s. Take the lead with `/incident lead`, then post an update with `/incident update <text>`.",
				inc.ID(), inc.Severity, FormatWait(now.Sub(r.Base)))
		}
		data := map[string]string{"commander": inc.Commander(), "since": r.Base.UTC().Format(time.RFC3339)}
		ev := inc.newEvent(EventReminder, BotActor, now, text, data)
		ev.Key = "reminder:" + strconv.FormatUint(job.ID, 10)
		if err := s.commit(tx, inc, []Event{ev}, now); err != nil {
			return err
		}
		r.Last = now
		return e.scheduleReminder(tx, inc, &r, now)
	})
	if err != nil {
		return fmt.Errorf("update reminder of %s: %w", FormatID(p.Incident), err)
	}
	return nil
}

// FormatWait renders a waiting time for chat: "45s", "5m", "1h", "1h30m".
func FormatWait(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(max(d, 0)/time.Second)) + "s"
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return strconv.Itoa(m) + "m"
	case m == 0:
		return strconv.Itoa(h) + "h"
	}
	return strconv.Itoa(h) + "h" + strconv.Itoa(m) + "m"
}
