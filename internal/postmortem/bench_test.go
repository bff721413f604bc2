package postmortem

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

const benchEvents = 10_000

// benchTimeline is the fixture incident with its timeline grown to
// benchEvents events of the usual mix: notes (some with blaming words),
// status updates, pins, pager events and runbook runs.
func benchTimeline() (*incident.Incident, []incident.Event) {
	inc, events := fixture()
	start := at("12:00:00")
	for i := len(events); i < benchEvents; i++ {
		t := start.Add(time.Duration(i) * 10 * time.Second)
		ev := incident.Event{Incident: 7, Seq: int64(i + 1), At: t, Recorded: t, Actor: alice}
		switch i % 10 {
		case 0:
			ev.Kind, ev.Actor, ev.Text = incident.EventStatusUpdate, carol, "Still degraded; next update in 30 minutes."
		case 1:
			ev.Kind, ev.Actor, ev.Text = incident.EventMessagePinned, bob, fmt.Sprintf("Graph %d: p99 latency 2.3s &gt; SLO", i)
			ev.Data = map[string]string{"author": "U02BOB", "channel": "C0INC7", "ts": "1795168570.000100"}
		case 2:
			ev.Kind, ev.Actor = incident.EventPagerEvent, pdBob
			ev.Data = map[string]string{"type": "incident.annotated", "pager_incident": "Q1ABCDEF", "url": pdURL}
		case 3:
			ev.Kind, ev.Actor = incident.EventRunbookRan, bob
			ev.Data = map[string]string{"runbook": "fetch-logs", "outcome": "succeeded", "exit_code": "0", "duration_ms": "1200", "dry_run": "false"}
		case 4:
			ev.Kind, ev.Text = incident.EventNote, "Someone should have checked the pool settings before the deploy."
		default:
			ev.Kind, ev.Text = incident.EventNote, fmt.Sprintf("Node %d: connection pool at %d%%, restarting the worker; error rate 0.%d%%.", i, i%100, i%10)
		}
		events = append(events, ev)
	}
	return inc, events
}

// BenchmarkPostmortem measures rendering the draft of an incident with
// 10,000 timeline events, against reading that timeline from the store
// (the baseline: the draft cannot be cheaper than its input), and a whole
// `/incident postmortem` (read, render, store a version, queue the post).
func BenchmarkPostmortem(b *testing.B) {
	inc, events := benchTimeline()
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	err = store.Update(ctx, func(tx incident.Tx) error {
		stored := *inc
		stored.Number = 0
		n, err := tx.NextIncidentNumber()
		stored.Number = n
		if err != nil {
			return err
		}
		if err := tx.PutIncident(&stored); err != nil {
			return err
		}
		for _, ev := range events {
			ev.Incident = n
			if _, err := tx.AppendEvent(&ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}

	b.Run("baseline=read-timeline", func(b *testing.B) {
		for b.Loop() {
			err := store.View(ctx, func(tx incident.Tx) error {
				evs, err := tx.Timeline(1)
				if len(evs) != benchEvents {
					return fmt.Errorf("%d events", len(evs))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("render", func(b *testing.B) {
		var r Rendered
		for b.Loop() {
			if r, err = Render(inc, events, "", Options{Location: time.UTC, Now: at("23:00:00"), Version: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(r.Body)), "bytes/draft")
		b.ReportMetric(float64(len(r.Data.Review)), "findings")
	})
	b.Run("draft", func(b *testing.B) {
		svc := incident.NewService(incident.ServiceConfig{Store: store})
		pm := New(Config{Incidents: svc, Location: time.UTC, Logger: zap.NewNop()})
		for b.Loop() {
			if _, err := pm.Draft(ctx, incident.Ref{Number: 1}, bob); err != nil {
				b.Fatal(err)
			}
		}
	})
}
