package digest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// week47 is a realistic week (2026-W47, Mon 16 to Sun 22 November) with
// incidents of every severity, and the weeks around it.
func week47(t testing.TB) []Record {
	return []Record{
		// Paged SEV1, acknowledged after 9m30s, rolled back, resolved; has a postmortem.
		paged(t, 101, "Checkout payments failing", incident.SEV1, utc("2026-11-17 09:58"), utc("2026-11-17 10:00"), "checkout-api", "payments-db").
			ack(utc("2026-11-17 10:07").Add(30*time.Second)).
			runbook("rollback-deploy", "succeeded", false, utc("2026-11-17 10:18")).
			mitigate(utc("2026-11-17 10:25")).resolve(utc("2026-11-17 11:02")).
			followup("Add a canary stage for checkout deploys", utc("2026-11-17 10:30"), "U01ALICE", false).due("2026-12-04").
			followup("Alert on DB connection saturation", utc("2026-11-17 10:31"), "U02BOB", true).
			postmortem(utc("2026-11-18 09:00")).record(),
		// Declared in Slack as SEV2, resolved, no postmortem yet.
		declared(t, 102, "Search latency above 2s &amp; timeouts", incident.SEV2, utc("2026-11-18 14:00"), "search").
			resolve(utc("2026-11-18 16:30")).record(),
		// Paged SEV3 at night, two runbook runs.
		paged(t, 103, "Disk 85% on db-replica-2", incident.SEV3, utc("2026-11-19 03:10"), utc("2026-11-19 03:10"), "payments-db").
			ack(utc("2026-11-19 03:22")).
			runbook("fetch-logs", "succeeded", true, utc("2026-11-19 03:25")).
			runbook("fetch-logs", "failed", false, utc("2026-11-19 03:30")).
			runbook("rollback-deploy", "succeeded", false, utc("2026-11-19 03:40")).
			resolve(utc("2026-11-19 04:05")).record(),
		// SEV4 declared in Slack, still open.
		declared(t, 104, "Typo in status page footer", incident.SEV4, utc("2026-11-20 11:00"), "status-page").
			followup("Spell-check the status page templates", utc("2026-11-20 11:05"), "", false).record(),
		// Paged SEV3 on Saturday night, raised to SEV2, mitigated; resolved next week.
		paged(t, 105, "Webhook deliveries delayed", incident.SEV3, utc("2026-11-21 22:50"), utc("2026-11-21 22:51"), "webhooks").
			ack(utc("2026-11-21 23:05")).sev(incident.SEV2, utc("2026-11-22 00:30")).
			mitigate(utc("2026-11-22 01:00")).resolve(utc("2026-11-23 08:00")).record(),
		// Opened last week, resolved this Monday: the week's longest.
		paged(t, 98, "Payment provider timeouts", incident.SEV2, utc("2026-11-13 20:40"), utc("2026-11-13 20:41"), "checkout-api").
			ack(utc("2026-11-13 20:46")).mitigate(utc("2026-11-14 02:00")).resolve(utc("2026-11-16 02:00")).record(),
		// Resolved last week, reopened and resolved again this week.
		paged(t, 97, "Login errors for SSO users", incident.SEV3, utc("2026-11-12 10:00"), utc("2026-11-12 10:00"), "auth").
			ack(utc("2026-11-12 10:04")).resolve(utc("2026-11-12 11:00")).
			reopen(utc("2026-11-17 09:00")).resolve(utc("2026-11-17 10:30")).record(),
		// Last week's SEV2: the comparison.
		paged(t, 96, "Elevated 5xx on mobile API", incident.SEV2, utc("2026-11-10 07:00"), utc("2026-11-10 07:01"), "mobile-api").
			ack(utc("2026-11-10 07:06")).resolve(utc("2026-11-10 09:00")).postmortem(utc("2026-11-11 09:00")).record(),
		// Old and quiet: still open, with an open follow-up.
		declared(t, 90, "Flaky nightly export", incident.SEV4, utc("2026-10-01 08:00"), "exports").
			followup("Move the export to the new scheduler", utc("2026-10-01 09:00"), "U02BOB", false).due("2026-10-30").quiet(),
	}
}

