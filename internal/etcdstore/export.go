package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// keyMigrating marks a keyspace that Import has not finished: Open refuses
// it (unless Options.Importing) until a migration completes.
const keyMigrating = "meta/migrating"

var (
	_ incident.Exporter = (*Store)(nil)
	_ incident.Importer = (*Store)(nil)
)

// Export implements incident.Exporter from one snapshot (one revision).
func (s *Store) Export(ctx context.Context, fn func(incident.Record) error) error {
	t, err := s.begin(ctx, false)
	if err != nil {
		return err
	}
	if err := t.ForEachIncident(func(inc *incident.Incident) error {
		return fn(incident.Record{Incident: inc})
	}); err != nil {
		return err
	}
	steps := []struct {
		pfx string
		rec func(k string, v []byte) (incident.Record, error)
	}{
		{pfxEvent, func(_ string, v []byte) (incident.Record, error) {
			var ev incident.Event
			return incident.Record{Event: &ev}, json.Unmarshal(v, &ev)
		}},
		{pfxKey, func(k string, v []byte) (incident.Record, error) {
			kr := &incident.KeyRecord{Key: k}
			if len(v) >= 16 {
				n, err := parseHex(string(v[:16]))
				if err != nil {
					return incident.Record{}, fmt.Errorf("damaged idempotency key %q", k)
				}
				kr.At, kr.Value = time.Unix(0, int64(n)).UTC(), v[16:]
			}
			return incident.Record{Key: kr}, nil
		}},
		{pfxJob, func(_ string, v []byte) (incident.Record, error) {
			var j incident.Job
			return incident.Record{Job: &j}, json.Unmarshal(v, &j)
		}},
		{pfxDead, func(_ string, v []byte) (incident.Record, error) {
			failed, raw, err := deadLetter(v)
			if err != nil {
				return incident.Record{}, err
			}
			d := &incident.DeadLetter{Failed: failed.UTC()}
			return incident.Record{Dead: d}, json.Unmarshal(raw, &d.Job)
		}},
		{pfxDoc, func(k string, v []byte) (incident.Record, error) {
			parts := strings.SplitN(k, "\x00", 3)
			if len(parts) != 3 {
				return incident.Record{}, fmt.Errorf("damaged document key %q", k)
			}
			ver, err := parseHex(parts[2])
			if err != nil {
				return incident.Record{}, fmt.Errorf("damaged document key %q", k)
			}
			return incident.Record{Doc: &incident.DocRecord{Kind: parts[0], Name: parts[1], Version: int(ver), Body: v}}, nil
		}},
	}
	for _, st := range steps {
		entries, err := t.scan(st.pfx, prefixEnd(st.pfx), false)
		if err != nil {
			return err
		}
		for _, e := range entries {
			v, err := t.value(e.value) // a large job, dead letter or document
			if err != nil {
				return fmt.Errorf("exporting %s: %w", e.key, err)
			}
			r, err := st.rec(strings.TrimPrefix(e.key, st.pfx), v)
			if err != nil {
				return fmt.Errorf("exporting %s: %w", e.key, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	for _, c := range []struct{ name, key string }{{incident.CounterIncident, keySeqIncident}, {incident.CounterJob, keySeqJob}} {
		raw, ok, err := t.get(c.key)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		n, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("damaged counter %s: %q", c.key, raw)
		}
		if err := fn(incident.Record{Counter: &incident.CounterMark{Name: c.name, Value: n}}); err != nil {
			return err
		}
	}
	return nil
}

// Import implements incident.Importer. It deletes everything under the
// prefix, marks the keyspace as being migrated (keyMigrating), writes the
// records in commits within the store's limits and removes the mark in the
// last commit: a migration that stops half-way leaves a keyspace that Open
// refuses to serve until a migration completes. Stop every replica first.
func (s *Store) Import(ctx context.Context, src func(fn func(incident.Record) error) error) error {
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	// Mark first, then clear everything else, then write the schema: a
	// migration stopped anywhere after the first step leaves the mark.
	marker := s.p + keyMigrating
	steps := [][]clientv3.Op{
		{clientv3.OpPut(marker, "bot migrate in progress")},
		{clientv3.OpDelete(s.p, clientv3.WithRange(marker)),
			clientv3.OpDelete(marker+"\x00", clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.p)))},
		{clientv3.OpPut(s.p+keySchema, strconv.Itoa(SchemaVersion))},
	}
	for _, ops := range steps {
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("clearing etcd prefix %s: %w", s.p, err)
		}
	}
	t, err := s.begin(ctx, true)
	if err != nil {
		return err
	}
	size := func() (ops, bytes int) {
		for k, w := range t.writes {
			ops++
			bytes += len(k) + len(w.value)
		}
		return ops, bytes
	}
	flush := func() error {
		if len(t.writes) == 0 {
			return nil
		}
		ok, err := s.commit(ctx, t, nil)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("etcd prefix %s changed during the migration: is a bot running on it?", s.p)
		}
		t, err = s.begin(ctx, true)
		return err
	}
	err = src(func(r incident.Record) error {
		// A large record (a document, a stored webhook body) goes into a
		// commit of its own rather than over the limit with what precedes it.
		if ops, n := size(); ops > 0 && n+recordSize(r) >= s.opts.MaxTxnBytes*3/4 {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := t.importRecord(r); err != nil {
			return err
		}
		if ops, n := size(); ops >= s.opts.MaxTxnOps-8 || n >= s.opts.MaxTxnBytes/2 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.del(keyMigrating)
	return flush()
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
		n, seq := num(ev.Incident), hex64(uint64(ev.Seq))
		t.put(pfxEvent+n+"/"+seq, raw)
		if ev.Key != "" {
			t.put(pfxEventKey+n+"/"+ev.Key, []byte(seq))
		}
		return t.raise(pfxEventSeq+n, uint64(ev.Seq))
	case r.Key != nil:
		return t.PutKey(r.Key.Key, r.Key.Value, r.Key.At)
	case r.Job != nil:
		return t.putJob(r.Job, nil)
	case r.Dead != nil:
		raw, err := json.Marshal(&r.Dead.Job)
		if err != nil {
			return err
		}
		return t.putLarge(pfxDead+hex64(r.Dead.Job.ID), append([]byte(timeHex(r.Dead.Failed)), raw...), false)
	case r.Doc != nil:
		d := r.Doc
		if err := t.putLarge(pfxDoc+docPrefix(d.Kind, d.Name)+fmt.Sprintf("%08x", d.Version), d.Body, false); err != nil {
			return err
		}
		return t.raise(pfxDocLatest+d.Kind+"\x00"+d.Name, uint64(d.Version))
	case r.Counter != nil:
		switch r.Counter.Name {
		case incident.CounterIncident:
			return t.raise(keySeqIncident, r.Counter.Value)
		case incident.CounterJob:
			return t.raise(keySeqJob, r.Counter.Value)
		}
	}
	return nil // Check refused the rest
}

// recordSize overestimates what a record writes (its JSON, with bodies in
// base64).
func recordSize(r incident.Record) int {
	raw, _ := json.Marshal(r)
	return len(raw)
}

// raise sets a decimal counter to n unless it holds more already.
func (t *tx) raise(key string, n uint64) error {
	raw, ok, err := t.get(key)
	if err != nil {
		return err
	}
	if ok {
		if cur, err := strconv.ParseUint(string(raw), 10, 64); err == nil && cur >= n {
			return nil
		}
	}
	t.put(key, []byte(strconv.FormatUint(n, 10)))
	return nil
}
