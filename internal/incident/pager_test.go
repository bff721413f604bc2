package incident_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
)

var (
	pdT0    = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
	carol   = incident.Actor{ID: "U0CAROL", Name: "carol", Source: incident.SourceSlack}
	pdAgent = incident.PagerUser{ID: "PLH1HKV", Name: "Tenex Engineer"}
)

// pagerEnv is a service on a real store with a job runner whose pager and
// timer jobs are recorded (or run by the escalator) instead of calling out.
type pagerEnv struct {
	t      *testing.T
	svc    *incident.Service
	store  *boltstore.Store
	clock  *incidenttest.Clock
	runner *queue.Runner

	mu      sync.Mutex
	actions []incident.PagerAction
	users   []incident.PagerUsersJob
}

func newPagerEnv(t *testing.T, sync incident.PagerSync) *pagerEnv {
	t.Helper()
	store := bolttest.Open(t)
	return newPagerEnvOn(t, store, incidenttest.NewClock(pdT0), sync, nil)
}

func newPagerEnvOn(t *testing.T, store *boltstore.Store, clock *incidenttest.Clock, sync incident.PagerSync, policy *incident.EscalationPolicy) *pagerEnv {
	t.Helper()
	e := &pagerEnv{t: t, store: store, clock: clock}
	e.svc = incident.NewService(incident.ServiceConfig{Store: store, Clock: clock})
	e.svc.AddHook(incident.PagerSyncHook(sync))
	e.runner = queue.New(queue.Config{Store: store, Clock: clock, Logger: zaptest.NewLogger(t)})
	e.runner.Handle(incident.JobPagerAction, func(_ context.Context, j incident.Job) error {
		var a incident.PagerAction
		if err := json.Unmarshal(j.Payload, &a); err != nil {
			return err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.actions = append(e.actions, a)
		return nil
	})
	e.runner.Handle(incident.JobPagerUsers, func(_ context.Context, j incident.Job) error {
		var u incident.PagerUsersJob
		if err := json.Unmarshal(j.Payload, &u); err != nil {
			return err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.users = append(e.users, u)
		return nil
	})
	if policy != nil {
		esc := incident.NewEscalator(e.svc, *policy)
		e.svc.AddHook(esc.Hook())
		e.runner.Handle(incident.JobAckTimeout, esc.HandleAckTimeout)
		e.runner.Handle(incident.JobUpdateReminder, esc.HandleUpdateReminder)
	}
	return e
}

// run runs every due job and returns the pager actions and user jobs they
// recorded since the last call.
func (e *pagerEnv) run() ([]incident.PagerAction, []incident.PagerUsersJob) {
	e.t.Helper()
	if _, err := e.runner.RunDue(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a, u := e.actions, e.users
	e.actions, e.users = nil, nil
	return a, u
}

func (e *pagerEnv) apply(ev incident.PagerEvent) *incident.Incident {
	e.t.Helper()
	inc, err := e.svc.ApplyPagerEvent(context.Background(), asPagerDuty(ev))
	if err != nil {
		e.t.Fatalf("applying %s %s: %v", ev.Type, ev.ID, err)
	}
	return inc
}

// asPagerDuty names the event's source and its incident as the PagerDuty
// adapter does.
func asPagerDuty(ev incident.PagerEvent) incident.PagerEvent {
	if ev.Source == "" {
		ev.Source, ev.SourceName = incident.SourcePagerDuty, "PagerDuty"
	}
	if ev.Incident.Label == "" && ev.Incident.Number != 0 {
		ev.Incident.Label = "PagerDuty #" + strconv.FormatInt(ev.Incident.Number, 10)
	}
	return ev
}

func (e *pagerEnv) timeline(n int64) []incident.Event {
	e.t.Helper()
	_, events, err := e.svc.Timeline(context.Background(), incident.Ref{Number: n})
	if err != nil {
		e.t.Fatal(err)
	}
	return events
}

func (e *pagerEnv) incidents() []*incident.Incident {
	e.t.Helper()
	list, err := e.svc.List(context.Background(), incident.Filter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// pdIncident is PagerDuty incident PGR0VU2 as the docs' sample shows it.
func pdIncident() incident.PagerIncident {
	return incident.PagerIncident{
		ID: "PGR0VU2", Number: 2, URL: "https://acme.pagerduty.com/incidents/PGR0VU2", Title: "A little bump in the road",
		Status: "triggered", IncidentKey: "d3640fbd41094207a1c11e58e46b1662", CreatedAt: pdT0.Add(-2 * time.Minute),
		ServiceID: "PF9KMXH", ServiceName: "API Service", EscalationPolicyID: "PUS0KTE", EscalationPolicyName: "Default",
		Urgency: "high", Priority: "P1", Assignees: []incident.PagerUser{{ID: "PTUXL6G", Name: "User 123"}}, Full: true,
	}
}

func pdEvent(id, typ string, at time.Time) incident.PagerEvent {
	return incident.PagerEvent{ID: id, Type: typ, OccurredAt: at, Agent: pdAgent, Incident: pdIncident(), Severity: incident.SEV1}
}

func kinds(events []incident.Event) string {
	var out []string
	for _, ev := range events {
		k := string(ev.Kind)
		if ev.Quiet {
			k += "(quiet)"
		}
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

func TestPagerTriggerOpensOneIncidentHoweverOftenItArrives(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true})
	trig := pdEvent("ev-1", incident.PagerTriggered, pdT0.Add(-time.Minute))
	inc := e.apply(trig)
	again := e.apply(trig) // the job ran twice (crash before it was completed)
	retrig := e.apply(pdEvent("ev-2", incident.PagerTriggered, pdT0))
	if inc.Number != again.Number || inc.Number != retrig.Number || len(e.incidents()) != 1 {
		t.Fatalf("one PagerDuty incident opened %d incidents", len(e.incidents()))
	}
	if inc.Status != incident.StatusTriggered || inc.Severity != incident.SEV1 || inc.Source != incident.SourcePagerDuty ||
		inc.DeclaredBy.Name != "Tenex Engineer" || !inc.DetectedAt.Equal(pdT0.Add(-2*time.Minute)) {
		t.Errorf("opened incident: %+v", inc)
	}
	p := inc.Pager
	if p.IncidentID != "PGR0VU2" || p.Number != 2 || p.URL == "" || p.ServiceName != "API Service" || p.EscalationLevel != 1 || p.Priority != "P1" {
		t.Errorf("pager link: %+v", p)
	}
	if got := kinds(e.timeline(inc.Number)); got != "declared pager_event(quiet)" {
		t.Errorf("timeline: %s", got)
	}
	actions, users := e.run()
	if len(actions) != 0 {
		t.Errorf("a PagerDuty change was sent back to PagerDuty: %+v", actions)
	}
	if len(users) != 1 || len(users[0].Users) != 1 || users[0].Users[0].ID != "PTUXL6G" || users[0].Incident != inc.Number {
		t.Errorf("assignee resolution: %+v", users)
	}
}

func TestPagerEventsOutOfOrderAndLate(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true})
	// The acknowledgement overtakes the trigger.
	ack := pdEvent("ev-ack", incident.PagerAcknowledged, pdT0.Add(time.Minute))
	ack.Incident.Status = "acknowledged"
	inc := e.apply(ack)
	if inc.Status != incident.StatusAcknowledged || inc.AcknowledgedBy.Name != "Tenex Engineer" {
		t.Fatalf("incident opened by an acknowledgement: %s by %+v", inc.Status, inc.AcknowledgedBy)
	}
	late := e.apply(pdEvent("ev-trig", incident.PagerTriggered, pdT0))
	if late.Number != inc.Number || late.Status != incident.StatusAcknowledged || len(e.incidents()) != 1 {
		t.Fatalf("late trigger: %d incidents, status %s", len(e.incidents()), late.Status)
	}
	// An unacknowledgement older than the acknowledgement is not applied.
	old := e.apply(pdEvent("ev-unack-old", incident.PagerUnacknowledged, pdT0.Add(30*time.Second)))
	if old.Status != incident.StatusAcknowledged {
		t.Fatalf("a late unacknowledgement moved the incident to %s", old.Status)
	}
	got := kinds(e.timeline(inc.Number))
	if got != "declared status_changed pager_event(quiet) pager_event(quiet)" {
		t.Fatalf("timeline: %s", got)
	}
	// Notes that arrive before anything else open the incident too.
	note := incident.PagerEvent{ID: "ev-note", Type: incident.PagerAnnotated, OccurredAt: pdT0, Agent: pdAgent, Text: "first!",
		Incident: incident.PagerIncident{ID: "PNEW001", URL: "https://acme.pagerduty.com/incidents/PNEW001", Title: "Disk full"}}
	other := e.apply(note)
	if other.Number == inc.Number || other.Title != "Disk full" || other.Severity != incident.DefaultSeverity {
		t.Fatalf("incident opened by a note: %+v", other)
	}
	trig := incident.PagerEvent{ID: "ev-t2", Type: incident.PagerTriggered, OccurredAt: pdT0, Agent: pdAgent, Severity: incident.SEV2,
		Incident: incident.PagerIncident{ID: "PNEW001", Number: 7, Title: "Disk full", Priority: "P2", Full: true}}
	if later := e.apply(trig); later.Number != other.Number || later.Severity != incident.SEV2 || later.Pager.Number != 7 {
		t.Fatalf("trigger after the note: %+v", later)
	}
	if len(e.incidents()) != 2 {
		t.Fatalf("%d incidents, want 2", len(e.incidents()))
	}
}

func TestPagerTransitionsAndRecords(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true, Notes: true})
	ctx := context.Background()
	at := pdT0
	prio, sev := "P1", incident.SEV1 // what PagerDuty's incident data says now
	next := func(id, typ string) incident.PagerEvent {
		at = at.Add(time.Minute)
		e.clock.Set(at)
		ev := pdEvent(id, typ, at)
		ev.Incident.Priority, ev.Severity = prio, sev
		return ev
	}
	inc := e.apply(next("e1", incident.PagerTriggered))
	ref := incident.Ref{Number: inc.Number}

	// Acknowledged in Slack first: PagerDuty's acknowledgement (the echo of
	// the bot's own call) changes nothing and is recorded quietly.
	if _, err := e.svc.Acknowledge(ctx, ref, carol); err != nil {
		t.Fatal(err)
	}
	if got := e.apply(next("e2", incident.PagerAcknowledged)); got.AcknowledgedBy.ID != carol.ID {
		t.Fatalf("acknowledged by %+v", got.AcknowledgedBy)
	}
	e.apply(next("e3", incident.PagerUnacknowledged))
	note := next("e4", incident.PagerAnnotated)
	note.Text = "rolling back the deploy"
	e.apply(note)
	prio, sev = "P3", incident.SEV3
	e.apply(next("e5", incident.PagerPriority))
	upd := next("e6", incident.PagerStatusUpdate)
	upd.Text = "A fix is being developed"
	e.apply(upd)
	resp := next("e7", incident.PagerResponderAdd)
	resp.Responder, resp.Text = incident.PagerUser{ID: "PVMGSML", Name: "Maeve"}, "Please help"
	e.apply(resp)
	esc := next("e8", incident.PagerEscalated)
	esc.Incident.Assignees = []incident.PagerUser{{ID: "PLEVEL2", Name: "Second Level"}}
	e.apply(esc)
	e.apply(next("e9", incident.PagerResolved))
	got := e.apply(next("e10", incident.PagerReopened))
	e.apply(next("e10", incident.PagerReopened)) // replay

	if got.Status != incident.StatusTriggered || got.Severity != incident.SEV3 || got.Reopened != 1 || !got.LastUpdateAt.Equal(pdT0.Add(6*time.Minute)) {
		t.Fatalf("incident after PagerDuty's events: status %s sev %s reopened %d last update %v", got.Status, got.Severity, got.Reopened, got.LastUpdateAt)
	}
	events := e.timeline(inc.Number)
	want := "declared status_changed pager_event(quiet) status_changed note severity_changed status_update pager_event pager_event status_changed status_changed"
	if k := kinds(events); k != want {
		t.Fatalf("timeline:\n got %s\nwant %s", k, want)
	}
	for _, ev := range events[2:] {
		if ev.Actor.Source != incident.SourcePagerDuty || ev.Actor.ID != pdAgent.ID || !strings.HasPrefix(ev.Key, "pagerduty:e") {
			t.Errorf("event %s: actor %+v key %q", ev.Kind, ev.Actor, ev.Key)
		}
	}
	if events[4].Text != "rolling back the deploy" || !strings.Contains(events[7].Text, "Maeve") || !strings.Contains(events[8].Text, "Second Level") {
		t.Errorf("texts: %q / %q / %q", events[4].Text, events[7].Text, events[8].Text)
	}
	// Only carol's acknowledgement goes to PagerDuty; nothing PagerDuty did
	// is sent back (no echo loop), not even its note.
	actions, users := e.run()
	if len(actions) != 1 || actions[0].Op != incident.PagerOpAcknowledge || actions[0].PagerIncidentID != "PGR0VU2" || actions[0].By.ID != carol.ID {
		t.Fatalf("pager actions: %+v", actions)
	}
	var resolved []string
	for _, u := range users {
		for _, pu := range u.Users {
			resolved = append(resolved, pu.ID)
		}
	}
	if strings.Join(resolved, ",") != "PTUXL6G,PVMGSML,PLEVEL2,PTUXL6G" {
		t.Errorf("users resolved: %v", resolved)
	}
}

func TestPagerSyncSendsChatChangesOnly(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true, Notes: true})
	ctx := context.Background()
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	ref := incident.Ref{Number: inc.Number}
	if _, err := e.svc.AddNote(ctx, ref, "checking the primary", carol); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Mitigate(ctx, ref, carol, "failed over"); err != nil { // triggered → mitigated acknowledges
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, ref, carol, ""); err != nil {
		t.Fatal(err)
	}
	actions, _ := e.run()
	var ops []string
	for _, a := range actions {
		ops = append(ops, a.Op)
	}
	if strings.Join(ops, " ") != "note acknowledge resolve" || actions[0].Text != "checking the primary (carol, via incident-bot)" {
		t.Fatalf("actions: %+v", actions)
	}
	// PagerDuty's webhook for the copied note is an echo: no second note.
	echo := pdEvent("e-echo", incident.PagerAnnotated, pdT0)
	echo.Text = actions[0].Text
	e.apply(echo)
	if notes := eventsOf(e.timeline(inc.Number), incident.EventNote); len(notes) != 1 {
		t.Fatalf("%d notes after the echo, want 1", len(notes))
	}

	// With the sync off, nothing is sent; an unlinked incident sends nothing.
	off := newPagerEnv(t, incident.PagerSync{})
	linked := off.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	if _, err := off.svc.Acknowledge(ctx, incident.Ref{Number: linked.Number}, carol); err != nil {
		t.Fatal(err)
	}
	local, _ := off.svc.Declare(ctx, incident.Declaration{Title: "local", By: carol})
	if _, err := off.svc.AddNote(ctx, incident.Ref{Number: local.Number}, "x", carol); err != nil {
		t.Fatal(err)
	}
	if actions, _ := off.run(); len(actions) != 0 {
		t.Fatalf("sync off or unlinked, yet: %+v", actions)
	}
}

