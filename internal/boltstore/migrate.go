package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// neutralSources upgrades schema 1 to 2, when the domain stopped speaking
// PagerDuty (alert sources became neutral, see incident/pager.go):
//
//   - the pager use cases' idempotency keys are renamed: "pd:applied:<event>"
//     to "applied:pagerduty:<event>", "pd:last:<pager incident>" to
//     "last:pagerduty:<pager incident>", "pd:pages:INC-n" to "pages:INC-n";
//     their values and stamps are kept, so a PagerDuty event applied before
//     the upgrade is still not applied twice and page numbers go on;
//   - every incident linked to a pager gets the pager's system and name
//     ("pagerduty", "PagerDuty"): PagerDuty was the only pager then.
//
// Timeline events keep their keys ("pd:<event id>"): they only guard
// against recording an event twice, and an event applied before the
// upgrade is stopped by its applied key before its events are recorded.
// The keys the PagerDuty adapter owns ("pd:webhook:", "pd:event:") are
// its own business and stay.
func neutralSources(tx *bolt.Tx) error {
	keys := tx.Bucket(bucketKeys)
	renames := []struct{ from, to string }{
		{"pd:applied:", "applied:pagerduty:"},
		{"pd:last:", "last:pagerduty:"},
		{"pd:pages:", "pages:"},
	}
	for _, r := range renames {
		var old [][]byte
		c := keys.Cursor()
		for k, _ := c.Seek([]byte(r.from)); k != nil && bytes.HasPrefix(k, []byte(r.from)); k, _ = c.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			v := bytes.Clone(keys.Get(k))
			if err := keys.Put(append([]byte(r.to), k[len(r.from):]...), v); err != nil {
				return fmt.Errorf("renaming key %q: %w", k, err)
			}
			if err := keys.Delete(k); err != nil {
				return err
			}
		}
	}
	incidents := tx.Bucket(bucketIncidents)
	type update struct{ k, v []byte }
	var updates []update
	err := incidents.ForEach(func(k, v []byte) error {
		// Only the "pager" object is touched; every other field is kept
		// byte for byte, known to this version or not.
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decoding incident %d: %w", int64(binary.BigEndian.Uint64(k)), err)
		}
		raw, ok := rec["pager"]
		if !ok {
			return nil
		}
		var pager map[string]json.RawMessage
		if err := json.Unmarshal(raw, &pager); err != nil {
			return fmt.Errorf("decoding incident %d's pager link: %w", int64(binary.BigEndian.Uint64(k)), err)
		}
		if _, ok := pager["system"]; ok {
			return nil
		}
		if _, id := pager["incident_id"]; !id {
			if _, dedup := pager["dedup_key"]; !dedup {
				return nil
			}
		}
		pager["system"], pager["system_name"] = json.RawMessage(`"pagerduty"`), json.RawMessage(`"PagerDuty"`)
		var err error
		if rec["pager"], err = json.Marshal(pager); err != nil {
			return err
		}
		nv, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		updates = append(updates, update{bytes.Clone(k), nv})
		return nil
	})
	if err != nil {
		return err
	}
	for _, u := range updates {
		if err := incidents.Put(u.k, u.v); err != nil {
			return err
		}
	}
	return nil
}

// pagerIndexBySystem upgrades schema 2 to 3: the pager index (idx_pager)
// was keyed by the pager's incident id alone, so an id of one pager could
// find an incident linked to another pager's. It is rebuilt keyed by
// system and id (incident.PagerIndexKey) from the incidents' pager links,
// which schema 2 gave their system.
func pagerIndexBySystem(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketByPager); err != nil {
		return fmt.Errorf("dropping the old pager index: %w", err)
	}
	idx, err := tx.CreateBucket(bucketByPager)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketIncidents).ForEach(func(k, v []byte) error {
		var rec struct {
			Pager incident.PagerRef `json:"pager"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decoding incident %d: %w", int64(binary.BigEndian.Uint64(k)), err)
		}
		if key := rec.Pager.IndexKey(); key != "" {
			return idx.Put([]byte(key), bytes.Clone(k))
		}
		return nil
	})
}
