package incident_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func amAlert(fp, name, sev string, firing bool) incident.Alert {
	return incident.Alert{Fingerprint: fp, Firing: firing, StartsAt: time.Date(2026, 11, 16, 2, 55, 0, 0, time.UTC),
		Labels:       map[string]string{"alertname": name, "severity": sev, "service": "checkout", "instance": fp},
		Annotations:  map[string]string{"summary": name + " on " + fp, "runbook_url": "https://runbooks.example/" + name},
		GeneratorURL: "http://prometheus.example/graph?g0.expr=" + name}
}

func amGroup(alerts ...incident.Alert) incident.AlertNotification {
	return incident.AlertNotification{Source: "alertmanager", SourceName: "Alertmanager", GroupKey: `{}:{alertname="HighErrors"}`,
		GroupLabels: map[string]string{"alertname": "HighErrors"}, Alerts: alerts, ExternalURL: "http://am.example"}
}

func alertTexts(t *testing.T, svc *incident.Service, n int64) []string {
	t.Helper()
	_, events, err := svc.Timeline(context.Background(), incident.Ref{Number: n})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		if ev.Kind == incident.EventAlert {
			out = append(out, ev.Data["change"]+" "+ev.Data["alertname"])
		}
	}
	return out
}

func TestAlertGroupLifecycle(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	var policy incident.AlertPolicy
	apply := func(n incident.AlertNotification) *incident.Incident {
		t.Helper()
		inc, err := svc.ApplyAlerts(ctx, n, policy)
		if err != nil {
			t.Fatal(err)
		}
		return inc
	}
	a1, a2 := amAlert("fp1", "HighErrors", "critical", true), amAlert("fp2", "HighErrors", "warning", true)

	inc := apply(amGroup(a1))
	if inc.Number != 1 || inc.Title != "HighErrors on fp1" || inc.Severity != incident.SEV1 || inc.Status != incident.StatusTriggered ||
		inc.Source != "alertmanager" || inc.DeclaredBy.ChatUser() || inc.Services[0] != "checkout" ||
		!strings.Contains(inc.Description, "runbook: https://runbooks.example/HighErrors") || !strings.Contains(inc.Description, "source: http://prometheus.example") {
		t.Fatalf("opened: %+v", inc)
	}
	// Alertmanager re-sends the same group at repeat_interval: nothing changes.
	rev := inc.Revision
	if again := apply(amGroup(a1)); again.Number != 1 || again.Revision != rev {
		t.Fatalf("re-send changed the incident: %+v", again)
	}
	// A second alert joins, then the first resolves.
	clock.Advance(time.Minute)
	apply(amGroup(a1, a2))
	r1 := a1
	r1.Firing = false
	apply(amGroup(r1, a2))
	apply(amGroup(r1, a2)) // re-sent
	if got := strings.Join(alertTexts(t, svc, 1), ", "); got != "firing HighErrors, resolved HighErrors" {
		t.Fatalf("timeline alerts: %s", got)
	}
	// The whole group resolves: told once, not mitigated by default.
	r2 := a2
	r2.Firing = false
	inc = apply(amGroup(r1, r2))
	apply(amGroup(r1, r2))
	if inc.Status != incident.StatusTriggered {
		t.Fatalf("alerts changed the status without ALERT_AUTO_MITIGATE: %s", inc.Status)
	}
	if got := alertTexts(t, svc, 1); len(got) != 4 || got[3] != "cleared " {
		t.Fatalf("timeline alerts: %q", got)
	}
	if _, events, _ := svc.Timeline(ctx, incident.Ref{Number: 1}); events[len(events)-1].Data["offer"] != "mitigate" {
		t.Fatalf("the group's resolution does not offer Mitigated: %+v", events[len(events)-1])
	}
	// Resolved in chat; the group fires again: a new incident naming the old one.
	if _, err := svc.Resolve(ctx, incident.Ref{Number: 1}, incident.Actor{ID: "U1", Source: incident.SourceSlack}, "fixed"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	next := apply(amGroup(a1))
	_, events, _ := svc.Timeline(ctx, incident.Ref{Number: next.Number})
	if next.Number != 2 || events[0].Data["follows"] != "INC-1" {
		t.Fatalf("refire after resolution: %+v %+v", next, events[0])
	}

	// With a reopen window and auto-mitigation.
	policy = incident.AlertPolicy{ReopenWindow: 2 * time.Hour, AutoMitigate: true}
	r1b := a1
	r1b.Firing = false
	if inc := apply(amGroup(r1b)); inc.Status != incident.StatusMitigated {
		t.Fatalf("auto-mitigate: %s", inc.Status)
	}
	if _, err := svc.Resolve(ctx, incident.Ref{Number: 2}, incident.Actor{ID: "U1", Source: incident.SourceSlack}, "fixed"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if inc := apply(amGroup(a1)); inc.Number != 2 || inc.Status != incident.StatusTriggered || inc.Reopened != 1 {
		t.Fatalf("refire within the window: %+v", inc)
	}
	if list, _ := svc.List(ctx, incident.Filter{}); len(list) != 2 {
		t.Fatalf("%d incidents", len(list))
	}
}

func TestAlertNotificationValidation(t *testing.T) {
	svc, _, _ := newService(t)
	for _, n := range []incident.AlertNotification{
		{Source: "alertmanager", Alerts: []incident.Alert{amAlert("fp", "X", "", true)}},
		{Source: incident.SourceSlack, GroupKey: "g", Alerts: []incident.Alert{amAlert("fp", "X", "", true)}},
	} {
		if _, err := svc.ApplyAlerts(context.Background(), n, incident.AlertPolicy{}); incident.ErrorCode(err) != incident.EINVALID {
			t.Errorf("%+v: %v", n, err)
		}
	}
	// A resolved group the bot never saw fire opens nothing.
	r := amAlert("fp", "X", "", false)
	if inc, err := svc.ApplyAlerts(context.Background(), amGroup(r), incident.AlertPolicy{}); err != nil || inc != nil {
		t.Fatalf("resolved-only group: %+v, %v", inc, err)
	}
}

func TestAlertStormAttachesGroupsToOneIncident(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	policy := incident.AlertPolicy{StormThreshold: 2, StormWindow: 10 * time.Minute}
	group := func(name string) incident.AlertNotification {
		n := amGroup(amAlert("fp-"+name, name, "critical", true))
		n.GroupKey = `{}:{alertname="` + name + `"}`
		return n
	}
	var got []int64
	for _, name := range []string{"A", "B", "C", "D"} {
		inc, err := svc.ApplyAlerts(ctx, group(name), policy)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, inc.Number)
		clock.Advance(time.Second)
	}
	// A and B open their own; C opens the storm incident; D joins it.
	if got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 3 {
		t.Fatalf("incidents per group: %v", got)
	}
	storm, events, err := svc.Timeline(ctx, incident.Ref{Number: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(storm.Title, "Alert storm") || !strings.Contains(storm.Description, "- C on fp-C") || !strings.Contains(storm.Description, "- D on fp-D") {
		t.Fatalf("storm incident: %+v", storm)
	}
	if n := len(alertTexts(t, svc, 3)); n != 2 || len(events) != 3 {
		t.Fatalf("storm timeline: %d alert events, %d events", n, len(events))
	}
	// A later notification of an attached group lands on the storm.
	d := group("D")
	d.Alerts = append(d.Alerts, amAlert("fp-D2", "D", "critical", true))
	if inc, err := svc.ApplyAlerts(ctx, d, policy); err != nil || inc.Number != 3 {
		t.Fatalf("attached group's next notification: %+v, %v", inc, err)
	}
	// Once the window has passed, groups open their own incidents again.
	clock.Advance(time.Hour)
	if inc, err := svc.ApplyAlerts(ctx, group("E"), policy); err != nil || inc.Number != 4 {
		t.Fatalf("after the storm: %+v, %v", inc, err)
	}
}

// CheckAlertGroup is the one check every alert router's decoder makes
// (issue 14: it was written in both adapters).
func TestCheckAlertGroup(t *testing.T) {
	type wire struct{ fp, status string }
	get := func(a wire) (string, string) { return a.fp, a.status }
	ok := []wire{{"f1", "firing"}, {"f2", "resolved"}}
	cases := []struct {
		name   string
		key    string
		alerts []wire
		want   string // "" accepted; else part of the message
	}{
		{"accepted", "{}:{alertname=\"X\"}", ok, ""},
		{"no alerts", "g", nil, ""},
		{"no group key", "  ", ok, "groupKey missing"},
		{"group key too long", strings.Repeat("k", incident.MaxGroupKey+1), ok, "longer than 4096"},
		{"no fingerprint", "g", []wire{{"f1", "firing"}, {"", "firing"}}, "alert 1 has no fingerprint"},
		{"unknown status", "g", []wire{{"f1", "pending"}}, "alert 0 has no fingerprint or no firing/resolved status"},
	}
	for _, c := range cases {
		err := incident.CheckAlertGroup(c.key, c.alerts, get)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(incident.ErrorMessage(err), c.want)):
			t.Errorf("%s: %v (code %s), want EINVALID saying %q", c.name, err, incident.ErrorCode(err), c.want)
		}
	}
}