func TestPageIsLinkedByItsKeyWhateverArrivesFirst(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true})
	ctx := context.Background()
	inc, _ := e.svc.Declare(ctx, incident.Declaration{Title: "checkout errors", Severity: incident.SEV2, By: carol})
	ref := incident.Ref{Number: inc.Number}
	target := incident.PagerTarget{Kind: "service", ID: "PSVC001", Name: "Checkout"}
	_, a1, err := e.svc.RequestPage(ctx, ref, target, "please join", carol)
	if err != nil {
		t.Fatal(err)
	}
	_, a2, _ := e.svc.RequestPage(ctx, ref, target, "", carol)
	if a1.Page != 1 || a2.Page != 2 || incident.PageKey(inc.Number, 1) == incident.PageKey(inc.Number, 2) {
		t.Fatalf("page numbers %d %d", a1.Page, a2.Page)
	}
	actions, _ := e.run()
	if len(actions) != 2 || actions[0].Op != incident.PagerOpPage || actions[0].Message != "please join" || actions[0].Target != target {
		t.Fatalf("page actions: %+v", actions)
	}

	// PagerDuty's webhook for the page overtakes the page job's answer: the
	// incident key says it is ours, so no second incident is opened.
	trig := pdEvent("e1", incident.PagerTriggered, pdT0)
	trig.Incident.ID, trig.Incident.IncidentKey = "PPAGED1", incident.PageKey(inc.Number, 1)
	if got := e.apply(trig); got.Number != inc.Number || got.Pager.IncidentID != "PPAGED1" || got.Status != incident.StatusAcknowledged {
		t.Fatalf("webhook of our page: %+v", got)
	}
	linked, err := e.svc.LinkPager(ctx, a1, incident.PagerRef{IncidentID: "PPAGED1", Number: 2, URL: "https://pd/PPAGED1", EscalationLevel: 1})
	if err != nil || linked.Pager.IncidentID != "PPAGED1" || linked.Pager.URL != "https://pd/PPAGED1" {
		t.Fatalf("link after the webhook: %+v %v", linked, err)
	}
	// The second page opens a second PagerDuty incident: recorded, not linked.
	if _, err := e.svc.LinkPager(ctx, a2, incident.PagerRef{IncidentID: "PPAGED2", Number: 3}); err != nil {
		t.Fatal(err)
	}
	// Its events are told but do not move the incident.
	sec := pdEvent("e2", incident.PagerResolved, pdT0)
	sec.Incident.ID, sec.Incident.IncidentKey = "PPAGED2", incident.PageKey(inc.Number, 2)
	if got := e.apply(sec); got.Status == incident.StatusResolved || got.Pager.IncidentID != "PPAGED1" {
		t.Fatalf("second page's resolution resolved the incident: %+v", got.Pager)
	}
	// The page job ran twice: recorded once.
	if _, err := e.svc.LinkPager(ctx, a1, incident.PagerRef{IncidentID: "PPAGED1"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.incidents()); n != 1 {
		t.Fatalf("%d incidents", n)
	}
	var pages int
	for _, ev := range e.timeline(inc.Number) {
		if ev.Kind == incident.EventPageSent {
			pages++
			if !strings.Contains(ev.Text, "Checkout") || ev.Data["pager_incident"] == "" {
				t.Errorf("page event: %+v", ev)
			}
		}
	}
	if pages != 2 {
		t.Fatalf("%d page events, want 2", pages)
	}

	resolved, _ := e.svc.Resolve(ctx, ref, carol, "")
	if _, _, err := e.svc.RequestPage(ctx, incident.Ref{Number: resolved.Number}, target, "", carol); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Errorf("paging a resolved incident: %v", err)
	}
}

