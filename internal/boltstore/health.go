package boltstore

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// keyWriteProbe is the meta key Writable's probe commit writes.
var keyWriteProbe = []byte("write_probe")

// writeProbeSize is how much Writable's probe writes: the largest single
// write the bot makes (a stored PagerDuty webhook of up to 2 MB). A tiny
// probe would fit in the file's free pages and pass while every write that
// needs the file to grow still fails.
const writeProbeSize = 2 << 20

// commitHealth remembers that a commit failed (a full disk or an I/O error,
// not a function that refused its own write) until Writable's probe proves
// a large write commits again. Small commits succeeding meanwhile do not
// clear it: they may fit in the file's free pages while a stored webhook
// does not.
type commitHealth struct {
	mu  sync.Mutex
	err error
	// probing is held while a probe commit runs, so a crowd of readiness
	// checks makes one probe at a time, not a queue of fsyncs.
	probing sync.Mutex
}

// update runs fn in db.Update and records it if the commit itself failed.
// An error fn returned says nothing about the disk and is not recorded.
func (h *commitHealth) update(db *bolt.DB, fn func(*bolt.Tx) error) error {
	var fnErr error
	err := db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		h.set(err)
	}
	return err
}

func (h *commitHealth) set(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

func (h *commitHealth) last() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// update is db.Update with the commit's outcome recorded for Writable.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.group.health.update(s.db, fn)
}

// Writable reports whether the store can commit (readiness). It is nil
// until a commit fails. After a commit failed (a full disk, an I/O error)
// it tries a large write of its own each time it is asked, one at a time,
// so the store reports itself writable again as soon as such a write
// commits, even if nothing else writes meanwhile. The probe is deleted at
// once; the pages it used stay free in the file for the next writes.
func (s *Store) Writable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := &s.group.health
	if h.last() == nil {
		return nil
	}
	if !h.probing.TryLock() {
		return fmt.Errorf("the database cannot commit: %w", h.last())
	}
	defer h.probing.Unlock()
	probe := make([]byte, writeProbeSize)
	err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyWriteProbe, probe) })
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyWriteProbe) })
	}
	if err != nil {
		return fmt.Errorf("the database cannot commit: %w", err)
	}
	h.set(nil)
	return nil
}
