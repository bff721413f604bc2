package etcdstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestImportSplitsCommitsAtTheLimit: documents that each fit in one commit
// but not together are imported in separate commits, not refused.
func TestImportSplitsCommitsAtTheLimit(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := c.Open("/split/", etcdstore.Options{MaxTxnBytes: 100_000, Importing: true})
	ctx := context.Background()
	docs := []incident.DocRecord{
		{Kind: "runbook-run", Name: "a", Version: 1, Body: bytes.Repeat([]byte("a"), 49_000)},
		{Kind: "runbook-run", Name: "b", Version: 1, Body: bytes.Repeat([]byte("b"), 60_000)},
		{Kind: "runbook-run", Name: "b", Version: 2, Body: []byte("small")},
	}
	err := s.Import(ctx, func(fn func(incident.Record) error) error {
		for i := range docs {
			if err := fn(incident.Record{Doc: &docs[i]}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx incident.Tx) error {
		for _, d := range docs {
			body, _, err := tx.Doc(d.Kind, d.Name, d.Version)
			if err != nil {
				return err
			}
			if !bytes.Equal(body, d.Body) {
				t.Errorf("%s %s v%d: %d bytes, want %d", d.Kind, d.Name, d.Version, len(body), len(d.Body))
			}
		}
		if _, v, err := tx.Doc("runbook-run", "b", 0); err != nil || v != 2 {
			t.Errorf("latest version of b: %d %v, want 2", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
