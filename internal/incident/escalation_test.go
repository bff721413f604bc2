package incident_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

func escalationPolicy(max int) incident.EscalationPolicy {
	return incident.EscalationPolicy{AckTimeouts: incident.DefaultAckTimeouts(), MaxEscalations: max, PagerEscalates: true}
}

func newEscalationEnv(t *testing.T, p incident.EscalationPolicy) *pagerEnv {
	t.Helper()
	return newPagerEnvOn(t, bolttest.Open(t), incidenttest.NewClock(pdT0), incident.PagerSync{Status: true}, &p)
}

// at moves the clock to pdT0+d and runs what is due.
func (e *pagerEnv) at(d time.Duration) []incident.PagerAction {
	e.t.Helper()
	e.clock.Set(pdT0.Add(d))
	actions, _ := e.run()
	return actions
}

func eventsOf(events []incident.Event, kind incident.EventKind) []incident.Event {
	var out []incident.Event
	for _, ev := range events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func TestAckTimeoutEscalatesAfterTheTimeoutAndNotAfterAnAck(t *testing.T) {
	e := newEscalationEnv(t, escalationPolicy(3))
	ctx := context.Background()
	trig := pdEvent("e1", incident.PagerTriggered, pdT0.Add(-2*time.Minute)) // SEV1: 5 minutes from the trigger
	inc := e.apply(trig)

	if a := e.at(2*time.Minute + 59*time.Second); len(a) != 0 {
		t.Fatalf("escalated before the timeout: %+v", a)
	}
	a := e.at(3 * time.Minute)
	if len(a) != 1 || a[0].Op != incident.PagerOpEscalate || a[0].Level != 2 || a[0].PagerIncidentID != "PGR0VU2" || a[0].Reason != "ack_timeout" {
		t.Fatalf("first escalation: %+v", a)
	}
	if a := e.at(3*time.Minute + time.Second); len(a) != 0 {
		t.Fatalf("escalated twice for one timeout: %+v", a)
	}
	if a := e.at(8 * time.Minute); len(a) != 1 || a[0].Level != 3 {
		t.Fatalf("second escalation: %+v", a)
	}
	e.clock.Set(pdT0.Add(9 * time.Minute))
	if _, err := e.svc.Acknowledge(ctx, incident.Ref{Number: inc.Number}, carol); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{13 * time.Minute, time.Hour, 24 * time.Hour} {
		for _, act := range e.at(d) {
			if act.Op == incident.PagerOpEscalate {
				t.Fatalf("escalated at +%s after the acknowledgement: %+v", d, act)
			}
		}
	}
	got, events, _ := e.svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	esc := eventsOf(events, incident.EventEscalated)
	if len(esc) != 2 || got.Escalations != 2 || got.Pager.EscalationLevel != 3 {
		t.Fatalf("%d escalation events, incident escalations %d, level %d", len(esc), got.Escalations, got.Pager.EscalationLevel)
	}
	if !strings.Contains(esc[0].Text, "still unacknowledged after 5m") || !strings.Contains(esc[0].Text, "level 2") ||
		esc[0].Actor != incident.BotActor || esc[0].Data["reason"] != "ack_timeout" || esc[0].Quiet {
		t.Errorf("escalation told as: %+v", esc[0])
	}
}

func TestAckTimeoutStopsAtTheMaximumAndSaysWhenNobodyCanBePaged(t *testing.T) {
	e := newEscalationEnv(t, escalationPolicy(2))
	ctx := context.Background()
	pd := incident.Actor{Name: "PagerDuty", Source: incident.SourcePagerDuty}
	inc, err := e.svc.Declare(ctx, incident.Declaration{Title: "no link", Severity: incident.SEV2, Triggered: true, By: pd})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 5 * time.Hour} {
		if a := e.at(d); len(a) != 0 {
			t.Fatalf("an unlinked incident made pager calls: %+v", a)
		}
	}
	esc := eventsOf(e.timeline(inc.Number), incident.EventEscalated)
	if len(esc) != 2 || !strings.Contains(esc[0].Text, "nobody else was paged") || !strings.Contains(esc[1].Text, "2 of 2") {
		t.Fatalf("escalations: %+v", esc)
	}

	// Linked, but the bot has no way to escalate in PagerDuty: told, no call.
	noAPI := escalationPolicy(1)
	noAPI.PagerEscalates = false
	hooksOnly := newEscalationEnv(t, noAPI)
	linked := hooksOnly.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	if a := hooksOnly.at(time.Hour); len(a) != 0 {
		t.Fatalf("escalation without the REST API made calls: %+v", a)
	}
	if esc := eventsOf(hooksOnly.timeline(linked.Number), incident.EventEscalated); len(esc) != 1 || !strings.Contains(esc[0].Text, "own escalation policy applies") {
		t.Fatalf("escalation without the REST API: %+v", esc)
	}

	// SEV4 is never escalated; a zero maximum turns escalation off.
	quiet := newEscalationEnv(t, escalationPolicy(3))
	low, _ := quiet.svc.Declare(ctx, incident.Declaration{Title: "minor", Severity: incident.SEV4, Triggered: true, By: pd})
	off := newEscalationEnv(t, escalationPolicy(0))
	high, _ := off.svc.Declare(ctx, incident.Declaration{Title: "major", Severity: incident.SEV1, Triggered: true, By: pd})
	quiet.at(48 * time.Hour)
	off.at(48 * time.Hour)
	if n := len(eventsOf(quiet.timeline(low.Number), incident.EventEscalated)) + len(eventsOf(off.timeline(high.Number), incident.EventEscalated)); n != 0 {
		t.Fatalf("%d escalations of SEV4 or with escalation off", n)
	}
}

