package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestBackupUnderWriteLoadRestoresAConsistentState takes backups while
// writers add incidents with their events, restores each, and checks that
// every restored database is consistent: each incident it holds is complete
// (a transaction is in the backup entirely or not at all).
func TestBackupUnderWriteLoadRestoresAConsistentState(t *testing.T) {
	dir := t.TempDir()
	s := bolttest.OpenAt(t, filepath.Join(dir, "bot.db"))
	svc := incident.NewService(incident.ServiceConfig{Store: s})
	const eventsPerIncident = 5
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				err := s.Update(context.Background(), func(tx incident.Tx) error {
					n, err := tx.NextIncidentNumber()
					if err != nil {
						return err
					}
					inc := &incident.Incident{Number: n, Title: fmt.Sprintf("w%d-%d", w, i), Severity: incident.SEV3, Status: incident.StatusTriggered, DeclaredAt: t0}
					if err := tx.PutIncident(inc); err != nil {
						return err
					}
					for e := range eventsPerIncident {
						if _, err := tx.AppendEvent(&incident.Event{Incident: n, At: t0, Kind: incident.EventNote, Text: fmt.Sprint(e)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	var backups []string
	for b := range 4 {
		for written.Load() < int64((b+1)*20) {
			// let the writers make progress between backups
			if _, err := svc.List(context.Background(), incident.Filter{Limit: 1}); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("backup-%d.db", b))
		if _, err := writeBackupFile(s, path); err != nil {
			t.Fatal(err)
		}
		backups = append(backups, path)
	}
	stop.Store(true)
	wg.Wait()

	last := 0
	for i, b := range backups {
		st, err := boltstore.CheckFile(b, 0)
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		if st.Incidents < last || st.Events != st.Incidents*eventsPerIncident {
			t.Fatalf("backup %d: %d incidents, %d events (previous backup had %d incidents)", i, st.Incidents, st.Events, last)
		}
		last = st.Incidents
		restored := filepath.Join(dir, fmt.Sprintf("restored-%d.db", i))
		if _, err := boltstore.Restore(b, restored, time.Now()); err != nil {
			t.Fatal(err)
		}
		rs := bolttest.OpenAt(t, restored)
		_ = rs.View(context.Background(), func(tx incident.Tx) error {
			all, err := tx.Incidents(incident.Filter{})
			if err != nil || len(all) != st.Incidents {
				t.Fatalf("restored %d: %d incidents (%v), want %d", i, len(all), err, st.Incidents)
			}
			for _, inc := range all {
				evs, _ := tx.Timeline(inc.Number)
				if len(evs) != eventsPerIncident {
					t.Fatalf("restored %d: %s has %d events", i, inc.ID(), len(evs))
				}
			}
			return nil
		})
		_ = rs.Close()
	}
	if last == 0 {
		t.Fatal("backups were empty")
	}
}

func TestRestoreRefusesBadBackupsAndRunningBots(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	live := bolttest.OpenAt(t, db)
	backup := filepath.Join(dir, "backup.db")
	if _, err := writeBackupFile(live, backup); err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.Restore(backup, db, time.Now()); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("restore over a running bot's database: %v, want ErrLocked", err)
	}
	_ = live.Close()

	junk := filepath.Join(dir, "junk.db")
	_ = os.WriteFile(junk, []byte("this is not a database"), 0o600)
	if _, err := boltstore.Restore(junk, db, time.Now()); err == nil {
		t.Fatal("restored a junk file")
	}
	if _, err := boltstore.CheckFile(db, 0); err != nil {
		t.Fatalf("the refused restore damaged the database: %v", err)
	}
	r, err := boltstore.Restore(backup, db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Previous); err != nil || !strings.HasPrefix(r.Previous, db+".before-restore-") {
		t.Fatalf("the previous database was not kept: %q, %v", r.Previous, err)
	}
}

// writeBackupFile writes a backup of s to a new file at path.
func writeBackupFile(s *boltstore.Store, path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := s.WriteBackup(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
