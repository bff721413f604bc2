package postmortem

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// A confirmed run reads as two lines, the decision and the run: the bot's
// asking for the confirmation (or an approval) is not a line of its own.
// Seen in `bot shell`: "confirm requested", "confirmed", "succeeded".
func TestRunbookRunIsOneLinePerDecisionAndRun(t *testing.T) {
	inc, events := fixture()
	add := func(hms string, kind incident.EventKind, data map[string]string) {
		events = append(events, incident.Event{Incident: 7, Seq: int64(len(events) + 1), At: at(hms), Recorded: at(hms), Kind: kind,
			Actor: incident.Actor{ID: "U02BOB", Name: "Bob Martin", Source: incident.SourceSlack}, Data: data})
	}
	run := map[string]string{"runbook": "echo-it", "params": "word=hello token=•••", "run_id": "r9", "dry_run": "false"}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(run)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	add("11:40:00", incident.EventRunbookRequested, with("decision", "confirm_requested"))
	add("11:40:05", incident.EventRunbookRequested, with("decision", "confirmed"))
	add("11:40:06", incident.EventRunbookRequested, with("decision", "approval_requested"))
	add("11:41:00", incident.EventRunbookRequested, with("decision", "approved"))
	add("11:41:01", incident.EventRunbookRan, with("outcome", "succeeded", "exit_code", "0", "duration_ms", "1200"))
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("12:00:00"), Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(r.Body), "\n") {
		if strings.Contains(l, "`echo-it`") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"- `11:40:05` **Runbook** · Bob Martin: `echo-it` word=hello token=••• confirmed",
		"- `11:41:00` **Runbook** · Bob Martin: `echo-it` word=hello token=••• approved",
		"- `11:41:01` **Runbook** · Bob Martin: `echo-it` word=hello token=••• succeeded (exit 0, 1.2s)",
	}
	if !slices.Equal(lines[:min(len(lines), 3)], want) || len(lines) > 4 { // the fourth: the Runbook runs table
		t.Errorf("runbook lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// Runbook entries: one line per decision and per run, from the data (the
// chat line in Text is not repeated), no empty code span, no exit code for
// a dry run, milliseconds shown as such, approvals not called requests.
func TestRunbookEntries(t *testing.T) {
	inc, events := fixture()
	add := func(hms string, kind incident.EventKind, text string, data map[string]string) {
		events = append(events, incident.Event{Incident: 7, Seq: int64(len(events) + 1), At: at(hms), Recorded: at(hms), Kind: kind,
			Actor: incident.Actor{ID: "U02BOB", Name: "Bob Martin", Source: incident.SourceSlack}, Text: text, Data: data})
	}
	add("11:05:10", incident.EventRunbookRequested, "<@U02BOB> was refused a runbook: Which runbook?",
		map[string]string{"decision": "validation_failed", "reason": "Which runbook?"})
	add("11:05:20", incident.EventRunbookRequested, "<@U02BOB> approved `scale` replicas=3 (run r2)",
		map[string]string{"runbook": "scale", "params": "replicas=3", "run_id": "r2", "decision": "approved"})
	add("11:05:30", incident.EventRunbookRan, "<@U02BOB> dry-ran `scale` (run r3): succeeded (4 ms)",
		map[string]string{"runbook": "scale", "run_id": "r3", "outcome": "succeeded", "duration_ms": "4", "dry_run": "true"})
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("12:00:00"), Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	body := string(r.Body)
	for _, want := range []string{
		"**Runbook** · Bob Martin: a runbook validation failed (Which runbook?)\n",
		"**Runbook** · Bob Martin: `scale` replicas=3 approved\n",
		"**Runbook** · Bob Martin: `scale` succeeded (4 ms, dry run)\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("postmortem lacks %q", want)
		}
	}
	for _, bad := range []string{"``", "<@U02BOB>", "Runbook request", "0.0s", "exit -1"} {
		if strings.Contains(body, bad) {
			t.Errorf("postmortem contains %q", bad)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
