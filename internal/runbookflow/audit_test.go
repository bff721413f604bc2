package runbookflow

import (
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/runbook"
)

func TestTimelineLines(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code := func(n int) *int { return &n }
	params := []runbook.AuditParam{{Name: "host", Label: "example.com", Value: "example.com"}, {Name: "token", Label: "•••", Value: "•••"}}
	cases := []struct {
		name string
		ev   runbook.Event
		want string
	}{
		{"refused before parsing names no empty code span", runbook.Event{Kind: runbook.EventValidationFailed, Reason: "Which runbook? Usage: /incident run RUNBOOK. Nothing was run."},
			"<@U1> was refused a runbook: Which runbook? Usage: /incident run RUNBOOK"},
		{"validation reasons are kept, usage dropped", runbook.Event{Kind: runbook.EventValidationFailed, RunbookID: "check-dns",
			Reason: "Cannot understand the command:\n• word 2 is not name=value\n• \"x\" has an empty value\nNothing was run.\nUsage: /incident run check-dns host=HOST\n• host: a name"},
			"<@U1> was refused `check-dns`: Cannot understand the command: word 2 is not name=value; \"x\" has an empty value"},
		{"approval click is not a request", runbook.Event{Kind: runbook.EventApproved, RunbookID: "scale", RunID: "R1", Params: params},
			"<@U1> approved `scale` host=`example.com` token=`•••` (run R1)"},
		{"refused click", runbook.Event{Kind: runbook.EventAuthzDenied, RunbookID: "scale", RunID: "R1", Reason: "You cannot approve run R1: you are not among the people allowed to approve it (members of <!subteam^S1>)."},
			"<@U1> was refused on `scale` (run R1): You cannot approve run R1: you are not among the people allowed to approve it (members of <!subteam^S1>)"},
		{"run with exit code and milliseconds", runbook.Event{Kind: runbook.EventFinished, RunbookID: "check-dns", RunID: "R2", Params: params[:1],
			Status: runbook.StatusSucceeded, ExitCode: code(0), DurationMS: 4, Approvers: []string{"U2"}},
			"<@U1> ran `check-dns` host=`example.com` (run R2): succeeded (exit 0, 4 ms, approved by <@U2>)"},
		{"failed run says why", runbook.Event{Kind: runbook.EventFinished, RunbookID: "check-http", RunID: "R3", Status: runbook.StatusFailed, ExitCode: code(1), DurationMS: 1520, Reason: "step get exited 1"},
			"<@U1> ran `check-http` (run R3): failed (exit 1, 1.5 s): step get exited 1"},
		{"dry run has no exit code", runbook.Event{Kind: runbook.EventFinished, RunbookID: "scale", RunID: "R4", DryRun: true, Status: runbook.StatusSucceeded, ExitCode: code(-1), DurationMS: 0},
			"<@U1> dry-ran `scale` (run R4): succeeded (0 ms)"},
		{"killed run has no exit code", runbook.Event{Kind: runbook.EventFinished, RunbookID: "hang", RunID: "R5", Status: runbook.StatusTimedOut, ExitCode: code(-1), DurationMS: 125000},
			"<@U1> ran `hang` (run R5): timed_out (2m5s)"},
		{"expired", runbook.Event{Kind: runbook.EventExpired, RunbookID: "scale", RunID: "R6", Reason: "Run R6 expired before it was approved. Nothing was run."},
			"The request for `scale` (run R6) expired: Run R6 expired before it was approved"},
		{"mentions in names are escaped", runbook.Event{Kind: runbook.EventValidationFailed, RunbookID: "a<b"}, "<@U1> was refused `a&lt;b`"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Time = at
			if got := Line(tc.ev, "<@U1>"); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
