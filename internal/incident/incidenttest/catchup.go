package incidenttest

import (
	"fmt"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// CatchupStart is when CatchupFixture's incident is declared.
var CatchupStart = time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)

// CatchupFixture is a SEV1 incident and its timeline for catch-up tests:
// declared at CatchupStart by alice, acknowledged, with a comms lead, an
// impact, two status updates, a pin, runbook runs, follow-ups (one done),
// a severity change, and carol joining at 14:40. With long, it has many
// more of everything, with long texts: more than a Slack message holds. Titles and
// notes carry broadcast mentions (<!channel>, <!here>, @everyone) that
// renderers must neutralise.
func CatchupFixture(long bool) (*incident.Incident, []incident.Event) {
	slack := func(id string) incident.Actor { return incident.Actor{ID: id, Source: incident.SourceSlack} }
	at := func(m int) time.Time { return CatchupStart.Add(time.Duration(m) * time.Minute) }
	inc := &incident.Incident{
		Number: 7, Title: "Checkout is down <!channel> @everyone", Severity: incident.SEV1, Status: incident.StatusMitigated,
		Source: incident.SourceSlack, DeclaredBy: slack("U0ALICE"), DeclaredAt: at(0), DetectedAt: at(0), AcknowledgedAt: at(0),
		Description: "Payments API returns 502 after the 14:00 deploy.", Impact: "EU customers cannot pay <!here>",
		Roles:    map[incident.Role]string{incident.RoleCommander: "U0ALICE", incident.RoleComms: "U0BOB"},
		Services: []string{"checkout-api", "payments"},
		Followups: []incident.Followup{
			{ID: 1, Text: "Add a canary stage", Owner: "U0BOB", Due: "2026-11-30"},
			{ID: 2, Text: "Alert on 502 rate", Done: true},
			{ID: 3, Text: "Write the runbook for rollbacks"},
		},
	}
	var events []incident.Event
	add := func(m int, kind incident.EventKind, by incident.Actor, text string, data map[string]string) {
		events = append(events, incident.Event{Incident: 7, Seq: int64(len(events) + 1), At: at(m), Kind: kind, Actor: by, Text: text, Data: data, Recorded: at(m)})
	}
	add(0, incident.EventDeclared, slack("U0ALICE"), inc.Title, map[string]string{"severity": "SEV2", "status": "acknowledged"})
	add(1, incident.EventRoleAssigned, slack("U0ALICE"), "", map[string]string{"role": "comms", "user": "U0BOB"})
	add(3, incident.EventSeverityChanged, slack("U0ALICE"), "", map[string]string{"from": "SEV2", "to": "SEV1"})
	add(5, incident.EventStatusUpdate, slack("U0BOB"), "We are looking into failed payments.", nil)
	add(8, incident.EventMessagePinned, slack("U0DAN"), "the 502s started with build 4711 <!channel>", map[string]string{"author": "U0DAN", "channel": "C1", "ts": "1.2"})
	add(12, incident.EventRunbookRan, slack("U0ALICE"), "Runbook restart-payments failed", map[string]string{"runbook": "restart-payments", "outcome": "failed", "exit_code": "1", "dry_run": "false"})
	add(20, incident.EventRunbookRan, slack("U0ALICE"), "Runbook rollback succeeded", map[string]string{"runbook": "rollback", "outcome": "succeeded", "exit_code": "0", "dry_run": "false"})
	add(30, incident.EventStatusChanged, slack("U0ALICE"), "rolled back to build 4710", map[string]string{"from": "acknowledged", "to": "mitigated"})
	add(32, incident.EventStatusUpdate, slack("U0BOB"), "Mitigated: payments succeed again. @everyone", nil)
	events = append(events, incident.Event{Incident: 7, Seq: int64(len(events) + 1), At: at(40), Kind: incident.EventMemberJoined, Actor: slack("U0CAROL"), Quiet: true, Recorded: at(40)})
	add(45, incident.EventNote, slack("U0DAN"), "error rate back to baseline", nil)
	add(50, incident.EventFollowupAdded, slack("U0ALICE"), "Write the runbook for rollbacks", map[string]string{"id": "3"})
	if !long {
		return inc, events
	}
	filler := strings.Repeat("the queue drained slowly and we kept watching the dashboards; ", 5)
	for i := range 40 {
		m := 52 + i
		add(m, incident.EventNote, slack("U0DAN"), fmt.Sprintf("note %d: %s", i+1, filler), nil)
		add(m, incident.EventMessagePinned, slack("U0EVE"), fmt.Sprintf("pin %d: %s <!here>", i+1, filler), map[string]string{"author": "U0EVE"})
		add(m, incident.EventRunbookRan, slack("U0ALICE"), "Runbook dry run timed out", map[string]string{"runbook": fmt.Sprintf("check-%d", i+1), "outcome": "timed_out", "dry_run": "true"})
		add(m, incident.EventSeverityChanged, slack("U0ALICE"), fmt.Sprintf("re-rated %d: %s", i+1, filler), map[string]string{"from": "SEV1", "to": "SEV1"})
		inc.Followups = append(inc.Followups, incident.Followup{ID: 4 + i, Text: fmt.Sprintf("follow-up %d: %s", i+4, filler)})
	}
	add(93, incident.EventRoleAssigned, slack("U0ALICE"), "", map[string]string{"role": "scribe", "user": "U0S40"})
	add(94, incident.EventStatusUpdate, slack("U0BOB"), "Still mitigated. "+filler+filler, nil)
	inc.Roles[incident.RoleScribe] = "U0S40"
	inc.Description = "Payments API returns 502 after the 14:00 deploy. " + filler + filler + filler
	inc.Impact = "EU customers cannot pay <!here>; " + filler + filler
	return inc, events
}
