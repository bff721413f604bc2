package etcdstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The key layout under the prefix. Numbers and times are fixed-width hex so
// keys sort in numeric order; free-form strings (channel ids, idempotency
// keys, job keys, document names) end at a NUL byte where a key continues
// after them, so one cannot be a prefix of another's entries.
const (
	keySchema      = "meta/schema"
	keyCommit      = "meta/commit" // moved by every commit: the optimistic lock
	keyProbe       = "meta/probe"
	keySeqIncident = "seq/incident"
	keySeqJob      = "seq/job"
	pfxIncident    = "inc/"         // number → incident JSON
	pfxByChannel   = "idx/channel/" // channel id → number
	pfxByPager     = "idx/pager/"   // pager system ":" pager incident id → number (schema 2; bare id before)
	pfxOpen        = "idx/open/"    // number
	pfxDeclared    = "idx/declared/"
	pfxEvent       = "ev/"     // number/seq → event JSON
	pfxEventSeq    = "evseq/"  // number → last seq
	pfxEventKey    = "evkey/"  // number/key → seq
	pfxKey         = "key/"    // idempotency key → time + value
	pfxJob         = "job/"    // id → job JSON
	pfxJobDue      = "jobdue/" // due + id
	pfxJobKey      = "jobkey/" // key NUL id
	pfxDead        = "dead/"   // id → time + job JSON
	pfxDoc         = "doc/"    // kind NUL name NUL version → body
	pfxDocLatest   = "docv/"   // kind NUL name → latest version
	pfxRunbookReq  = "rbreq/"  // run id → runbook request JSON
)

func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }

func num(n int64) string { return hex64(uint64(n)) }

// timeHex orders times; times before 1970 sort as 1970.
func timeHex(t time.Time) string {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return hex64(uint64(n))
}

