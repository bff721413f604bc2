package slack

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// catchupJSON is the message as Slack receives it, for the golden files.
func catchupJSON(t *testing.T, r Rendered) []byte {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"text": r.Text, "blocks": r.Blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestRenderCatchupGolden(t *testing.T) {
	now := incidenttest.CatchupStart.Add(55 * time.Minute)
	for _, c := range []struct {
		name string
		long bool
		now  time.Time
	}{
		{"catchup", false, now},
		// 40 more notes, pins, runs, role changes and follow-ups with
		// long texts: trimmed to Slack's limits, pointing to the timeline.
		{"catchup-long", true, now.Add(40 * time.Minute)},
	} {
		t.Run(c.name, func(t *testing.T) {
			inc, events := incidenttest.CatchupFixture(c.long)
			r := RenderCatchup(incident.BuildCatchup(inc, events, incident.CatchupOptions{Now: c.now, User: "U0CAROL"}))
			incidenttest.Golden(t, c.name+".golden", catchupJSON(t, r), *updateGolden)
			checkCatchupLimits(t, r)
			all := blocksText(r.Blocks)
			for _, bad := range []string{"<!channel>", "<!here>"} {
				if strings.Contains(all, bad) || strings.Contains(r.Text, bad) {
					t.Errorf("a broadcast %s survives in the catch-up", bad)
				}
			}
			if c.long != strings.Contains(all, "Trimmed to fit in Slack. More in `/incident timeline`.") {
				t.Errorf("long=%v, but the pointer to the timeline is shown=%v", c.long, strings.Contains(all, "Trimmed"))
			}
		})
	}
}

// blocksText is the text of every block, as Slack counts it.
func blocksText(blocks []slackapi.Block) string {
	var b strings.Builder
	for _, bl := range blocks {
		switch x := bl.(type) {
		case *slackapi.SectionBlock:
			if x.Text != nil {
				b.WriteString(x.Text.Text + "\n")
			}
			for _, f := range x.Fields {
				b.WriteString(f.Text + "\n")
			}
		case *slackapi.ContextBlock:
			for _, e := range x.ContextElements.Elements {
				if o, ok := e.(*slackapi.TextBlockObject); ok {
					b.WriteString(o.Text + "\n")
				}
			}
		}
	}
	return b.String()
}

// checkCatchupLimits fails unless r fits Slack's limits and shows the
// incident's status, severity and roles.
func checkCatchupLimits(t *testing.T, r Rendered) {
	t.Helper()
	if n := len(r.Blocks); n > MaxBlocks {
		t.Fatalf("%d blocks, Slack takes %d", n, MaxBlocks)
	}
	total := 0
	for _, bl := range r.Blocks {
		if s, ok := bl.(*slackapi.SectionBlock); ok {
			if s.Text != nil {
				if n := utf8.RuneCountInString(s.Text.Text); n > MaxSectionText {
					t.Fatalf("a section of %d characters", n)
				}
			}
			for _, f := range s.Fields {
				if n := utf8.RuneCountInString(f.Text); n > MaxFieldText {
					t.Fatalf("a field of %d characters", n)
				}
			}
		}
	}
	total = utf8.RuneCountInString(blocksText(r.Blocks))
	if total > MaxCatchupText {
		t.Fatalf("%d characters of blocks, more than %d", total, MaxCatchupText)
	}
	if utf8.RuneCountInString(r.Text) > MaxText {
		t.Fatalf("text of %d characters", utf8.RuneCountInString(r.Text))
	}
	head := blocksText(r.Blocks[:2])
	for _, want := range []string{"Catch-up: INC-", "SEV", "*Commander*", "*Comms*", "*Scribe*"} {
		if !strings.Contains(head, want) {
			t.Fatalf("the first blocks lack %q:\n%s", want, head)
		}
	}
}

// TestRenderCatchupLimitsProperty renders random incidents (texts up to
// the stored maximum, hundreds of events, broadcasts sprinkled in) and
// checks every catch-up fits Slack and always shows status, severity and
// roles. CATCHUP_SEEDS raises the number of incidents.
func TestRenderCatchupLimitsProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	if v := envInt("CATCHUP_SEEDS"); v > 0 {
		rounds = v
	}
	for i := range rounds {
		s := seed + uint64(i)
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("seed %d", s)
				}
			}()
			rng := rand.New(rand.NewPCG(s, s))
			inc, events := randomIncident(rng)
			now := inc.DeclaredAt.Add(time.Duration(rng.IntN(48*60)) * time.Minute)
			opt := incident.CatchupOptions{Now: now, User: "U0CAROL"}
			if rng.IntN(2) == 0 {
				opt.Since = inc.DeclaredAt.Add(time.Duration(rng.IntN(60)) * time.Minute)
			}
			r := RenderCatchup(incident.BuildCatchup(inc, events, opt))
			checkCatchupLimits(t, r)
			all := blocksText(r.Blocks)
			if !strings.Contains(all, string(inc.Status)) || !strings.Contains(all, inc.Severity.String()) {
				t.Fatalf("status or severity missing:\n%s", all)
			}
			if strings.Contains(all, "<!channel>") || strings.Contains(all, "<!here>") || strings.Contains(all, "<!everyone>") {
				t.Fatal("a broadcast survives")
			}
		})
	}
}

