package postmortem

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

func TestRenderGolden(t *testing.T) {
	inc, events := fixture()
	// Dave never acted in the incident, so only the directory (Slack's
	// users.info) knows his name; Alice's profile name replaces the one
	// her events recorded.
	names := incident.Names{"U04DAVE": "Dave Li", "U01ALICE": "Alice Ng (SRE)"}
	if ids := PeopleIDs(inc, events); !slices.Contains(ids, "U04DAVE") || !slices.Contains(ids, "U01ALICE") {
		t.Fatalf("people to look up: %v", ids)
	}
	r, err := Render(inc, events, "", Options{Location: berlin(t), Now: at("12:00:00"), Version: 2, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning != nil {
		t.Fatalf("built-in template warned: %v", r.Warning)
	}
	golden(t, "INC-7-postmortem-v2.md", r.Body)
	if body := string(r.Body); strings.Contains(body, "U04DAVE") || !strings.Contains(body, "caused by @Dave Li's deploy") {
		t.Errorf("the draft does not name Dave")
	}
}

func TestRenderPreviewSaysNotStored(t *testing.T) {
	inc, events := fixture()
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("12:00:00")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Body), "preview (not stored)") {
		t.Errorf("a preview does not say it is not stored:\n%.400s", r.Body)
	}
	// UTC here, Berlin in the golden file: times follow the location.
	if !strings.Contains(string(r.Body), "| Detected | 2026-11-20 09:58:00 |") {
		t.Errorf("detection time not shown in UTC:\n%s", r.Body)
	}
}

