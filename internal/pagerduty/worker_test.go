package pagerduty_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/queue"
)

var (
	t0    = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
	carol = incident.Actor{ID: "U0CAROL", Name: "carol", Source: incident.SourceSlack}
)

// directory is a chat user directory: email → user id.
type directory struct {
	mu     sync.Mutex
	users  map[string]string
	lookup []string
}

func (d *directory) LookupUserByEmail(_ context.Context, email string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookup = append(d.lookup, email)
	if id, ok := d.users[email]; ok {
		return id, nil
	}
	return "", incident.Errorf(incident.ENOTFOUND, "no user %s", email)
}

type workerEnv struct {
	t      *testing.T
	pd     *pdtest.Server
	store  *boltstore.Store
	clock  *incidenttest.Clock
	svc    *incident.Service
	worker *pagerduty.Worker
	runner *queue.Runner
	dir    *directory
}

func newWorker(t *testing.T, token, routing, defaultService string) *workerEnv {
	t.Helper()
	e := &workerEnv{t: t, pd: fakePD(t), store: bolttest.Open(t), clock: incidenttest.NewClock(t0),
		dir: &directory{users: map[string]string{"alice@example.com": "U0ALICE", "bob@example.com": "U0BOB"}}}
	e.svc = incident.NewService(incident.ServiceConfig{Store: e.store, Clock: e.clock})
	e.svc.AddHook(incident.PagerSyncHook(incident.PagerSync{Status: true, Notes: true}))
	e.worker = pagerduty.NewWorker(pagerduty.WorkerConfig{
		Service: e.svc, Client: newClient(e.pd, nil, token, routing), Directory: e.dir, Severities: defaultSeverities,
		DefaultService: defaultService, Logger: zaptest.NewLogger(t), Clock: e.clock,
	})
	e.runner = queue.New(queue.Config{Store: e.store, Clock: e.clock, Logger: zaptest.NewLogger(t), MinBackoff: time.Second, MaxBackoff: time.Minute})
	e.runner.Handle(pagerduty.JobEvent, e.worker.HandleEvent)
	e.runner.Handle(incident.JobPagerAction, e.worker.HandleAction)
	e.runner.Handle(incident.JobPagerUsers, e.worker.HandleUsers)
	return e
}

