package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// tx implements incident.Tx over one bbolt transaction.
type tx struct {
	tx       *bolt.Tx
	enqueued bool // a job was enqueued: wake the runner after commit
}

var _ incident.Tx = (*tx)(nil)

func (t *tx) b(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

func (t *tx) writable() error {
	if !t.tx.Writable() {
		return errReadOnlyTxWrite
	}
	return nil
}

func (t *tx) NextIncidentNumber() (int64, error) {
	if err := t.writable(); err != nil {
		return 0, err
	}
	n, err := t.b(bucketIncidents).NextSequence()
	return int64(n), err
}

func (t *tx) Incident(number int64) (*incident.Incident, error) {
	raw := t.b(bucketIncidents).Get(i64key(number))
	if raw == nil {
		return nil, notFound("%s does not exist.", incident.FormatID(number))
	}
	var inc incident.Incident
	if err := json.Unmarshal(raw, &inc); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", incident.FormatID(number), err)
	}
	return &inc, nil
}

func (t *tx) byIndex(bucket []byte, key, what string) (*incident.Incident, error) {
	if key == "" {
		return nil, notFound("No incident for an empty %s.", what)
	}
	raw := t.b(bucket).Get([]byte(key))
	if raw == nil {
		return nil, notFound("No incident for %s %s.", what, key)
	}
	return t.Incident(int64(binary.BigEndian.Uint64(raw)))
}

func (t *tx) IncidentByChannel(channelID string) (*incident.Incident, error) {
	return t.byIndex(bucketByChannel, channelID, "channel")
}

func (t *tx) IncidentByPager(system incident.Source, pagerIncidentID string) (*incident.Incident, error) {
	return t.byIndex(bucketByPager, incident.PagerIndexKey(system, pagerIncidentID), "pager incident")
}

func (t *tx) PutIncident(inc *incident.Incident) error {
	if err := t.writable(); err != nil {
		return err
	}
	if inc.Number <= 0 {
		return fmt.Errorf("storing incident with number %d", inc.Number)
	}
	key := i64key(inc.Number)
	var old incident.Incident
	if raw := t.b(bucketIncidents).Get(key); raw != nil {
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("decoding %s: %w", inc.ID(), err)
		}
	}
	raw, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", inc.ID(), err)
	}
	if err := t.b(bucketIncidents).Put(key, raw); err != nil {
		return err
	}
	if err := reindex(t.b(bucketByChannel), old.Chat.ChannelID, inc.Chat.ChannelID, key); err != nil {
		return err
	}
	if err := reindex(t.b(bucketByPager), old.Pager.IndexKey(), inc.Pager.IndexKey(), key); err != nil {
		return err
	}
	if inc.Status.Open() {
		err = t.b(bucketOpen).Put(key, nil)
	} else {
		err = t.b(bucketOpen).Delete(key)
	}
	if err != nil {
		return err
	}
	if !old.DeclaredAt.Equal(inc.DeclaredAt) && !old.DeclaredAt.IsZero() {
		if err := t.b(bucketByDeclared).Delete(concat(timeKey(old.DeclaredAt), key)); err != nil {
			return err
		}
	}
	return t.b(bucketByDeclared).Put(concat(timeKey(inc.DeclaredAt), key), nil)
}

func reindex(b *bolt.Bucket, oldKey, newKey string, value []byte) error {
	if oldKey == newKey {
		if newKey == "" {
			return nil
		}
		return b.Put([]byte(newKey), value)
	}
	if oldKey != "" {
		if err := b.Delete([]byte(oldKey)); err != nil {
			return err
		}
	}
	if newKey != "" {
		return b.Put([]byte(newKey), value)
	}
	return nil
}

