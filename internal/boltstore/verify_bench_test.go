package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// BenchmarkVerifyOnOpen measures what the page walk before bbolt's Open
// costs, against bbolt's own writable Open as the baseline (with
// NoFreelistSync it walks every reachable page too), on a database of
// 20,000 incidents with 10 events each (about 100 MiB).
func BenchmarkVerifyOnOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 20 {
		err := s.Update(context.Background(), func(tx incident.Tx) error {
			for range 1000 {
				n, err := tx.NextIncidentNumber()
				if err != nil {
					return err
				}
				if err := tx.PutIncident(&incident.Incident{Number: n, Title: fmt.Sprintf("incident %d", n), Severity: incident.SEV2,
					Status: incident.StatusResolved, DeclaredAt: at, DetectedAt: at, ResolvedAt: at}); err != nil {
					return err
				}
				for e := range 10 {
					if _, err := tx.AppendEvent(&incident.Event{Incident: n, At: at, Kind: incident.EventNote, Text: fmt.Sprintf("note %d", e), Recorded: at}); err != nil {
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
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("bbolt-open", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				b.Fatal(err)
			}
			_ = db.Close()
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := verifyFile(f, path); err != nil {
				b.Fatal(err)
			}
			_ = f.Close()
		}
		if fi, err := os.Stat(path); err == nil {
			b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		}
	})
}