func TestEventsAPIPageIsLinkedByDedupKey(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true})
	ctx := context.Background()
	inc, _ := e.svc.Declare(ctx, incident.Declaration{Title: "queue backlog", By: carol})
	_, a, _ := e.svc.RequestPage(ctx, incident.Ref{Number: inc.Number}, incident.PagerTarget{Name: "ops"}, "", carol)
	if _, err := e.svc.LinkPager(ctx, a, incident.PagerRef{DedupKey: inc.ID()}); err != nil {
		t.Fatal(err)
	}
	// The incident PagerDuty opened for the event carries the dedup key as
	// its incident key.
	trig := pdEvent("e1", incident.PagerTriggered, pdT0)
	trig.Incident.ID, trig.Incident.IncidentKey = "PEVT001", inc.ID()
	got := e.apply(trig)
	if got.Number != inc.Number || got.Pager.IncidentID != "PEVT001" || got.Pager.DedupKey != inc.ID() {
		t.Fatalf("events API page not linked: %+v", got.Pager)
	}
	if _, err := e.svc.Resolve(ctx, incident.Ref{Number: inc.Number}, carol, ""); err != nil {
		t.Fatal(err)
	}
	actions, _ := e.run()
	last := actions[len(actions)-1]
	if last.Op != incident.PagerOpResolve || last.DedupKey != inc.ID() || last.PagerIncidentID != "PEVT001" {
		t.Fatalf("resolve action: %+v", last)
	}
}

