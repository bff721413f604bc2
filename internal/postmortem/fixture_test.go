package postmortem

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	incidenttest.Golden(t, name, got, *update)
}

// The people of the fixture.
var (
	alice   = incident.Actor{ID: "U01ALICE", Name: "Alice Ng", Source: incident.SourceSlack}
	bob     = incident.Actor{ID: "U02BOB", Name: "Bob Martin", Source: incident.SourceSlack}
	carol   = incident.Actor{ID: "U03CAROL", Name: "Carol Diaz", Source: incident.SourceSlack}
	pdBob   = incident.Actor{ID: "PUSER02", Name: "Bob Martin", Source: incident.SourcePagerDuty}
	pdAlert = incident.Actor{ID: "PSVC001", Name: "Checkout API", Source: incident.SourcePagerDuty}
	botActr = incident.BotActor
)

func at(hms string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", "2026-11-20 "+hms)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

const pdURL = "https://example.pagerduty.com/incidents/Q1ABCDEF"

// fixture is INC-7 as the store would hold it after a realistic incident:
// a PagerDuty trigger, an automatic escalation, an acknowledgement in
// PagerDuty, notes, a pinned message (recorded later, shown at its own
// time), a severity change, a runbook run, mitigation, follow-ups and a
// resolution, with text written in Slack's escaped form.
func fixture() (*incident.Incident, []incident.Event) {
	inc := &incident.Incident{
		Number:      7,
		Title:       "Checkout payments failing",
		Description: "Customers see “payment failed” at checkout &amp; the error rate is &gt; 30%.\nStarted right after the 09:55 deploy.",
		Severity:    incident.SEV1,
		Status:      incident.StatusResolved,
		Source:      incident.SourcePagerDuty,
		DeclaredBy:  pdAlert,
		Roles:       map[incident.Role]string{incident.RoleCommander: "U01ALICE", incident.RoleComms: "U03CAROL"},
		Members:     []string{"U01ALICE", "U02BOB", "U03CAROL"},
		Services:    []string{"checkout-api", "payments-db"},
		Impact:      "About 30% of checkout payments failed for an hour; no data was lost.",
		StartedAt:   at("09:55:00"),
		Followups: []incident.Followup{
			{ID: 1, Text: "Add a canary stage for checkout deploys", Owner: "U01ALICE", Due: "2026-11-20", CreatedBy: alice, CreatedAt: at("10:30:00")},
			{ID: 2, Text: "Alert on DB connection saturation above 80% | page the DB on-call", Owner: "U02BOB", CreatedBy: bob, CreatedAt: at("10:31:00"), Done: true, DoneAt: at("11:04:00"), DoneBy: bob},
			{ID: 3, Text: "Raise the pool size default", CreatedBy: carol, CreatedAt: at("11:03:00")},
		},
		DetectedAt:     at("09:58:00"),
		DeclaredAt:     at("10:00:00"),
		AcknowledgedAt: at("10:07:30"),
		AcknowledgedBy: pdBob,
		MitigatedAt:    at("10:25:00"),
		ResolvedAt:     at("11:02:00"),
		UpdatedAt:      at("11:05:00"),
		Revision:       14,
		Chat:           incident.ChatRef{ChannelID: "C0INC7", ChannelName: "inc-7-checkout-payments-failing"},
		Pager:          incident.PagerRef{IncidentID: "Q1ABCDEF", Number: 1234, URL: pdURL, ServiceName: "Checkout API", Status: "resolved"},
	}
	ev := func(hms string, kind incident.EventKind, by incident.Actor, text string, data map[string]string) incident.Event {
		return incident.Event{Incident: 7, At: at(hms), Recorded: at(hms), Kind: kind, Actor: by, Text: text, Data: data}
	}
	pin := ev("10:06:10", incident.EventMessagePinned, carol, "Grafana shows DB connections maxed at 500 since 09:56 &lt;https://grafana.example/d/db&gt;",
		map[string]string{"author": "U03CAROL", "channel": "C0INC7", "ts": "1795168570.000100"})
	pin.Recorded = at("10:15:00")
	events := []incident.Event{
		ev("10:00:00", incident.EventDeclared, pdAlert, "Checkout payments failing", map[string]string{"severity": "SEV2", "status": "triggered"}),
		ev("10:00:01", incident.EventPagerEvent, pdAlert, "", map[string]string{"type": "incident.triggered", "pager_incident": "Q1ABCDEF", "url": pdURL}),
		ev("10:00:02", incident.EventChannelCreated, botActr, "Channel #inc-7-checkout-payments-failing created", map[string]string{"channel_id": "C0INC7"}),
		ev("10:05:00", incident.EventEscalated, botActr, "", map[string]string{"level": "2", "reason": "ack_timeout"}),
		ev("10:05:01", incident.EventPagerEvent, pdAlert, "", map[string]string{"type": "incident.escalated", "pager_incident": "Q1ABCDEF", "url": pdURL}),
		pin,
		ev("10:07:30", incident.EventStatusChanged, pdBob, "", map[string]string{"from": "triggered", "to": "acknowledged"}),
		ev("10:07:31", incident.EventPagerEvent, pdBob, "", map[string]string{"type": "incident.acknowledged", "pager_incident": "Q1ABCDEF", "url": pdURL}),
		ev("10:08:00", incident.EventRoleAssigned, alice, "", map[string]string{"role": "commander", "user": "U01ALICE"}),
		ev("10:08:20", incident.EventRoleAssigned, alice, "", map[string]string{"role": "comms", "user": "U03CAROL"}),
		ev("10:09:00", incident.EventMemberJoined, bob, "", nil),
		ev("10:10:00", incident.EventNote, alice, "Checkout error rate at 35%. Deploy 4f2a went out at 09:55; suspect the new connection pool settings.", nil),
		ev("10:12:00", incident.EventSeverityChanged, alice, "customers cannot pay", map[string]string{"from": "SEV2", "to": "SEV1"}),
		ev("10:14:00", incident.EventStatusUpdate, carol, "We are investigating failed payments at checkout. Next update in 30 minutes.", nil),
		ev("10:16:00", incident.EventRunbookRequested, bob, "", map[string]string{"runbook": "rollback-deploy", "run_id": "r1", "decision": "confirmed"}),
		ev("10:18:30", incident.EventRunbookRan, bob, "", map[string]string{"runbook": "rollback-deploy", "run_id": "r1", "outcome": "succeeded", "exit_code": "0", "duration_ms": "95300", "dry_run": "false"}),
		ev("10:25:00", incident.EventStatusChanged, bob, "Rolled back 4f2a; error rate back to 0.2%", map[string]string{"from": "acknowledged", "to": "mitigated"}),
		ev("10:26:00", incident.EventNote, bob, "Honestly this was human error, Dave should have run the load test before deploying.\nThe pool size default is also way too low &amp; nobody noticed.", nil),
		ev("10:27:00", incident.EventNote, alice, "The outage was caused by <@U04DAVE>'s deploy, not by the pool.", nil),
		ev("10:30:00", incident.EventFollowupAdded, alice, "Add a canary stage for checkout deploys", map[string]string{"id": "1"}),
		ev("10:31:00", incident.EventFollowupAdded, bob, "Alert on DB connection saturation above 80% | page the DB on-call", map[string]string{"id": "2"}),
		ev("11:02:00", incident.EventStatusChanged, alice, "Error rate stable for 30 minutes", map[string]string{"from": "mitigated", "to": "resolved"}),
		ev("11:02:01", incident.EventPagerEvent, pdBob, "", map[string]string{"type": "incident.resolved", "pager_incident": "Q1ABCDEF", "url": pdURL}),
		ev("11:02:30", incident.EventFollowupChanged, alice, "Add a canary stage for checkout deploys", map[string]string{"id": "1", "change": "assigned", "owner": "U01ALICE"}),
		ev("11:02:40", incident.EventFollowupChanged, alice, "Add a canary stage for checkout deploys", map[string]string{"id": "1", "change": "due", "due": "2026-11-20"}),
		ev("11:03:00", incident.EventFollowupAdded, carol, "Raise the pool size default", map[string]string{"id": "3"}),
		ev("11:04:00", incident.EventFollowupChanged, bob, "Alert on DB connection saturation above 80% | page the DB on-call", map[string]string{"id": "2", "change": "done"}),
		ev("11:04:30", incident.EventFactChanged, alice, "", map[string]string{"fact": "started", "to": "2026-11-20T09:55:00Z"}),
		ev("11:04:40", incident.EventFactChanged, carol, "About 30% of checkout payments failed for an hour; no data was lost.", map[string]string{"fact": "impact", "to": "About 30% of checkout payments failed for an hour; no data was lost."}),
		ev("11:05:00", incident.EventNote, carol, "It was nobody's fault; the root cause was the pool limit.", nil),
	}
	for i := range events {
		events[i].Seq = int64(i + 1)
	}
	return inc, events
}

func berlin(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