func TestAckTimeoutPagesTheDefaultTargetWhenNothingIsLinked(t *testing.T) {
	p := escalationPolicy(3)
	p.AutoPage = &incident.PagerTarget{Kind: "service", ID: "PDEFSVC", Name: "On-call"}
	e := newEscalationEnv(t, p)
	ctx := context.Background()
	pd := incident.Actor{Name: "PagerDuty", Source: incident.SourcePagerDuty}
	inc, _ := e.svc.Declare(ctx, incident.Declaration{Title: "no link", Severity: incident.SEV1, Triggered: true, By: pd})
	a := e.at(5 * time.Minute)
	if len(a) != 1 || a[0].Op != incident.PagerOpPage || a[0].Page != 0 || a[0].Target != *p.AutoPage || a[0].By != incident.BotActor {
		t.Fatalf("automatic page: %+v", a)
	}
	// The page opened and linked a PagerDuty incident: the next timeout
	// escalates it.
	if _, err := e.svc.LinkPager(ctx, a[0], incident.PagerRef{IncidentID: "PAUTO01", Number: 5}); err != nil {
		t.Fatal(err)
	}
	if a := e.at(10 * time.Minute); len(a) != 1 || a[0].Op != incident.PagerOpEscalate || a[0].Level != 2 || a[0].PagerIncidentID != "PAUTO01" {
		t.Fatalf("escalation after the automatic page: %+v", a)
	}
	pages := eventsOf(e.timeline(inc.Number), incident.EventPageSent)
	if len(pages) != 1 || !strings.Contains(pages[0].Text, "Nobody acknowledged") {
		t.Fatalf("page told as: %+v", pages)
	}
}