func TestRequestEscalationAndFailureReport(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{Status: true})
	ctx := context.Background()
	local, _ := e.svc.Declare(ctx, incident.Declaration{Title: "local", By: carol})
	if _, _, err := e.svc.RequestEscalation(ctx, incident.Ref{Number: local.Number}, carol); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("escalating an unlinked incident: %v", err)
	}
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	ref := incident.Ref{Number: inc.Number}
	_, l1, err := e.svc.RequestEscalation(ctx, ref, carol)
	if err != nil {
		t.Fatal(err)
	}
	got, l2, _ := e.svc.RequestEscalation(ctx, ref, carol)
	if l1 != 2 || l2 != 3 || got.Pager.EscalationLevel != 3 {
		t.Fatalf("levels %d %d (%d)", l1, l2, got.Pager.EscalationLevel)
	}
	actions, _ := e.run()
	if len(actions) != 2 || actions[0].Op != incident.PagerOpEscalate || actions[0].Level != 2 || actions[1].Level != 3 || actions[1].PagerIncidentID != "PGR0VU2" {
		t.Fatalf("escalate actions: %+v", actions)
	}
	// Level 3 does not exist: PagerDuty refuses, the channel is told once,
	// and the level is given back.
	for range 2 {
		if err := e.svc.ReportPagerFailure(ctx, actions[1], "job-9", "PagerDuty cannot escalate it further"); err != nil {
			t.Fatal(err)
		}
	}
	after, events, _ := e.svc.Timeline(ctx, ref)
	var errs []incident.Event
	for _, ev := range events {
		if ev.Kind == incident.EventError {
			errs = append(errs, ev)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Text, "could not escalate") || !strings.Contains(errs[0].Text, "cannot escalate it further") || errs[0].Quiet {
		t.Fatalf("failure told: %+v", errs)
	}
	if after.Pager.EscalationLevel != 2 {
		t.Errorf("level after a refused escalation: %d", after.Pager.EscalationLevel)
	}
}

