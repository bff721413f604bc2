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
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		deleted = len(doomed)
		return nil
	})
	return deleted, err
}
