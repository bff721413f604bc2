package boltstore

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// bucketRunbookRequests holds runbook requests (run id → JSON). It is made
// on the first write rather than by a schema migration, so a file that
// never held one still opens in an older bot (a rollback stays possible),
// and a missing bucket reads as empty.
var bucketRunbookRequests = []byte("runbook_requests")

func (t *tx) runbookRequest(id string) (*incident.RunbookRequest, error) {
	b := t.b(bucketRunbookRequests)
	var raw []byte
	if b != nil {
		raw = b.Get([]byte(id))
	}
	if raw == nil {
		return nil, notFound("Run %s is unknown.", id)
	}
	var r incident.RunbookRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding runbook request %s: %w", id, err)
	}
	return &r, nil
}

func (t *tx) RunbookRequest(id string) (*incident.RunbookRequest, error) {
	return t.runbookRequest(id)
}

func (t *tx) PutRunbookRequest(r *incident.RunbookRequest) error {
	if err := t.writable(); err != nil {
		return err
	}
	// bbolt has one writer at a time, so this read and the write below
	// are one atomic step.
	cur, err := t.runbookRequest(r.ID)
	next, err := incident.NextRunbookRequest(r, cur, err)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding runbook request %s: %w", r.ID, err)
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketRunbookRequests)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(r.ID), raw); err != nil {
		return err
	}
	r.Rev = next.Rev
	return nil
}

func (t *tx) DeleteRunbookRequest(id string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if b := t.b(bucketRunbookRequests); b != nil {
		return b.Delete([]byte(id))
	}
	return nil
}

func (t *tx) RunbookRequests() ([]incident.RunbookRequest, error) {
	var out []incident.RunbookRequest
	b := t.b(bucketRunbookRequests)
	if b == nil {
		return nil, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var r incident.RunbookRequest
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decoding runbook request %s: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// dropRunbookRequests empties the bucket (Import replaces everything).
func dropRunbookRequests(btx *bolt.Tx) error {
	if btx.Bucket(bucketRunbookRequests) == nil {
		return nil
	}
	return btx.DeleteBucket(bucketRunbookRequests)
}
