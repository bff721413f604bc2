package boltstore

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneKeys deletes idempotency keys that start with one of prefixes and
// were recorded before cutoff, at most limit per call (so one call is one
// short write transaction); it returns how many it deleted. Only keys that
// guard against redelivery within a bounded window (webhook and event ids)
// should be pruned: PagerDuty retries for at most 48 hours and Slack within
// minutes, so a week's retention is ample.
func (s *Store) PruneKeys(prefixes []string, cutoff time.Time, limit int) (int, error) {
	deleted := 0
	err := s.update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketKeys)
		var doomed [][]byte
		for _, prefix := range prefixes {
			p := []byte(prefix)
			c := b.Cursor()
			for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && len(doomed) < limit; k, v = c.Next() {
				if len(v) >= 8 && int64(binary.BigEndian.Uint64(v[:8])) < cutoff.UnixNano() {
					doomed = append(doomed, bytes.Clone(k))
				}
			}
		}
		// Deleting while iterating can skip keys, so delete afterwards.
		deleted = len(doomed)
		return deleteKeys(b, doomed)
	})
	return deleted, err
}

// deleteKeys deletes keys from b.
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PruneDocs deletes documents of kind (every version) whose time, as at
// reads it from the body, is before cutoff, at most limit per call (one
// short write transaction), and returns how many it deleted. Documents are
// visited in name order and the walk stops at the first one that is not
// old enough, so kind's names must sort by time (runbook run ids are
// ULID-shaped: milliseconds first). A document whose time at cannot read
// is kept.
func (s *Store) PruneDocs(kind string, cutoff time.Time, limit int, at func(body []byte) (time.Time, bool)) (int, error) {
	deleted := 0
	err := s.update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketDocs)
		prefix := append([]byte(kind), 0)
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(doomed) < limit; k, v = c.Next() {
			t, ok := at(v)
			if !ok {
				continue
			}
			if !t.Before(cutoff) {
				break
			}
			doomed = append(doomed, bytes.Clone(k))
		}
		deleted = len(doomed)
		return deleteKeys(b, doomed)
	})
	return deleted, err
}
