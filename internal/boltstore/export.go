package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

var (
	_ incident.Exporter = (*Store)(nil)
	_ incident.Importer = (*Store)(nil)
)

// Export implements incident.Exporter from one read transaction.
func (s *Store) Export(ctx context.Context, fn func(incident.Record) error) error {
	return s.db.View(func(btx *bolt.Tx) error {
		t := &tx{tx: btx}
		if err := t.ForEachIncident(func(inc *incident.Incident) error {
			return fn(incident.Record{Incident: inc})
		}); err != nil {
			return err
		}
		each := func(bucket []byte, rec func(k, v []byte) (incident.Record, error)) error {
			return btx.Bucket(bucket).ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				r, err := rec(k, v)
				if err != nil {
					return fmt.Errorf("exporting %s: %w", bucket, err)
				}
				return fn(r)
			})
		}
		steps := []struct {
			bucket []byte
			rec    func(k, v []byte) (incident.Record, error)
		}{
			{bucketEvents, func(_, v []byte) (incident.Record, error) {
				var ev incident.Event
				return incident.Record{Event: &ev}, json.Unmarshal(v, &ev)
			}},
			{bucketKeys, func(k, v []byte) (incident.Record, error) {
				kr := &incident.KeyRecord{Key: string(k)}
				if len(v) >= 8 {
					kr.At, kr.Value = time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))).UTC(), bytes.Clone(v[8:])
				}
				return incident.Record{Key: kr}, nil
			}},
			{bucketJobs, func(_, v []byte) (incident.Record, error) {
				var j incident.Job
				return incident.Record{Job: &j}, json.Unmarshal(v, &j)
			}},
			{bucketJobsDead, func(_, v []byte) (incident.Record, error) {
				d := &incident.DeadLetter{}
				failed, raw, _ := deadLetter(v)
				d.Failed = failed.UTC()
				return incident.Record{Dead: d}, json.Unmarshal(raw, &d.Job)
			}},
			{bucketDocs, func(k, v []byte) (incident.Record, error) {
				parts := bytes.SplitN(k, []byte{0}, 3)
				if len(parts) != 3 || len(parts[2]) != 4 {
					return incident.Record{}, fmt.Errorf("damaged document key %q", k)
				}
				return incident.Record{Doc: &incident.DocRecord{Kind: string(parts[0]), Name: string(parts[1]),
					Version: int(binary.BigEndian.Uint32(parts[2])), Body: bytes.Clone(v)}}, nil
			}},
		}
		for _, st := range steps {
			if err := each(st.bucket, st.rec); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			name   string
			bucket []byte
		}{{incident.CounterIncident, bucketIncidents}, {incident.CounterJob, bucketJobs}} {
			if n := btx.Bucket(c.bucket).Sequence(); n > 0 {
				if err := fn(incident.Record{Counter: &incident.CounterMark{Name: c.name, Value: n}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Import implements incident.Importer in one transaction: the file holds
// everything or, if Import fails, what it held before.
func (s *Store) Import(ctx context.Context, src func(fn func(incident.Record) error) error) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		for _, b := range allBuckets {
			if bytes.Equal(b, bucketMeta) {
				continue
			}
			if err := btx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := btx.CreateBucket(b); err != nil {
				return err
			}
		}
		if err := dropRunbookRequests(btx); err != nil {
			return err
		}
		t := &tx{tx: btx}
		return src(func(r incident.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return t.importRecord(r)
		})
	})
}

func (t *tx) importRecord(r incident.Record) error {
	if err := r.Check(); err != nil {
		return err
	}
	switch {
	case r.Incident != nil:
		return t.PutIncident(r.Incident)
	case r.Event != nil:
		ev := r.Event
		raw, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		prefix := i64key(ev.Incident)
		if err := t.b(bucketEvents).Put(concat(prefix, u64(uint64(ev.Seq))), raw); err != nil {
			return err
		}
		if ev.Key != "" {
			return t.b(bucketEventKeys).Put(concat(prefix, []byte(ev.Key)), u64(uint64(ev.Seq)))
		}
		return nil
	case r.Key != nil:
		return t.PutKey(r.Key.Key, r.Key.Value, r.Key.At)
	case r.Job != nil:
		return t.putJob(r.Job, nil)
	case r.Dead != nil:
		raw, err := json.Marshal(&r.Dead.Job)
		if err != nil {
			return err
		}
		return t.b(bucketJobsDead).Put(u64(r.Dead.Job.ID), concat(timeKey(r.Dead.Failed), raw))
	case r.Doc != nil:
		d := r.Doc
		return t.b(bucketDocs).Put(docKey(d.Kind, d.Name, d.Version), d.Body)
	case r.Counter != nil:
		switch r.Counter.Name {
		case incident.CounterIncident:
			return t.b(bucketIncidents).SetSequence(r.Counter.Value)
		case incident.CounterJob:
			return t.b(bucketJobs).SetSequence(r.Counter.Value)
		}
	}
	return nil // Check refused the rest
}
