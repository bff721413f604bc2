package postmortem

import (
	"fmt"
	"strings"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Rendered is a rendered draft.
type Rendered struct {
	Body []byte
	// Warning is set when the operator's template failed and the built-in
	// one was used instead; it is a *templates.Error naming file and line.
	Warning error
	Data    *Data
}

// FileName is the name of version v of an incident's draft when it is
// shared: "INC-7-postmortem-v2.md" (v 0: "INC-7-postmortem.md").
func FileName(n int64, v int) string {
	if v == 0 {
		return incident.FormatID(n) + "-postmortem.md"
	}
	return fmt.Sprintf("%s-postmortem-v%d.md", incident.FormatID(n), v)
}

// Render builds and renders the draft of inc with the template in dir (the
// built-in one when dir has none).
func Render(inc *incident.Incident, events []incident.Event, dir string, opts Options) (Rendered, error) {
	d := Build(inc, events, opts)
	body, warn, err := templates.Render(dir, templates.Postmortem, templates.Funcs(), d)
	if err != nil {
		return Rendered{}, fmt.Errorf("rendering the postmortem of %s: %w", inc.ID(), err)
	}
	return Rendered{Body: body, Warning: warn, Data: d}, nil
}

// Summary is the short message that goes with a posted draft.
func (r Rendered) Summary() string {
	d := r.Data
	var b strings.Builder
	fmt.Fprintf(&b, "Postmortem draft")
	if d.Version > 0 {
		fmt.Fprintf(&b, " v%d", d.Version)
	}
	fmt.Fprintf(&b, " for *%s* (%s, %s", d.ID, d.WorstSeverity, d.Status)
	if d.TimeToResolve != "" {
		fmt.Fprintf(&b, " after %s", d.TimeToResolve)
	}
	fmt.Fprintf(&b, "): %s, %s", plural(d.EventCount, "timeline event"), plural(len(d.Followups), "follow-up"))
	if n := len(d.Review) + d.ReviewMore; n > 0 {
		fmt.Fprintf(&b, ", %s to review for blameless wording", plural(n, "phrase"))
	}
	b.WriteString(". Fill in the prompts in italics, then share it.")
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
