package etcdstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestUpgradePagerIndexBySystem: a keyspace of schema 1, whose pager index
// was keyed by the pager's incident id alone ("idx/pager/Q7" → number), is
// rekeyed by system and id when a replica of this version opens it, in
// commits smaller than MaxTxnOps: every PagerDuty link is found again, an
// id of another pager finds nothing, and no old entry is left.
func TestUpgradePagerIndexBySystem(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	const prefix, linked = "/old/", 40
	s := c.Open(prefix, etcdstore.Options{})
	for i := 1; i <= linked+5; i++ {
		err := s.Update(ctx, func(tx incident.Tx) error {
			n, err := tx.NextIncidentNumber()
			if err != nil {
				return err
			}
			inc := &incident.Incident{Number: n, Title: "x", Status: incident.StatusTriggered, DeclaredAt: time.Now()}
			if i <= linked {
				inc.Pager = incident.PagerRef{System: "pagerduty", SystemName: "PagerDuty", IncidentID: fmt.Sprintf("Q%d", n)}
			}
			return tx.PutIncident(inc)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	// Put the index back as schema 1 wrote it.
	cli := c.Client()
	if _, err := cli.Delete(ctx, prefix+"idx/pager/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= linked; n++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("%sidx/pager/Q%d", prefix, n), fmt.Sprintf("%016x", n)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, prefix+"meta/schema", "1"); err != nil {
		t.Fatal(err)
	}

	s = c.Open(prefix, etcdstore.Options{MaxTxnOps: 16})
	st, err := s.Stats()
	if err != nil || st.SchemaVersion != etcdstore.SchemaVersion {
		t.Fatalf("schema after the upgrade: %+v, %v", st, err)
	}
	err = s.View(ctx, func(tx incident.Tx) error {
		for n := int64(1); n <= linked; n++ {
			if inc, err := tx.IncidentByPager(incident.SourcePagerDuty, fmt.Sprintf("Q%d", n)); err != nil || inc.Number != n {
				t.Errorf("PagerDuty's Q%d: %v, %v", n, inc, err)
			}
		}
		if _, err := tx.IncidentByPager("opsgenie", "Q1"); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("another pager's Q1: %v, want not found", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, prefix+"idx/pager/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != linked {
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		t.Errorf("pager index holds %d entries, want %d: %q", len(resp.Kvs), linked, keys)
	}
}
