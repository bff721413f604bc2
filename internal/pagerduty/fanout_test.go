package pagerduty_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
)

// withAssignees returns a documented incident event of the given type with
// its assignees replaced by ids (each a user reference).
func withAssignees(t *testing.T, eventID, eventType string, ids []string) []byte {
	t.Helper()
	var env map[string]map[string]any
	if err := json.Unmarshal(pdtest.WithEvent(eventID, eventType), &env); err != nil {
		t.Fatal(err)
	}
	refs := make([]map[string]string, len(ids))
	for i, id := range ids {
		refs[i] = map[string]string{"id": id, "type": "user_reference", "summary": "User " + id,
			"self": "https://api.pagerduty.com/users/" + id, "html_url": "https://acme.pagerduty.com/users/" + id}
	}
	env["event"]["data"].(map[string]any)["assignees"] = refs
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneWebhookCannotFanOutUnbounded: a 1.6 MB delivery listing 25,000
// assignees (PagerDuty knows none but the first two) costs at most
// MaxInvitesPerEvent user look-ups and a couple of log lines, still
// invites the known ones, and a later event listing the same unknown users
// costs no look-up at all (404s are remembered).
func TestOneWebhookCannotFanOutUnbounded(t *testing.T) {
	e := newWorker(t, apiToken, "", "")
	core, logs := observer.New(zapcore.DebugLevel)
	// The env's worker, logging to the observer instead.
	e.worker = pagerduty.NewWorker(pagerduty.WorkerConfig{
		Service: e.svc, Client: newClient(e.pd, nil, apiToken, ""), Directory: e.dir, Severities: defaultSeverities,
		Logger: zap.New(core), Clock: e.clock,
	})
	logged := func() int {
		return logs.FilterLevelExact(zapcore.InfoLevel).Len() + logs.FilterLevelExact(zapcore.WarnLevel).Len() + logs.FilterLevelExact(zapcore.ErrorLevel).Len()
	}
	e.runner.Handle(pagerduty.JobEvent, e.worker.HandleEvent)
	e.runner.Handle(incident.JobPagerUsers, e.worker.HandleUsers)
	ctx := context.Background()

	ids := []string{"PALICE1", "PBOB001"}
	for i := range 25000 {
		ids = append(ids, fmt.Sprintf("PX%05d", i))
	}
	body := withAssignees(t, "fanout-1", "incident.triggered", ids)
	if len(body) < 1<<20 {
		t.Fatalf("the delivery is only %d bytes", len(body))
	}
	enqueue := e.enqueueDelivery
	enqueue(body)
	e.run()

	lookups := len(e.pd.CallsTo("GET /users/{id}"))
	if lookups > pagerduty.MaxInvitesPerEvent {
		t.Errorf("one delivery made %d PagerDuty user look-ups, want at most %d", lookups, pagerduty.MaxInvitesPerEvent)
	}
	if n := len(e.dir.lookup); n > pagerduty.MaxInvitesPerEvent {
		t.Errorf("one delivery made %d chat directory look-ups, want at most %d", n, pagerduty.MaxInvitesPerEvent)
	}
	if n := logged(); n > 5 {
		t.Errorf("one delivery logged %d lines at info or above, want a handful", n)
	}
	list, err := e.svc.List(ctx, incident.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("incidents: %v, %v", list, err)
	}
	if got := list[0].Members; len(got) != 2 || got[0] != "U0ALICE" || got[1] != "U0BOB" {
		t.Errorf("members %v, want the two known assignees", got)
	}

	// The same unknown users again (a reassignment): nothing is looked up.
	enqueue(withAssignees(t, "fanout-2", "incident.reassigned", ids[2:pagerduty.MaxInvitesPerEvent]))
	e.run()
	if n := len(e.pd.CallsTo("GET /users/{id}")); n != lookups {
		t.Errorf("%d more user look-ups for users PagerDuty said it does not know", n-lookups)
	}
}

// enqueueDelivery stores a webhook delivery's job as the intake does.
func (e *workerEnv) enqueueDelivery(body []byte) {
	e.t.Helper()
	d, err := pagerduty.Decode(body)
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.store.Update(context.Background(), func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: pagerduty.JobEvent, Key: pagerduty.EventJobKey(d.PagerIncidentID()), Due: e.clock.Now(), Payload: body})
	})
	if err != nil {
		e.t.Fatal(err)
	}
}