func TestCustomTemplateOverridesBuiltin(t *testing.T) {
	dir := t.TempDir()
	custom := "# {{.ID}}: {{.Title}}\nWorst {{.WorstSeverity}}, resolved after {{.TimeToResolve}}.\n{{range .Followups}}- {{.Text}}\n{{end}}"
	if err := os.WriteFile(filepath.Join(dir, templates.Postmortem), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	inc, events := fixture()
	r, err := Render(inc, events, dir, Options{Location: time.UTC, Now: at("12:00:00"), Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning != nil {
		t.Fatalf("unexpected warning: %v", r.Warning)
	}
	want := "# INC-7: Checkout payments failing\nWorst SEV1, resolved after 1h 7m.\n- Add a canary stage for checkout deploys\n- Alert on DB connection saturation above 80% | page the DB on-call\n- Raise the pool size default\n"
	if string(r.Body) != want {
		t.Errorf("custom template output:\n%s\nwant:\n%s", r.Body, want)
	}
}

func TestBrokenTemplateFallsBackToBuiltin(t *testing.T) {
	builtin, err := Render(fixture2(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		template string
		wantLine int
		wantText string
	}{
		{"parse error", "# {{.ID}}\n\n{{if}}x{{end}}\n", 3, "missing value for if"},
		{"unclosed action", "# {{.ID}}\n\nok line\n{{range .Timeline}}\nnever closed\n", 6, "unexpected EOF"},
		{"unknown function", "# {{.ID}}\n{{shout .Title}}\n", 2, `function "shout" not defined`},
		{"unknown field", "# {{.ID}}\n\n\n{{.Blame}}\n", 4, "can't evaluate field Blame"},
		{"index out of range", "{{.ID}}\n{{index .Followups 9}}\n", 2, "index out of range"},
		{"renders nothing", "{{/* all commented out */}}\n  \n", 0, "rendered nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, templates.Postmortem)
			if err := os.WriteFile(path, []byte(tt.template), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Render(fixture2(t, dir))
			if err != nil {
				t.Fatalf("a broken custom template must not fail the draft: %v", err)
			}
			if string(r.Body) != string(builtin.Body) {
				t.Errorf("the draft is not the built-in one:\n%.300s", r.Body)
			}
			var te *templates.Error
			if !errors.As(r.Warning, &te) {
				t.Fatalf("warning = %v, want a *templates.Error", r.Warning)
			}
			if te.Template != path || te.Line != tt.wantLine {
				t.Errorf("warning names %s line %d, want %s line %d", te.Template, te.Line, path, tt.wantLine)
			}
			msg := r.Warning.Error()
			if !strings.Contains(msg, tt.wantText) || !strings.Contains(msg, path) {
				t.Errorf("warning %q does not name the file and say %q", msg, tt.wantText)
			}
		})
	}
}

func TestUnreadableTemplateFallsBack(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read as a template.
	if err := os.Mkdir(filepath.Join(dir, templates.Postmortem), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Render(fixture2(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning == nil || !strings.HasPrefix(string(r.Body), "# Postmortem INC-7:") {
		t.Errorf("warning %v; body %.60q", r.Warning, r.Body)
	}
}

func TestHugeTemplateOutputFallsBack(t *testing.T) {
	dir := t.TempDir()
	// 25 events, nested five deep: 25^5 lines, far beyond the cap.
	loop := "{{range .Events}}{{range $.Events}}{{range $.Events}}{{range $.Events}}{{range $.Events}}{{$.Title}} {{$.Description}}\n{{end}}{{end}}{{end}}{{end}}{{end}}"
	if err := os.WriteFile(filepath.Join(dir, templates.Postmortem), []byte(loop), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Render(fixture2(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning == nil || !strings.Contains(r.Warning.Error(), "larger than") {
		t.Errorf("warning = %v, want the output cap", r.Warning)
	}
	if len(r.Body) > templates.MaxOutput || !strings.HasPrefix(string(r.Body), "# Postmortem INC-7:") {
		t.Errorf("body is not the built-in draft (%d bytes)", len(r.Body))
	}
}

// fixture2 returns Render's arguments for the fixture with templates in dir.
func fixture2(t *testing.T, dir string) (*incident.Incident, []incident.Event, string, Options) {
	t.Helper()
	inc, events := fixture()
	return inc, events, dir, Options{Location: time.UTC, Now: at("12:00:00"), Version: 3}
}

func TestLongReviewIsCapped(t *testing.T) {
	inc, events := benchTimeline()
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("23:00:00"), Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := string(r.Body)
	if len(r.Data.Review) != MaxFindings || r.Data.ReviewMore != 901 {
		t.Errorf("review %d listed, %d more; want %d and 901", len(r.Data.Review), r.Data.ReviewMore, MaxFindings)
	}
	if !strings.Contains(body, "…and 901 more such phrases later in the timeline.") || strings.Count(body, "- [ ] **") != MaxFindings {
		t.Errorf("the checklist is not capped in the draft")
	}
	if !strings.Contains(r.Summary(), "1001 phrases to review") {
		t.Errorf("summary = %q", r.Summary())
	}
	// The whole timeline is there.
	if got := strings.Count(body, "\n- `"); got != benchEvents {
		t.Errorf("%d timeline entries, want %d", got, benchEvents)
	}
}

func TestRenderOpenUnacknowledgedIncident(t *testing.T) {
	inc := &incident.Incident{
		Number: 3, Title: "Queue backlog", Severity: incident.SEV3, Status: incident.StatusTriggered,
		Source: incident.SourcePagerDuty, DeclaredBy: pdAlert, DetectedAt: at("10:00:00"), DeclaredAt: at("10:00:00"),
	}
	events := []incident.Event{{Incident: 3, Seq: 1, At: at("10:00:00"), Kind: incident.EventDeclared, Actor: pdAlert,
		Text: "Queue backlog", Data: map[string]string{"severity": "SEV3", "status": "triggered"}}}
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("10:05:00")})
	if err != nil {
		t.Fatal(err)
	}
	body := string(r.Body)
	for _, want := range []string{
		"| Status | triggered |",
		"| Acknowledged | not yet |  |",
		"**Time to acknowledge:** n/a · **Time to mitigate:** n/a · **Time to resolve:** n/a",
		"and not acknowledged yet.",
		"- **commander:** nobody",
		"- **Participants:** none recorded",
		"- [ ] _action_, owner: _who?_, due: _when?_",
		"No blaming phrases were found",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("draft lacks %q", want)
		}
	}
	if strings.Contains(body, "<no value>") || strings.Contains(body, "## Runbook runs") {
		t.Errorf("draft:\n%s", body)
	}
}

// TestActionItemsShowOwnerDueAndState: an action item past its due date
// when the draft is made says so; done ones say when and by whom.
func TestActionItemsShowOwnerDueAndState(t *testing.T) {
	inc, events := fixture()
	r, err := Render(inc, events, "", Options{Location: time.UTC, Now: at("12:00:00").AddDate(0, 0, 7)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- [ ] #1 Add a canary stage for checkout deploys\n  **Overdue** · Owner: Alice Ng · Due: 2026-11-20 ·",
		"- [x] #2 Alert on DB connection saturation above 80% | page the DB on-call\n  **Done** on 2026-11-20 11:04:00 by Bob Martin · Owner: Bob Martin · Due: _when?_",
		"- [ ] #3 Raise the pool size default\n  **Open** · Owner: _who?_ · Due: _when?_",
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("draft lacks:\n%s", want)
		}
	}
}