// run runs the due jobs, moving the clock past retry backoffs until only
// chat syncs (which have no handler here) are left.
func (e *workerEnv) run() {
	e.t.Helper()
	for range 10 {
		if _, err := e.runner.RunDue(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		e.clock.Advance(2 * time.Minute)
		waiting, err := e.store.DueJobs(e.clock.Now(), 100, func(j incident.Job) bool { return j.Kind == incident.JobChatSync })
		if err != nil {
			e.t.Fatal(err)
		}
		if len(waiting) == 0 {
			return
		}
	}
	e.t.Fatal("jobs still waiting after 10 rounds")
}

func (e *workerEnv) declare(title string) *incident.Incident {
	e.t.Helper()
	inc, err := e.svc.Declare(context.Background(), incident.Declaration{Title: title, Severity: incident.SEV2, By: carol})
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

func (e *workerEnv) events(n int64, kind incident.EventKind) []incident.Event {
	e.t.Helper()
	_, events, _ := e.svc.Timeline(context.Background(), incident.Ref{Number: n})
	return eventsOfKind(events, kind)
}

func eventsOfKind(events []incident.Event, kind incident.EventKind) []incident.Event {
	var out []incident.Event
	for _, ev := range events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (e *workerEnv) get(n int64) *incident.Incident {
	e.t.Helper()
	inc, err := e.svc.Get(context.Background(), incident.Ref{Number: n})
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

func TestPageThroughTheRESTAPILinksOnePagerDutyIncident(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	ctx := context.Background()
	inc := e.declare("checkout errors")
	ref := incident.Ref{Number: inc.Number}
	e.pd.ServerError("POST /incidents", 2) // PagerDuty is having a moment
	reply, err := e.worker.Page(ctx, ref, "payments", "please join", carol)
	if err != nil || !strings.Contains(reply, "Payments") || !strings.Contains(reply, inc.ID()) {
		t.Fatalf("reply %q %v", reply, err)
	}
	e.run()
	pdIncs := e.pd.Incidents()
	if len(pdIncs) != 1 || pdIncs[0].Key != incident.PageKey(inc.Number, 1) || pdIncs[0].ServiceID != "PSVC003" ||
		!strings.Contains(pdIncs[0].Title, "INC-1: checkout errors") || pdIncs[0].Details != "please join" {
		t.Fatalf("PagerDuty incidents: %+v", pdIncs)
	}
	if n := len(e.pd.CallsTo("POST /incidents")); n != 3 {
		t.Errorf("%d create calls, want 3 (two 500s, then success)", n)
	}
	got := e.get(inc.Number)
	if got.Pager.IncidentID != pdIncs[0].ID || got.Pager.Number != 1 || got.Pager.URL == "" || got.Pager.ServiceName != "Payments" {
		t.Fatalf("link: %+v", got.Pager)
	}
	pages := e.events(inc.Number, incident.EventPageSent)
	if len(pages) != 1 || !strings.Contains(pages[0].Text, "<@U0CAROL> paged Payments") || !strings.Contains(pages[0].Text, "PagerDuty #1") {
		t.Fatalf("page told as %+v", pages)
	}

	// Second page, whose answer gets lost: PagerDuty opened the incident,
	// and the retry finds it by its key instead of paging again.
	if _, err := newClient(e.pd, nil, apiToken, "").CreateIncident(ctx, pagerduty.NewIncident{Title: "x", ServiceID: "PSVC001", Key: incident.PageKey(inc.Number, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.worker.Page(ctx, ref, "Checkout API", "", carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	if n := len(e.pd.Incidents()); n != 2 {
		t.Fatalf("%d PagerDuty incidents after the lost answer, want 2", n)
	}
	if n := len(e.events(inc.Number, incident.EventPageSent)); n != 2 {
		t.Fatalf("%d page events", n)
	}
}

func TestStalePagesAndEscalationsAreDropped(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	ctx := context.Background()
	inc := e.declare("blip")
	ref := incident.Ref{Number: inc.Number}
	if _, err := e.worker.Page(ctx, ref, "payments", "", carol); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, ref, carol, "it was nothing"); err != nil {
		t.Fatal(err)
	}
	e.run()
	if n := len(e.pd.Incidents()); n != 0 {
		t.Fatalf("paged for a resolved incident: %d PagerDuty incidents", n)
	}

	// An automatic escalation decided just before an acknowledgement.
	pdInc := e.pd.Trigger("PSVC001", "Checkout 500s")
	body := e.pd.TakeEvents()[0].Body()
	if err := e.store.Update(ctx, func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: pagerduty.JobEvent, Key: "pd:" + pdInc.ID, Due: e.clock.Now(), Payload: body})
	}); err != nil {
		t.Fatal(err)
	}
	e.run()
	list, _ := e.svc.List(ctx, incident.Filter{})
	linked := list[len(list)-1]
	if err := e.store.Update(ctx, func(tx incident.Tx) error {
		return incident.EnqueuePagerAction(tx, incident.PagerAction{Incident: linked.Number, Op: incident.PagerOpEscalate, By: incident.BotActor,
			PagerIncidentID: pdInc.ID, Level: 2, Reason: "ack_timeout"}, e.clock.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Acknowledge(ctx, incident.Ref{Number: linked.Number}, carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	if got, _ := e.pd.Incident(pdInc.ID); got.Level != 1 || got.Status != "acknowledged" {
		t.Fatalf("PagerDuty incident: level %d status %s", got.Level, got.Status)
	}
}

func TestPageTargetsAndRefusals(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	ctx := context.Background()
	inc := e.declare("db down")
	ref := incident.Ref{Number: inc.Number}
	for target, want := range map[string]string{
		"nothing-like-it": "no service or escalation policy", "checkout": "more than one", "": "Name the PagerDuty service",
		"Checkout On-call": "PAGERDUTY_DEFAULT_SERVICE",
	} {
		if _, err := e.worker.Page(ctx, ref, target, "", carol); err == nil || !strings.Contains(incident.ErrorMessage(err), want) {
			t.Errorf("page %q: %v", target, err)
		}
	}
	e.pd.RateLimit("GET /services", 1, 30)
	if _, err := e.worker.Page(ctx, ref, "payments", "", carol); err == nil || !strings.Contains(incident.ErrorMessage(err), "try again") {
		t.Errorf("rate limited look-up: %v", err)
	}
	if n, _, _, _ := e.store.JobStats(); n != 1 { // the declaration's chat sync
		t.Fatalf("refused pages queued work: %d jobs", n)
	}

	// PagerDuty refuses the page for good: told in the channel, the job is
	// moved to the dead letters.
	e.pd.Fail(pdtest.Fault{Route: "POST /incidents", Status: 400, Code: 2001, Message: "Invalid Input Provided"})
	if _, err := e.worker.Page(ctx, ref, "payments", "", carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	errs := e.events(inc.Number, incident.EventError)
	if len(errs) != 1 || !strings.Contains(errs[0].Text, "could not page Payments") || !strings.Contains(errs[0].Text, "Invalid Input Provided") {
		t.Fatalf("refusal told as %+v", errs)
	}
	dead, _ := e.store.DeadJobs()
	if len(dead) != 1 || dead[0].Kind != incident.JobPagerAction {
		t.Fatalf("dead jobs: %+v", dead)
	}
	if e.get(inc.Number).Pager.Linked() {
		t.Fatal("a refused page linked the incident")
	}

	// An escalation policy is paged on the default service.
	withDefault := newWorker(t, apiToken, "", "PSVC001")
	inc2 := withDefault.declare("payments down")
	if _, err := withDefault.worker.Page(ctx, incident.Ref{Number: inc2.Number}, "PEP0002", "", carol); err != nil {
		t.Fatal(err)
	}
	withDefault.run()
	got := withDefault.pd.Incidents()
	if len(got) != 1 || got[0].ServiceID != "PSVC001" || got[0].PolicyID != "PEP0002" || strings.Join(got[0].Assignees, ",") != "PBOB001" {
		t.Fatalf("escalation policy page: %+v", got)
	}
}

func TestEscalateAndStatusSyncThroughTheRESTAPI(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	ctx := context.Background()
	inc := e.declare("checkout errors")
	ref := incident.Ref{Number: inc.Number}
	if _, err := e.worker.Page(ctx, ref, "PSVC001", "", carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	pdID := e.get(inc.Number).Pager.IncidentID
	reply, err := e.worker.Escalate(ctx, ref, carol)
	if err != nil || !strings.Contains(reply, "level 2") {
		t.Fatalf("escalate: %q %v", reply, err)
	}
	e.run()
	if got, _ := e.pd.Incident(pdID); got.Level != 2 || strings.Join(got.Assignees, ",") != "PBOB001" {
		t.Fatalf("PagerDuty incident after escalate: %+v", got)
	}
	// There is no level 3: PagerDuty says so, the channel is told.
	if _, err := e.worker.Escalate(ctx, ref, carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	errs := e.events(inc.Number, incident.EventError)
	if len(errs) != 1 || !strings.Contains(errs[0].Text, "cannot escalate it further") {
		t.Fatalf("refused escalation told as %+v", errs)
	}
	if lvl := e.get(inc.Number).Pager.EscalationLevel; lvl != 2 {
		t.Errorf("level %d after the refusal", lvl)
	}
	if _, err := e.svc.AddNote(ctx, ref, "rolled back", carol); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, ref, carol, "fixed"); err != nil {
		t.Fatal(err)
	}
	e.run()
	got, _ := e.pd.Incident(pdID)
	if got.Status != "resolved" || len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "rolled back") {
		t.Fatalf("PagerDuty incident after note and resolve: %+v", got)
	}
}

func TestPageThroughTheEventsAPI(t *testing.T) {
	e := newWorker(t, "", routingKey, "")
	ctx := context.Background()
	inc := e.declare("queue backlog")
	ref := incident.Ref{Number: inc.Number}
	if _, err := e.worker.Page(ctx, ref, "ops", "look at the queue", carol); err != nil {
		t.Fatal(err)
	}
	e.run()
	calls := e.pd.CallsTo("POST /v2/enqueue")
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     struct {
			Summary, Source, Severity string
			Details                   map[string]string `json:"custom_details"`
		}
	}
	if len(calls) != 1 || calls[0].JSON(&ev) != nil || ev.DedupKey != inc.ID() || ev.EventAction != "trigger" || ev.Payload.Severity != "error" ||
		ev.Payload.Details["message"] != "look at the queue" || ev.Payload.Details["paged_by"] != "<@U0CAROL>" {
		t.Fatalf("event: %+v", ev)
	}
	if got := e.get(inc.Number); got.Pager.DedupKey != inc.ID() {
		t.Fatalf("link: %+v", got.Pager)
	}
	if _, err := e.worker.Escalate(ctx, ref, carol); incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(incident.ErrorMessage(err), "Events API cannot escalate") {
		t.Fatalf("escalate without REST: %v", err)
	}
	if _, err := e.svc.Acknowledge(ctx, ref, carol); err == nil {
		t.Fatal("declared in chat, so already acknowledged")
	}
	if _, err := e.svc.Resolve(ctx, ref, carol, ""); err != nil {
		t.Fatal(err)
	}
	e.run()
	calls = e.pd.CallsTo("POST /v2/enqueue")
	if len(calls) != 2 || !strings.Contains(string(calls[1].Body), `"event_action":"resolve"`) || !strings.Contains(string(calls[1].Body), `"dedup_key":"INC-1"`) {
		t.Fatalf("resolve through the Events API: %d calls", len(calls))
	}
	if got := e.pd.Incidents(); len(got) != 1 || got[0].Status != "resolved" {
		t.Fatalf("PagerDuty incident: %+v", got)
	}
}

func TestWebhookEventsInviteAssigneesAndResponders(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	ctx := context.Background()
	pdInc := e.pd.Trigger("PSVC001", "Checkout 500s")
	evs := e.pd.TakeEvents()
	if len(evs) != 1 || evs[0].Type != "incident.triggered" {
		t.Fatalf("fake's events: %+v", evs)
	}
	store := e.enqueueDelivery
	store(evs[0].Body())
	responder := `{"incident":{"id":"` + pdInc.ID + `","type":"incident_reference","summary":"Checkout 500s"},"user":{"id":"PBOB001","type":"user_reference","summary":"Bob Secondary"},"message":"need a hand","state":"pending","type":"incident_responder"}`
	store(pdtest.Envelope("resp-1", "incident.responder.added", &pdtest.Ref{ID: "PALICE1", Summary: "Alice Oncall"}, responder))
	e.run()
	list, _ := e.svc.List(ctx, incident.Filter{})
	if len(list) != 1 {
		t.Fatalf("%d incidents", len(list))
	}
	got := list[0]
	if strings.Join(got.Members, ",") != "U0ALICE,U0BOB" || got.Pager.IncidentID != pdInc.ID || got.Title != "Checkout 500s" {
		t.Fatalf("incident: members %v pager %+v", got.Members, got.Pager)
	}
	// Emails are cached: a second trigger's assignee is not looked up again.
	usersBefore := len(e.pd.CallsTo("GET /users/{id}"))
	pd2 := e.pd.Trigger("PSVC002", "Worker stuck")
	for _, ev := range e.pd.TakeEvents() {
		store(ev.Body())
	}
	e.run()
	if n := len(e.pd.CallsTo("GET /users/{id}")); n != usersBefore {
		t.Errorf("%d user look-ups for a cached user", n-usersBefore)
	}
	if list, _ := e.svc.List(ctx, incident.Filter{}); len(list) != 2 || list[1].Pager.IncidentID != pd2.ID || strings.Join(list[1].Members, ",") != "U0ALICE" {
		t.Fatalf("second incident: %+v", list[1])
	}
}