func (t *tx) Incidents(f incident.Filter) ([]*incident.Incident, error) {
	var numbers []int64
	switch {
	case f.OpenOnly:
		err := t.b(bucketOpen).ForEach(func(k, _ []byte) error {
			numbers = append(numbers, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
		if err != nil {
			return nil, err
		}
	case !f.DeclaredFrom.IsZero() || !f.DeclaredTo.IsZero():
		c := t.b(bucketByDeclared).Cursor()
		var k []byte
		if f.DeclaredFrom.IsZero() {
			k, _ = c.First()
		} else {
			k, _ = c.Seek(timeKey(f.DeclaredFrom))
		}
		end := timeKey(f.DeclaredTo)
		for ; k != nil; k, _ = c.Next() {
			if !f.DeclaredTo.IsZero() && bytes.Compare(k[:8], end) >= 0 {
				break
			}
			numbers = append(numbers, int64(binary.BigEndian.Uint64(k[8:])))
		}
		slices.Sort(numbers)
	default:
		err := t.b(bucketIncidents).ForEach(func(k, _ []byte) error {
			numbers = append(numbers, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return f.Collect(numbers, t.Incident)
}

func (t *tx) ForEachIncident(fn func(*incident.Incident) error) error {
	return t.b(bucketIncidents).ForEach(func(k, v []byte) error {
		var inc incident.Incident
		if err := json.Unmarshal(v, &inc); err != nil {
			return fmt.Errorf("decoding incident %d: %w", binary.BigEndian.Uint64(k), err)
		}
		return fn(&inc)
	})
}

func (t *tx) AppendEvent(ev *incident.Event) (bool, error) {
	if err := t.writable(); err != nil {
		return false, err
	}
	if ev.Incident <= 0 {
		return false, fmt.Errorf("event without incident")
	}
	prefix := i64key(ev.Incident)
	if err := checkKey(ev.Key); err != nil {
		return false, err
	}
	if ev.Key != "" {
		if t.b(bucketEventKeys).Get(concat(prefix, []byte(ev.Key))) != nil {
			return false, nil
		}
	}
	ev.Seq = t.lastSeq(prefix) + 1
	raw, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encoding event: %w", err)
	}
	if err := t.b(bucketEvents).Put(concat(prefix, u64(uint64(ev.Seq))), raw); err != nil {
		return false, err
	}
	if ev.Key != "" {
		if err := t.b(bucketEventKeys).Put(concat(prefix, []byte(ev.Key)), u64(uint64(ev.Seq))); err != nil {
			return false, err
		}
	}
	return true, nil
}

// lastSeq finds the highest event seq of an incident: the key just before
// the next incident's prefix.
func (t *tx) lastSeq(prefix []byte) int64 {
	c := t.b(bucketEvents).Cursor()
	next := u64(binary.BigEndian.Uint64(prefix) + 1)
	k, _ := c.Seek(next)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k[8:]))
}

func (t *tx) EventsAfter(number, after int64) ([]incident.Event, error) {
	prefix := i64key(number)
	c := t.b(bucketEvents).Cursor()
	var out []incident.Event
	for k, v := c.Seek(concat(prefix, u64(uint64(after+1)))); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ev incident.Event
		if err := json.Unmarshal(v, &ev); err != nil {
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
	raw := t.b(bucketKeys).Get([]byte(key))
	if raw == nil {
		return nil, false, nil
	}
	if len(raw) < 8 {
		return nil, true, nil
	}
	return bytes.Clone(raw[8:]), true, nil
}

// maxKeyLen caps idempotency keys well under bbolt's 32 KiB key limit;
// outside ids are a few dozen bytes, so a longer one is bad input.
const maxKeyLen = 1024

func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return incident.Errorf(incident.EINVALID, "idempotency key too long (%d bytes)", len(key))
	}
	return nil
}

func (t *tx) PutKey(key string, value []byte, at time.Time) error {
	if err := t.writable(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("empty idempotency key")
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return t.b(bucketKeys).Put([]byte(key), concat(timeKey(at), value))
}

func docKey(kind, name string, v int) []byte {
	b := make([]byte, 0, len(kind)+len(name)+6)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func (t *tx) latestDoc(kind, name string) (int, []byte) {
	prefix := docKey(kind, name, 0)[:len(kind)+len(name)+2]
	c := t.b(bucketDocs).Cursor()
	k, v := c.Seek(docKey(kind, name, 1<<31))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+4 {
		return 0, nil
	}
	return int(binary.BigEndian.Uint32(k[len(prefix):])), v
}

func (t *tx) PutDoc(kind, name string, body []byte) (int, error) {
	if err := t.writable(); err != nil {
		return 0, err
	}
	v, _ := t.latestDoc(kind, name)
	v++
	return v, t.b(bucketDocs).Put(docKey(kind, name, v), body)
}

func (t *tx) Doc(kind, name string, v int) ([]byte, int, error) {
	if v <= 0 {
		latest, body := t.latestDoc(kind, name)
		if body == nil {
			return nil, 0, notFound("No %s %s.", kind, name)
		}
		return bytes.Clone(body), latest, nil
	}
	body := t.b(bucketDocs).Get(docKey(kind, name, v))
	if body == nil {
		return nil, 0, notFound("No %s %s version %d.", kind, name, v)
	}
	return bytes.Clone(body), v, nil
}