func TestAckTimeoutNeverFiresTwiceAcrossCrashesAndRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	clock := incidenttest.NewClock(pdT0)
	policy := escalationPolicy(3)
	store := bolttest.OpenAt(t, path)
	e := newPagerEnvOn(t, store, clock, incident.PagerSync{}, &policy)
	// The first run of the timer commits and then "crashes" before the
	// queue records the job done, so the queue runs it again.
	esc := incident.NewEscalator(e.svc, policy)
	crashed := false
	e.runner.Handle(incident.JobAckTimeout, func(ctx context.Context, j incident.Job) error {
		err := esc.HandleAckTimeout(ctx, j)
		if err == nil && !crashed {
			crashed = true
			return incident.Retryable(errors.New("process killed"), time.Second)
		}
		return err
	})
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0)) // SEV1, 5 minutes
	if a := e.at(5 * time.Minute); len(a) != 1 || !crashed {
		t.Fatalf("first escalation: %+v (crashed %v)", a, crashed)
	}
	if a := e.at(5*time.Minute + 30*time.Second); len(a) != 0 {
		t.Fatalf("the re-run escalated again: %+v", a)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// The bot is down for an hour, past many timeouts; at boot the overdue
	// timer fires once.
	clock.Set(pdT0.Add(65 * time.Minute))
	e2 := newPagerEnvOn(t, bolttest.OpenAt(t, path), clock, incident.PagerSync{}, &policy)
	a, _ := e2.run()
	if len(a) != 1 || a[0].Level != 3 {
		t.Fatalf("at boot: %+v", a)
	}
	if a, _ := e2.run(); len(a) != 0 {
		t.Fatalf("at boot, twice: %+v", a)
	}
	esc2 := eventsOf(e2.timeline(inc.Number), incident.EventEscalated)
	if len(esc2) != 2 {
		t.Fatalf("%d escalations recorded, want 2", len(esc2))
	}
}

func TestAckTimerFollowsSeverityAndEpisodes(t *testing.T) {
	e := newEscalationEnv(t, escalationPolicy(1))
	ctx := context.Background()
	trig := pdEvent("e1", incident.PagerTriggered, pdT0)
	trig.Incident.Priority, trig.Severity, trig.Incident.CreatedAt = "P3", incident.SEV3, pdT0
	inc := e.apply(trig)
	ref := incident.Ref{Number: inc.Number}
	e.clock.Set(pdT0.Add(time.Minute))
	if _, err := e.svc.SetSeverity(ctx, ref, incident.SEV1, carol); err != nil {
		t.Fatal(err)
	}
	if a := e.at(4*time.Minute + 59*time.Second); len(a) != 0 {
		t.Fatalf("early: %+v", a)
	}
	if a := e.at(5 * time.Minute); len(a) != 1 {
		t.Fatalf("SEV1 timeout after the severity change: %+v", a)
	}
	if a := e.at(2 * time.Hour); len(a) != 0 {
		t.Fatalf("the SEV3 timer fired too: %+v", a)
	}
	// PagerDuty acknowledges, then the acknowledgement times out there: a
	// new unacknowledged episode with its own escalations.
	ack := pdEvent("e2", incident.PagerAcknowledged, pdT0.Add(2*time.Hour))
	e.apply(ack)
	e.clock.Set(pdT0.Add(3 * time.Hour))
	e.apply(pdEvent("e3", incident.PagerUnacknowledged, pdT0.Add(3*time.Hour)))
	if a := e.at(3*time.Hour + 5*time.Minute); len(a) != 1 || a[0].Level != 3 {
		t.Fatalf("escalation of the second episode: %+v", a)
	}
	if n := len(eventsOf(e.timeline(inc.Number), incident.EventEscalated)); n != 2 {
		t.Fatalf("%d escalations", n)
	}
}