func randomText(rng *rand.Rand) string {
	words := []string{"db", "<!channel>", "<!here>", "@everyone", "latency", "R&D", "<https://example.com|dash>", "日本語", "`code`", "*bold*", "<@U0X>", "<", ">", "&amp;"}
	n := 1 + rng.IntN(600)
	if rng.IntN(4) == 0 {
		n = rng.IntN(3)
	}
	var b strings.Builder
	for range n {
		b.WriteString(words[rng.IntN(len(words))] + " ")
	}
	return truncateRunes(b.String(), incident.MaxTextLength)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func randomIncident(rng *rand.Rand) (*incident.Incident, []incident.Event) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	sev := incident.Severities[rng.IntN(4)]
	status := []incident.Status{incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusMitigated, incident.StatusResolved}[rng.IntN(4)]
	inc := &incident.Incident{Number: int64(1 + rng.IntN(9999)), Title: truncateRunes(randomText(rng), incident.MaxTitleLength), Severity: sev, Status: status,
		DeclaredAt: start, DeclaredBy: incident.Actor{ID: "U0A", Source: incident.SourceSlack}, Roles: map[incident.Role]string{},
		Description: randomText(rng), Impact: randomText(rng)}
	for _, r := range incident.Roles {
		if rng.IntN(2) == 0 {
			inc.Roles[r] = fmt.Sprintf("U0R%d", rng.IntN(100))
		}
	}
	for i := range rng.IntN(80) {
		inc.Services = append(inc.Services, fmt.Sprintf("svc-%d", i))
		inc.Followups = append(inc.Followups, incident.Followup{ID: i + 1, Text: randomText(rng), Done: rng.IntN(3) == 0, Owner: "U0O"})
	}
	kinds := []incident.EventKind{incident.EventNote, incident.EventStatusUpdate, incident.EventMessagePinned, incident.EventRunbookRan, incident.EventRoleAssigned,
		incident.EventStatusChanged, incident.EventSeverityChanged, incident.EventMemberJoined, incident.EventFollowupAdded, incident.EventFactChanged}
	var events []incident.Event
	n := rng.IntN(400)
	for i := range n {
		k := kinds[rng.IntN(len(kinds))]
		who := incident.Actor{ID: []string{"U0A", "U0CAROL", "U0B"}[rng.IntN(3)], Source: incident.SourceSlack}
		events = append(events, incident.Event{Incident: inc.Number, Seq: int64(i + 1), At: start.Add(time.Duration(i) * time.Minute), Kind: k, Actor: who, Text: randomText(rng),
			Data: map[string]string{"author": "U0A", "runbook": "rb", "outcome": "failed", "role": "scribe", "user": "U0B", "from": "SEV2", "to": "SEV1", "fact": "impact", "id": "1"}})
	}
	return inc, events
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}