func berlin(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fixtureNames knows Alice; Bob's name cannot be looked up, so the
// digest falls back to his mention.
var fixtureNames = incident.Names{"U01ALICE": "Alice Ng"}

func TestDigestGolden(t *testing.T) {
	loc := berlin(t)
	d := Build(Input{Period: Week{2026, 47}.Period(loc), Records: week47(t), Generated: utc("2026-11-23 08:00"), Names: fixtureNames})
	r, err := Render(d, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning != nil {
		t.Fatal(r.Warning)
	}
	golden(t, "digest-2026-W47.md", r.Body)

	// The numbers the golden file shows, by hand: opened 101-105; resolved
	// 98, 97, 101, 102, 103 (105 only next week); MTTA over the pages
	// acknowledged this week: 101 9m30s, 103 12m, 105 15m.
	if d.Opened != 5 || d.Resolved != 5 || d.Reopened != 1 || len(d.StillOpen) != 3 {
		t.Errorf("opened %d resolved %d reopened %d still open %d", d.Opened, d.Resolved, d.Reopened, len(d.StillOpen))
	}
	if d.MTTA.N != 3 || d.MTTA.Median != 12*time.Minute || d.MTTA.P90 != 15*time.Minute {
		t.Errorf("MTTA = %+v", d.MTTA)
	}
	if got := ids(d.WithoutPostmortem); !slices.Equal(got, []string{"INC-98", "INC-102"}) {
		t.Errorf("without postmortem = %v", got)
	}
	want := "*Incident digest 2026-W47* (Mon 16 Nov to Sun 22 Nov 2026): 5 opened, 5 resolved, 3 still open. MTTA median 12m 0s (+6m 0s), MTTR median 2h 30m (+1h 0m). 2 resolved SEV1/SEV2 without a postmortem."
	if got := r.Summary(); got != want {
		t.Errorf("summary:\n%s\nwant\n%s", got, want)
	}
}

func TestDigestCustomAndBrokenTemplates(t *testing.T) {
	d := Build(Input{Period: Week{2026, 47}.Period(time.UTC), Records: week47(t), Generated: utc("2026-11-23 08:00")})
	dir := t.TempDir()
	path := filepath.Join(dir, templates.Digest)

	if err := os.WriteFile(path, []byte("{{.Label}}: {{.Opened}} opened, MTTR {{.MTTR.MedianText}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Render(d, dir)
	if err != nil || r.Warning != nil || string(r.Body) != "2026-W47: 5 opened, MTTR 2h 30m\n" {
		t.Errorf("custom: %q, %v, %v", r.Body, r.Warning, err)
	}

	if err := os.WriteFile(path, []byte("{{.Label}}\n{{range .Nope}}{{end}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = Render(d, dir)
	if err != nil {
		t.Fatal(err)
	}
	var te *templates.Error
	if !errors.As(r.Warning, &te) || te.Template != path || te.Line != 2 {
		t.Errorf("warning = %v", r.Warning)
	}
	if !strings.HasPrefix(string(r.Body), "# Incident digest 2026-W47") {
		t.Errorf("not the built-in digest: %.80q", r.Body)
	}
}

func TestLoadReadsWhatBuildNeeds(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "bot.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	records := week47(t)
	records = append(records,
		// Declared after the week: not read.
		declared(t, 110, "next week", incident.SEV3, utc("2026-11-24 10:00")).record(),
		// Resolved long ago, nothing open: not read.
		declared(t, 80, "ancient", incident.SEV3, utc("2026-09-01 10:00")).resolve(utc("2026-09-01 11:00")).record(),
	)
	err = store.Update(ctx, func(tx incident.Tx) error {
		for _, r := range records {
			if err := tx.PutIncident(r.Incident); err != nil {
				return err
			}
			for _, ev := range r.Timeline {
				if _, err := tx.AppendEvent(&ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p := Week{2026, 47}.Period(berlin(t))
	loaded, err := Load(ctx, store, p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range loaded {
		s := r.Incident.ID()
		if r.Timeline == nil {
			s += " (no timeline)"
		}
		got = append(got, s)
	}
	want := []string{"INC-90 (no timeline)", "INC-96", "INC-97", "INC-98", "INC-101", "INC-102", "INC-103", "INC-104", "INC-105"}
	if !slices.Equal(got, want) {
		t.Errorf("loaded %v\nwant   %v", got, want)
	}
	// What the store gives back builds the same digest as the fixture.
	fromStore, err := Generate(ctx, store, p, Options{Now: utc("2026-11-23 08:00"), Directory: fixtureNames})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "digest-2026-W47.md", fromStore.Body)
}

// TestQuietWeekIsCompact: a week without incidents is a few lines (and the
// follow-ups still waiting), not a page of empty tables and "n/a (was n/a)".
func TestQuietWeekIsCompact(t *testing.T) {
	old := declared(t, 1, "Old", incident.SEV3, utc("2026-10-01 08:00")).
		followup("Write the runbook", utc("2026-10-01 09:00"), "U01ALICE", false).due("2026-11-01").
		resolve(utc("2026-10-01 10:00")).quiet()
	d := Build(Input{Period: w47(), Records: []Record{old}, Generated: utc("2026-11-23 08:00"), Names: fixtureNames})
	r, err := Render(d, "")
	if err != nil {
		t.Fatal(err)
	}
	body := string(r.Body)
	for _, unwanted := range []string{"n/a", "| SEV1 | 0 | 0 |", "## Response times", "## Longest", "## Still open", "## Most-used runbooks"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("quiet digest has %q:\n%s", unwanted, body)
		}
	}
	for _, want := range []string{"A quiet week: no incident was opened, resolved or open.", "## Open follow-ups (1, 1 overdue)", "**Alice Ng** (1 overdue)", "due 2026-11-01 **(overdue)**"} {
		if !strings.Contains(body, want) {
			t.Errorf("quiet digest lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "\n"); n > 16 {
		t.Errorf("a quiet week takes %d lines:\n%s", n, body)
	}
}