func TestUpdateReminders(t *testing.T) {
	p := incident.EscalationPolicy{UpdateReminders: incident.DefaultUpdateReminders()}
	e := newEscalationEnv(t, p)
	ctx := context.Background()
	inc, _ := e.svc.Declare(ctx, incident.Declaration{Title: "db down", Severity: incident.SEV1, By: carol})
	ref := incident.Ref{Number: inc.Number}
	reminders := func() []incident.Event { return eventsOf(e.timeline(inc.Number), incident.EventReminder) }

	e.at(29 * time.Minute)
	if n := len(reminders()); n != 0 {
		t.Fatalf("%d reminders before 30m", n)
	}
	e.at(30 * time.Minute)
	e.at(31 * time.Minute)
	r := reminders()
	if len(r) != 1 || !strings.HasPrefix(r[0].Text, "<@U0CAROL>") || !strings.Contains(r[0].Text, "no status update for 30m") || r[0].Quiet {
		t.Fatalf("reminder: %+v", r)
	}
	e.clock.Set(pdT0.Add(45 * time.Minute))
	if _, err := e.svc.PostStatusUpdate(ctx, ref, "failing over", carol); err != nil {
		t.Fatal(err)
	}
	e.at(70 * time.Minute) // 25 minutes after the update
	if n := len(reminders()); n != 1 {
		t.Fatalf("reminded %d times although an update was posted", n)
	}
	e.at(75 * time.Minute)
	e.at(105 * time.Minute)
	if n := len(reminders()); n != 3 {
		t.Fatalf("%d reminders by 105m, want 3", n)
	}
	e.clock.Set(pdT0.Add(106 * time.Minute))
	if _, err := e.svc.Resolve(ctx, ref, carol, ""); err != nil {
		t.Fatal(err)
	}
	e.at(10 * time.Hour)
	if n := len(reminders()); n != 3 {
		t.Fatalf("reminded after the resolution: %d", n)
	}

	// A severity change moves the next reminder; SEV4 is never reminded; an
	// incident without a commander asks for one.
	low, _ := e.svc.Declare(ctx, incident.Declaration{Title: "minor", Severity: incident.SEV4, By: carol})
	mid, _ := e.svc.Declare(ctx, incident.Declaration{Title: "slow", Severity: incident.SEV3, By: carol})
	pdInc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0.Add(10*time.Hour)))
	e.clock.Set(pdT0.Add(10*time.Hour + 10*time.Minute))
	if _, err := e.svc.SetSeverity(ctx, incident.Ref{Number: mid.Number}, incident.SEV1, carol); err != nil {
		t.Fatal(err)
	}
	e.at(10*time.Hour + 30*time.Minute)
	if n := len(eventsOf(e.timeline(mid.Number), incident.EventReminder)); n != 1 {
		t.Fatalf("SEV3 raised to SEV1: %d reminders at 30m", n)
	}
	nc := eventsOf(e.timeline(pdInc.Number), incident.EventReminder)
	if len(nc) != 1 || !strings.Contains(nc[0].Text, "has no commander") {
		t.Fatalf("reminder without a commander: %+v", nc)
	}
	e.at(100 * time.Hour)
	if n := len(eventsOf(e.timeline(low.Number), incident.EventReminder)); n != 0 {
		t.Fatalf("SEV4 reminded %d times", n)
	}
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "30s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 4*time.Hour + 29*time.Second: "4h",
	} {
		if got := incident.FormatWait(d); got != want {
			t.Errorf("FormatWait(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestReplacedTimersLeaveNoJobsBehind: every status update and severity
// change reschedules the incident's timers; the jobs they replace are
// removed, so the queue does not grow with the number of updates.
func TestReplacedTimersLeaveNoJobsBehind(t *testing.T) {
	p := escalationPolicy(3)
	p.UpdateReminders = incident.DefaultUpdateReminders()
	e := newEscalationEnv(t, p)
	ctx := context.Background()
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	e.run()
	// Timer jobs have no ordering key, so all of them are listed.
	timers := func() int {
		jobs, err := e.store.DueJobs(pdT0.Add(365*24*time.Hour), 10000, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, j := range jobs {
			if j.Kind == incident.JobAckTimeout || j.Kind == incident.JobUpdateReminder {
				n++
			}
		}
		return n
	}
	if n := timers(); n != 2 {
		t.Fatalf("%d timer jobs after the trigger, want 2 (ack timeout, update reminder)", n)
	}
	ref := incident.Ref{Number: inc.Number}
	for i := range 30 {
		e.clock.Advance(time.Second)
		if _, err := e.svc.PostStatusUpdate(ctx, ref, "still digging", carol); err != nil {
			t.Fatal(err)
		}
		sev := incident.SEV2
		if i%2 == 1 {
			sev = incident.SEV1
		}
		if _, err := e.svc.SetSeverity(ctx, ref, sev, carol); err != nil {
			t.Fatal(err)
		}
		e.run()
	}
	if n := timers(); n != 2 {
		t.Fatalf("%d timer jobs after 60 reschedules, want 2: replaced timers were left in the queue", n)
	}
	// The live timers still fire.
	e.clock.Advance(time.Hour)
	if _, err := e.runner.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	_, events, _ := e.svc.Timeline(ctx, ref)
	if len(eventsOf(events, incident.EventReminder)) == 0 || len(eventsOf(events, incident.EventEscalated)) == 0 {
		t.Fatal("the rescheduled timers did not fire")
	}
}

// TestAckTimeoutAsksThePagerFirst: a trigger delivered late is not escalated
// within AckGrace of its receipt; after that, an incident the pager says is
// acknowledged is not escalated (and is asked again one timeout later),
// and a failed look-up does not silence escalation.
func TestAckTimeoutAsksThePagerFirst(t *testing.T) {
	p := escalationPolicy(3)
	answer := incident.StatusAcknowledged
	var lookupErr error
	asked := 0
	p.PagerStatus = func(_ context.Context, id string) (incident.Status, error) {
		asked++
		if id != "PGR0VU2" {
			t.Errorf("asked about %q", id)
		}
		return answer, lookupErr
	}
	e := newEscalationEnv(t, p)
	trig := pdEvent("e1", incident.PagerTriggered, pdT0.Add(-20*time.Minute))
	trig.Incident.CreatedAt = trig.OccurredAt // SEV1, 5 minutes: overdue on arrival
	e.apply(trig)

	if a := e.at(incident.AckGrace - time.Second); len(a) != 0 || asked != 0 {
		t.Fatalf("within the grace: escalated %+v, asked %d times", a, asked)
	}
	if a := e.at(incident.AckGrace); len(a) != 0 || asked != 1 {
		t.Fatalf("acknowledged in the pager: escalated %+v, asked %d times", a, asked)
	}
	if a := e.at(incident.AckGrace + 4*time.Minute); len(a) != 0 || asked != 1 {
		t.Fatalf("asked again before one timeout: escalated %+v, asked %d times", a, asked)
	}
	lookupErr, answer = errors.New("pagerduty: 503"), ""
	if a := e.at(incident.AckGrace + 5*time.Minute); len(a) != 1 || a[0].Op != incident.PagerOpEscalate || asked != 2 {
		t.Fatalf("look-up failed: escalated %+v (want one escalation), asked %d times", a, asked)
	}
}

// A paged incident whose channel has nobody in it: its escalation notices
// and update reminders also go to the announce channel (top level), as
// long as nobody is there; once a person joins, they stay in the channel.
func TestUnattendedPagedIncidentRemindsInTheAnnounceChannel(t *testing.T) {
	p := escalationPolicy(3)
	p.UpdateReminders = map[incident.Severity]time.Duration{incident.SEV1: 20 * time.Minute}
	e := newEscalationEnv(t, p)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0.Add(-2*time.Minute)))
	sync := func() {
		t.Helper()
		if err := runSync(t, e.store, chat, e.clock, inc.Number); err != nil {
			t.Fatal(err)
		}
	}
	copied := func() (kinds []incident.EventKind) {
		for _, post := range chat.PostsIn("CANNOUNCE") {
			if post.Message.Kind == incident.MessageEvents && post.Message.ThreadID == "" {
				for _, ev := range post.Message.Events {
					kinds = append(kinds, ev.Kind)
				}
			}
		}
		return kinds
	}
	sync()
	e.at(3 * time.Minute) // escalation 1
	sync()
	e.at(20 * time.Minute) // escalation 2 (at 8m) and the update reminder
	sync()
	got := copied()
	if len(got) < 3 || got[0] != incident.EventEscalated || !slices.Contains(got, incident.EventReminder) {
		t.Fatalf("announce channel copies: %v\nall posts: %+v", got, chat.PostsIn("CANNOUNCE"))
	}

	// Somebody joins: the channel has a person, copies stop.
	if _, err := e.svc.AddMembers(ctx, incident.Ref{Number: inc.Number}, []string{carol.ID}); err != nil {
		t.Fatal(err)
	}
	before := len(got)
	e.at(time.Hour)
	sync()
	_, events, _ := e.svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	if n := len(copied()); n != before || len(eventsOf(events, incident.EventReminder)) < 2 {
		t.Errorf("after a person joined: %d copies (want %d), %d reminders on the timeline", n, before, len(eventsOf(events, incident.EventReminder)))
	}
}