func parseHex(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// write is a buffered change.
type write struct {
	value   []byte
	deleted bool
	lease   clientv3.LeaseID
	// keep: the key holds a staged blob chunk; the commit keeps its value
	// and drops its staging lease (see blob.go).
	keep bool
	// rangeEnd: a deletion of every key in [key, rangeEnd).
	rangeEnd string
}

type kv struct {
	key   string // without the prefix
	value []byte
}

// tx implements incident.Tx over a snapshot and a write buffer.
type tx struct {
	s        *Store
	ctx      context.Context
	rev      int64
	marker   int64 // the commit marker's ModRevision at rev
	writable bool
	writes   map[string]*write // full keys
	enqueued bool
}

var _ incident.Tx = (*tx)(nil)

func (t *tx) check() error {
	if !t.writable {
		return errReadOnlyTxWrite
	}
	return nil
}

// get reads a key (without prefix) as of the snapshot plus this
// transaction's writes.
func (t *tx) get(key string) ([]byte, bool, error) {
	full := t.s.p + key
	if w, ok := t.writes[full]; ok && !w.keep && w.rangeEnd == "" {
		return w.value, !w.deleted, nil
	}
	ctx, cancel := t.s.rpcCtx(t.ctx)
	defer cancel()
	resp, err := t.s.cli.Get(ctx, full, clientv3.WithRev(t.rev))
	if err != nil {
		return nil, false, fmt.Errorf("reading etcd: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// scan returns the keys in [start, end) (without prefix) as of the snapshot
// plus this transaction's writes, in key order. keysOnly leaves values nil.
func (t *tx) scan(start, end string, keysOnly bool) ([]kv, error) {
	opts := []clientv3.OpOption{clientv3.WithRev(t.rev), clientv3.WithRange(t.s.p + end)}
	if keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	ctx, cancel := t.s.rpcCtx(t.ctx)
	defer cancel()
	resp, err := t.s.cli.Get(ctx, t.s.p+start, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading etcd: %w", err)
	}
	out := make([]kv, 0, len(resp.Kvs))
	for _, e := range resp.Kvs {
		k := string(e.Key)
		if w, ok := t.writes[k]; ok && !w.keep && w.rangeEnd == "" {
			continue // the buffered write decides
		}
		out = append(out, kv{key: k[len(t.s.p):], value: e.Value})
	}
	if len(t.writes) == 0 {
		return out, nil
	}
	for k, w := range t.writes {
		k = k[len(t.s.p):]
		if w.deleted || w.keep || k < start || k >= end {
			continue
		}
		out = append(out, kv{key: k, value: w.value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// prefixEnd is the end of the range of keys starting with p.
func prefixEnd(p string) string { return p + "\xff" }

func (t *tx) put(key string, value []byte) {
	t.writes[t.s.p+key] = &write{value: bytes.Clone(value)}
}

func (t *tx) del(key string) {
	t.writes[t.s.p+key] = &write{deleted: true}
}

// next increments the counter at key and returns the new value.
func (t *tx) next(key string) (uint64, error) {
	raw, _, err := t.get(key)
	if err != nil {
		return 0, err
	}
	var n uint64
	if len(raw) > 0 {
		if n, err = strconv.ParseUint(string(raw), 10, 64); err != nil {
			return 0, fmt.Errorf("damaged counter %s: %q", key, raw)
		}
	}
	n++
	t.put(key, []byte(strconv.FormatUint(n, 10)))
	return n, nil
}

func notFound(format string, args ...any) error {
	return incident.Errorf(incident.ENOTFOUND, format, args...)
}

func (t *tx) NextIncidentNumber() (int64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	n, err := t.next(keySeqIncident)
	return int64(n), err
}

func (t *tx) Incident(number int64) (*incident.Incident, error) {
	raw, ok, err := t.get(pfxIncident + num(number))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("%s does not exist.", incident.FormatID(number))
	}
	var inc incident.Incident
	if err := json.Unmarshal(raw, &inc); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", incident.FormatID(number), err)
	}
	return &inc, nil
}

func (t *tx) byIndex(pfx, key, what string) (*incident.Incident, error) {
	if key == "" {
		return nil, notFound("No incident for an empty %s.", what)
	}
	raw, ok, err := t.get(pfx + key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("No incident for %s %s.", what, key)
	}
	n, err := parseHex(string(raw))
	if err != nil {
		return nil, fmt.Errorf("damaged %s index entry %q", what, key)
	}
	return t.Incident(int64(n))
}

func (t *tx) IncidentByChannel(channelID string) (*incident.Incident, error) {
	return t.byIndex(pfxByChannel, channelID, "channel")
}

func (t *tx) IncidentByPager(system incident.Source, pagerIncidentID string) (*incident.Incident, error) {
	return t.byIndex(pfxByPager, incident.PagerIndexKey(system, pagerIncidentID), "pager incident")
}

func (t *tx) PutIncident(inc *incident.Incident) error {
	if err := t.check(); err != nil {
		return err
	}
	if inc.Number <= 0 {
		return fmt.Errorf("storing incident with number %d", inc.Number)
	}
	n := num(inc.Number)
	var old incident.Incident
	if raw, ok, err := t.get(pfxIncident + n); err != nil {
		return err
	} else if ok {
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("decoding %s: %w", inc.ID(), err)
		}
	}
	raw, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", inc.ID(), err)
	}
	t.put(pfxIncident+n, raw)
	t.reindex(pfxByChannel, old.Chat.ChannelID, inc.Chat.ChannelID, n)
	t.reindex(pfxByPager, old.Pager.IndexKey(), inc.Pager.IndexKey(), n)
	if inc.Status.Open() {
		t.put(pfxOpen+n, nil)
	} else if old.Status.Open() {
		t.del(pfxOpen + n)
	}
	if !old.DeclaredAt.IsZero() && !old.DeclaredAt.Equal(inc.DeclaredAt) {
		t.del(pfxDeclared + timeHex(old.DeclaredAt) + n)
	}
	if old.DeclaredAt.IsZero() || !old.DeclaredAt.Equal(inc.DeclaredAt) {
		t.put(pfxDeclared+timeHex(inc.DeclaredAt)+n, nil)
	}
	return nil
}

func (t *tx) reindex(pfx, oldKey, newKey, n string) {
	if oldKey == newKey {
		return // unchanged: the entry (if any) is already right
	}
	if oldKey != "" {
		t.del(pfx + oldKey)
	}
	if newKey != "" {
		t.put(pfx+newKey, []byte(n))
	}
}

func (t *tx) Incidents(f incident.Filter) ([]*incident.Incident, error) {
	var numbers []int64
	collect := func(pfx string, start, end string, at int) error {
		entries, err := t.scan(start, end, true)
		if err != nil {
			return err
		}
		for _, e := range entries {
			n, err := parseHex(e.key[len(pfx)+at:])
			if err != nil {
				return fmt.Errorf("damaged index entry %q", e.key)
			}
			numbers = append(numbers, int64(n))
		}
		return nil
	}
	var err error
	switch {
	case f.OpenOnly:
		err = collect(pfxOpen, pfxOpen, prefixEnd(pfxOpen), 0)
	case !f.DeclaredFrom.IsZero() || !f.DeclaredTo.IsZero():
		start, end := pfxDeclared, prefixEnd(pfxDeclared)
		if !f.DeclaredFrom.IsZero() {
			start = pfxDeclared + timeHex(f.DeclaredFrom)
		}
		if !f.DeclaredTo.IsZero() {
			end = pfxDeclared + timeHex(f.DeclaredTo)
		}
		err = collect(pfxDeclared, start, end, 16)
		slices.Sort(numbers)
	default:
		err = collect(pfxIncident, pfxIncident, prefixEnd(pfxIncident), 0)
	}
	if err != nil {
		return nil, err
	}
	return f.Collect(numbers, t.Incident)
}

func (t *tx) ForEachIncident(fn func(*incident.Incident) error) error {
	entries, err := t.scan(pfxIncident, prefixEnd(pfxIncident), false)
	if err != nil {
		return err
	}
	for _, e := range entries {
		var inc incident.Incident
		if err := json.Unmarshal(e.value, &inc); err != nil {
			return fmt.Errorf("decoding incident %s: %w", e.key, err)
		}
		if err := fn(&inc); err != nil {
			return err
		}
	}
	return nil
}

// maxKeyLen caps idempotency keys; outside ids are a few dozen bytes, so a
// longer one is bad input.
const maxKeyLen = 1024

func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return incident.Errorf(incident.EINVALID, "idempotency key too long (%d bytes)", len(key))
	}
	if strings.IndexByte(key, 0) >= 0 {
		return incident.Errorf(incident.EINVALID, "idempotency key contains a NUL byte")
	}
	return nil
}

func (t *tx) AppendEvent(ev *incident.Event) (bool, error) {
	if err := t.check(); err != nil {
		return false, err
	}
	if ev.Incident <= 0 {
		return false, fmt.Errorf("event without incident")
	}
	if err := checkKey(ev.Key); err != nil {
		return false, err
	}
	n := num(ev.Incident)
	if ev.Key != "" {
		if _, ok, err := t.get(pfxEventKey + n + "/" + ev.Key); err != nil || ok {
			return false, err
		}
	}
	seq, err := t.next(pfxEventSeq + n)
	if err != nil {
		return false, err
	}
	ev.Seq = int64(seq)
	raw, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encoding event: %w", err)
	}
	t.put(pfxEvent+n+"/"+hex64(seq), raw)
	if ev.Key != "" {
		t.put(pfxEventKey+n+"/"+ev.Key, []byte(hex64(seq)))
	}
	return true, nil
}

func (t *tx) EventsAfter(number, after int64) ([]incident.Event, error) {
	pfx := pfxEvent + num(number) + "/"
	entries, err := t.scan(pfx+hex64(uint64(after+1)), prefixEnd(pfx), false)
	if err != nil {
		return nil, err
	}
	out := make([]incident.Event, 0, len(entries))
	for _, e := range entries {
		var ev incident.Event
		if err := json.Unmarshal(e.value, &ev); err != nil {
			return nil, fmt.Errorf("decoding event of %s: %w", incident.FormatID(number), err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func (t *tx) Timeline(number int64) ([]incident.Event, error) {
	events, err := t.EventsAfter(number, 0)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	return events, nil
}

func (t *tx) Key(key string) ([]byte, bool, error) {
	raw, ok, err := t.get(pfxKey + key)
	if err != nil || !ok {
		return nil, false, err
	}
	if len(raw) < 16 {
		return nil, true, nil
	}
	return bytes.Clone(raw[16:]), true, nil
}

func (t *tx) PutKey(key string, value []byte, at time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("empty idempotency key")
	}
	if err := checkKey(key); err != nil {
		return err
	}
	raw := append([]byte(timeHex(at)), value...)
	t.put(pfxKey+key, raw)
	if t.s.expires(key) {
		lease, err := t.s.leases.get(t.ctx)
		if err != nil {
			return err
		}
		t.writes[t.s.p+pfxKey+key].lease = lease
	}
	return nil
}

func docPrefix(kind, name string) string { return kind + "\x00" + name + "\x00" }

func (t *tx) PutDoc(kind, name string, body []byte) (int, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if strings.IndexByte(kind, 0) >= 0 || strings.IndexByte(name, 0) >= 0 {
		return 0, incident.Errorf(incident.EINVALID, "document name contains a NUL byte")
	}
	v, err := t.next(pfxDocLatest + kind + "\x00" + name)
	if err != nil {
		return 0, err
	}
	if err := t.putLarge(pfxDoc+docPrefix(kind, name)+fmt.Sprintf("%08x", v), body, false); err != nil {
		return 0, err
	}
	return int(v), nil
}

func (t *tx) Doc(kind, name string, v int) ([]byte, int, error) {
	if v <= 0 {
		raw, ok, err := t.get(pfxDocLatest + kind + "\x00" + name)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, notFound("No %s %s.", kind, name)
		}
		latest, err := strconv.Atoi(string(raw))
		if err != nil {
			return nil, 0, fmt.Errorf("damaged version of %s %s: %q", kind, name, raw)
		}
		body, ok, err := t.getValue(pfxDoc + docPrefix(kind, name) + fmt.Sprintf("%08x", latest))
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, notFound("No %s %s.", kind, name)
		}
		return bytes.Clone(body), latest, nil
	}
	body, ok, err := t.getValue(pfxDoc + docPrefix(kind, name) + fmt.Sprintf("%08x", v))
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, notFound("No %s %s version %d.", kind, name, v)
	}
	return bytes.Clone(body), v, nil
}
