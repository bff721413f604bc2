package digest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

const (
	benchIncidents = 50_000
	benchEvents    = 20 // per incident: 1,000,000 in all
)

// buildBenchStore writes benchIncidents incidents of benchEvents events
// each, spread evenly over the 100 weeks before 2026-11-30, into a bbolt
// file in dir, with many puts per transaction.
func buildBenchStore(b *testing.B, dir string) *boltstore.Store {
	b.Helper()
	store, err := boltstore.Open(filepath.Join(dir, "bench.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	end := utc("2026-11-30 00:00")
	start := end.AddDate(0, 0, -7*100)
	step := end.Sub(start) / benchIncidents
	services := []string{"checkout-api", "payments-db", "search", "auth", "webhooks", "mobile-api", "exports", "status-page"}
	const perTx = 1000
	for first := int64(1); first <= benchIncidents; first += perTx {
		err := store.Update(context.Background(), func(tx incident.Tx) error {
			for n := first; n < first+perTx && n <= benchIncidents; n++ {
				inc, events := benchIncident(n, start.Add(time.Duration(n-1)*step), services)
				if err := tx.PutIncident(inc); err != nil {
					return err
				}
				for i := range events {
					if _, err := tx.AppendEvent(&events[i]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// benchIncident is a typical incident: paged or declared, a few notes and
// updates, a pinned message, a runbook run, a follow-up; one in 200 is
// still open and one in 10 has an open follow-up.
func benchIncident(n int64, at time.Time, services []string) (*incident.Incident, []incident.Event) {
	sev := incident.Severity(1 + n%4)
	by := alice
	if n%3 == 0 {
		by = pdAlert
	}
	inc := &incident.Incident{
		Number: n, Title: "Elevated error rate on " + services[n%int64(len(services))] + " after deploy " + strconv.FormatInt(n, 16),
		Description: "Customers see intermittent failures; dashboards show the error rate above the SLO.",
		Severity:    sev, Status: incident.StatusAcknowledged, Source: by.Source, DeclaredBy: by,
		Roles:      map[incident.Role]string{incident.RoleCommander: "U01ALICE", incident.RoleComms: "U02BOB"},
		Members:    []string{"U01ALICE", "U02BOB", "U03CAROL"},
		Services:   []string{services[n%int64(len(services))]},
		DetectedAt: at.Add(-2 * time.Minute), DeclaredAt: at, AcknowledgedAt: at.Add(7 * time.Minute), AcknowledgedBy: pdBob,
		Chat:      incident.ChatRef{ChannelID: "C" + strconv.FormatInt(n, 36), ChannelName: "inc-" + strconv.FormatInt(n, 10) + "-elevated-error-rate", Invited: []string{"U01ALICE", "U02BOB", "U03CAROL"}, SummaryID: "1795168570.000100", SummaryRev: 12, PostedSeq: 20},
		Pager:     incident.PagerRef{IncidentID: "Q" + strconv.FormatInt(n, 36), URL: "https://example.pagerduty.com/incidents/Q" + strconv.FormatInt(n, 36), ServiceName: "Checkout API"},
		Followups: []incident.Followup{{ID: 1, Text: "Add an alert on saturation", CreatedBy: alice, CreatedAt: at.Add(time.Hour), Done: n%10 != 0}},
	}
	ev := func(i int, kind incident.EventKind, actor incident.Actor, text string, data map[string]string) incident.Event {
		t := at.Add(time.Duration(i) * 3 * time.Minute)
		return incident.Event{Incident: n, At: t, Recorded: t, Kind: kind, Actor: actor, Text: text, Data: data}
	}
	status := string(incident.StatusAcknowledged)
	if by.Source == incident.SourcePagerDuty {
		status = string(incident.StatusTriggered)
	}
	events := []incident.Event{
		ev(0, incident.EventDeclared, by, inc.Title, map[string]string{"severity": sev.String(), "status": status}),
		ev(1, incident.EventPagerEvent, pdBob, "", map[string]string{"type": "incident.acknowledged", "pager_incident": inc.Pager.IncidentID, "url": inc.Pager.URL}),
		ev(2, incident.EventRoleAssigned, alice, "", map[string]string{"role": "comms", "user": "U02BOB"}),
		ev(3, incident.EventMessagePinned, bob, "Grafana shows p99 latency at 2.3s since the deploy", map[string]string{"author": "U02BOB", "channel": inc.Chat.ChannelID, "ts": "1795168570.000200"}),
	}
	for i := len(events); i < benchEvents-4; i++ {
		events = append(events, ev(i, incident.EventNote, alice, fmt.Sprintf("Checked node %d: connection pool at %d%%, restarting the worker.", i, 40+i), nil))
	}
	events = append(events,
		ev(benchEvents-4, incident.EventRunbookRan, bob, "", map[string]string{"runbook": []string{"rollback-deploy", "fetch-logs", "scale-deployment"}[n%3], "outcome": "succeeded", "exit_code": "0", "duration_ms": "42000", "dry_run": "false"}),
		ev(benchEvents-3, incident.EventStatusUpdate, bob, "Rolled back; monitoring.", nil),
		ev(benchEvents-2, incident.EventFollowupAdded, alice, "Add an alert on saturation", map[string]string{"id": "1"}),
	)
	last := at.Add(time.Duration(benchEvents-1) * 3 * time.Minute)
	if n%200 == 0 {
		events = append(events, ev(benchEvents-1, incident.EventNote, alice, "Still watching.", nil))
	} else {
		inc.Status, inc.MitigatedAt, inc.ResolvedAt = incident.StatusResolved, last, last
		events = append(events, ev(benchEvents-1, incident.EventStatusChanged, alice, "", map[string]string{"from": "acknowledged", "to": "resolved"}))
	}
	inc.UpdatedAt = last
	return inc, events
}

// BenchmarkDigest measures the digest of one week over a store of 50,000
// incidents and 1,000,000 timeline events, against two baselines from the
// same store: decoding every incident record (the scan the digest needs
// today) and reading the week's incidents through the declaration index.
func BenchmarkDigest(b *testing.B) {
	store := buildBenchStore(b, b.TempDir())
	defer store.Close()
	ctx := context.Background()
	p := Week{2026, 47}.Period(time.UTC)
	now := utc("2026-11-30 09:00")

	b.Run("baseline=scan-all-incidents", func(b *testing.B) {
		for b.Loop() {
			n := 0
			err := store.View(ctx, func(tx incident.Tx) error {
				return tx.ForEachIncident(func(*incident.Incident) error { n++; return nil })
			})
			if err != nil || n != benchIncidents {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("baseline=declared-index-two-weeks", func(b *testing.B) {
		for b.Loop() {
			err := store.View(ctx, func(tx incident.Tx) error {
				_, err := tx.Incidents(incident.Filter{DeclaredFrom: p.Previous().From, DeclaredTo: p.To})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			if _, err := Load(ctx, store, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generate", func(b *testing.B) {
		var r Rendered
		for b.Loop() {
			var err error
			if r, err = Generate(ctx, store, p, Options{Now: now}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(r.Digest.Opened), "opened")
	})
	records, err := Load(ctx, store, p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("build+render", func(b *testing.B) {
		for b.Loop() {
			if _, err := Render(Build(Input{Period: p, Records: records, Generated: now}), ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