func TestAddMembers(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{})
	ctx := context.Background()
	inc := e.apply(pdEvent("e1", incident.PagerTriggered, pdT0))
	got, err := e.svc.AddMembers(ctx, incident.Ref{Number: inc.Number}, []string{"U1", "U2", "U1"})
	if err != nil || strings.Join(got.Members, ",") != "U1,U2" || strings.Join(got.People(), ",") != "U1,U2" {
		t.Fatalf("members %v (%v)", got.Members, err)
	}
	rev := got.Revision
	again, _ := e.svc.AddMembers(ctx, incident.Ref{Number: inc.Number}, []string{"U2"})
	if again.Revision != rev {
		t.Errorf("adding nobody new stored a change")
	}
}

func TestPagerEventValidation(t *testing.T) {
	e := newPagerEnv(t, incident.PagerSync{})
	ctx := context.Background()
	for _, ev := range []incident.PagerEvent{
		{Type: incident.PagerTriggered, Incident: incident.PagerIncident{ID: "P1"}},
		{ID: "e", Type: incident.PagerTriggered},
		{ID: "e", Type: "incident.workflow.started", Incident: incident.PagerIncident{ID: "P1"}},
		{ID: "e", Type: incident.PagerTriggered, Incident: incident.PagerIncident{ID: "P1"}, Source: incident.SourceSlack},
	} {
		if ev.Source == "" {
			ev = asPagerDuty(ev)
		}
		if _, err := e.svc.ApplyPagerEvent(ctx, ev); incident.ErrorCode(err) != incident.EINVALID {
			t.Errorf("%+v: %v", ev, err)
		}
	}
	if len(e.incidents()) != 0 {
		t.Fatal("an invalid event opened an incident")
	}
	long := pdEvent("e1", incident.PagerTriggered, pdT0)
	long.Incident.Title = strings.Repeat("x", 500)
	long.Incident.Number = 0
	if inc := e.apply(long); len([]rune(inc.Title)) != incident.MaxTitleLength {
		t.Errorf("title of %d characters", len([]rune(inc.Title)))
	}
	empty := pdEvent("e2", incident.PagerTriggered, pdT0)
	empty.Incident.ID, empty.Incident.Title, empty.Incident.Number = "PEMPTY1", "", 0
	if inc := e.apply(empty); inc.Title != "PagerDuty incident PEMPTY1" {
		t.Errorf("untitled: %q", inc.Title)
	}
}

func TestPageKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		page int
		want string
	}{{7, 1, "incidentbot-INC-7-page-1"}, {7, 0, "incidentbot-INC-7-auto"}, {123, 12, "incidentbot-INC-123-page-12"}} {
		if got := incident.PageKey(tc.n, tc.page); got != tc.want {
			t.Errorf("PageKey(%d, %d) = %q", tc.n, tc.page, got)
		}
	}
}
