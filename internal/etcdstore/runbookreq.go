package etcdstore

import (
	"encoding/json"
	"fmt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Runbook requests live under rbreq/. Expiry is the deadline in the record
// (incident.RunbookRequest.Waiting), checked by whoever reads it, not a
// lease: an expired request must still be found, claimed once by the
// replica that tells the channel it expired, and kept for a while so a
// late click is answered; the engine's sweep deletes ended ones.

func (t *tx) RunbookRequest(id string) (*incident.RunbookRequest, error) {
	raw, ok, err := t.get(pfxRunbookReq + id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("Run %s is unknown.", id)
	}
	var r incident.RunbookRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding runbook request %s: %w", id, err)
	}
	return &r, nil
}

// PutRunbookRequest is a compare-and-swap on the record's revision; the
// commit's own condition (nothing committed since the snapshot this read)
// makes the read and the write one step across replicas.
func (t *tx) PutRunbookRequest(r *incident.RunbookRequest) error {
	if err := t.check(); err != nil {
		return err
	}
	cur, err := t.RunbookRequest(r.ID)
	next, err := incident.NextRunbookRequest(r, cur, err)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding runbook request %s: %w", r.ID, err)
	}
	t.put(pfxRunbookReq+r.ID, raw)
	r.Rev = next.Rev
	return nil
}

func (t *tx) DeleteRunbookRequest(id string) error {
	if err := t.check(); err != nil {
		return err
	}
	t.del(pfxRunbookReq + id)
	return nil
}

func (t *tx) RunbookRequests() ([]incident.RunbookRequest, error) {
	entries, err := t.scan(pfxRunbookReq, prefixEnd(pfxRunbookReq), false)
	if err != nil {
		return nil, err
	}
	out := make([]incident.RunbookRequest, 0, len(entries))
	for _, e := range entries {
		var r incident.RunbookRequest
		if err := json.Unmarshal(e.value, &r); err != nil {
			return nil, fmt.Errorf("decoding runbook request %s: %w", e.key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
