package boltstore_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

func pruneAll(t *testing.T, batch func() (int, error)) int {
	t.Helper()
	total := 0
	for {
		n, err := batch()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func deadPayloads(t *testing.T, s *boltstore.Store) map[string]bool {
	t.Helper()
	dead, err := s.DeadJobs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, j := range dead {
		out[string(j.Payload)] = true
	}
	return out
}

// TestPruneDeadJobsKeepsThemForTheRetention: dead letters are kept until
// they failed longer ago than the cutoff, in small transactions; one from a
// file written before failure times were recorded is kept one retention
// from the first prune, not deleted at once nor kept forever.
func TestPruneDeadJobsKeepsThemForTheRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	s := bolttest.OpenAt(t, path)
	var jobs []incident.Job
	for i := range 7 {
		jobs = append(jobs, incident.Job{Kind: "pagerduty.event", Due: t0, Payload: []byte(fmt.Sprintf(`"hook%d"`, i))})
	}
	update(t, s, func(tx incident.Tx) error {
		for i := range jobs {
			if err := tx.Enqueue(&jobs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for i, j := range jobs {
		failed := t0.Add(-40 * 24 * time.Hour) // hook0..hook2: long ago
		if i >= 3 {
			failed = t0.Add(-time.Hour) // hook3..hook5: recently
		}
		if err := s.FailJob(j.ID, "bad", failed); err != nil {
			t.Fatal(err)
		}
	}
	// hook6 was dead-lettered by an older version: JSON without a time.
	_ = s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		raw, _ := json.Marshal(jobs[6])
		return tx.Bucket([]byte("jobs_dead")).Put(binaryID(jobs[6].ID), raw)
	})
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = bolttest.OpenAt(t, path)

	cutoff := t0.Add(-30 * 24 * time.Hour)
	if n := pruneAll(t, func() (int, error) { return s.PruneDeadJobs(cutoff, t0, 2) }); n != 3 {
		t.Fatalf("pruned %d dead letters, want the 3 older than the cutoff", n)
	}
	got := deadPayloads(t, s)
	if len(got) != 4 || got[`"hook0"`] || !got[`"hook3"`] || !got[`"hook6"`] {
		t.Fatalf("dead letters left: %v", got)
	}
	// A month later the recent ones and the old-format one have expired.
	if n := pruneAll(t, func() (int, error) { return s.PruneDeadJobs(t0.Add(time.Minute), t0.Add(30*24*time.Hour), 2) }); n != 4 {
		t.Fatalf("pruned %d, want 4", n)
	}
	if _, _, dead, _ := s.JobStats(); dead != 0 {
		t.Fatalf("%d dead letters left", dead)
	}
}

// TestPruneDocsRemovesOldRecordsOfOneKind: documents of the kind whose time
// is before the cutoff go, younger ones and other kinds stay.
func TestPruneDocsRemovesOldRecordsOfOneKind(t *testing.T) {
	s := bolttest.Open(t)
	stamp := func(d time.Duration) []byte { return []byte(t0.Add(d).Format(time.RFC3339Nano)) }
	update(t, s, func(tx incident.Tx) error {
		for i, d := range []time.Duration{-50 * 24 * time.Hour, -40 * 24 * time.Hour, -31 * 24 * time.Hour, -2 * time.Hour, -time.Hour} {
			if _, err := tx.PutDoc("runbook-run", fmt.Sprintf("RUN%02d", i), stamp(d)); err != nil {
				return err
			}
		}
		_, err := tx.PutDoc("postmortem", "INC-1", stamp(-90*24*time.Hour))
		return err
	})
	at := func(body []byte) (time.Time, bool) {
		ts, err := time.Parse(time.RFC3339Nano, string(body))
		return ts, err == nil
	}
	if n := pruneAll(t, func() (int, error) { return s.PruneDocs("runbook-run", t0.Add(-30*24*time.Hour), 2, at) }); n != 3 {
		t.Fatalf("pruned %d runs, want 3", n)
	}
	_ = s.View(context.Background(), func(tx incident.Tx) error {
		for name, want := range map[string]bool{"RUN00": false, "RUN02": false, "RUN03": true, "RUN04": true} {
			if _, _, err := tx.Doc("runbook-run", name, 0); (err == nil) != want {
				t.Errorf("%s kept: %v, want %v", name, err == nil, want)
			}
		}
		if _, _, err := tx.Doc("postmortem", "INC-1", 0); err != nil {
			t.Errorf("a postmortem was pruned: %v", err)
		}
		return nil
	})
}

func binaryID(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }
