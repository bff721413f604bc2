package etcdstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/storetest"
)

// TestContract runs the store contract every implementation passes against
// one embedded etcd member; each test gets its own key prefix.
func TestContract(t *testing.T) {
	c := etcdtest.Start(t, 1)
	var n atomic.Int64
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) storetest.Store {
			return c.Open(fmt.Sprintf("/t%d/", n.Add(1)), etcdstore.Options{})
		},
		Reopen: func(t *testing.T, s storetest.Store) storetest.Store {
			prefix := s.(*etcdstore.Store).Prefix()
			_ = s.(*etcdstore.Store).Close()
			return c.Open(prefix, etcdstore.Options{})
		},
		Peer: func(t *testing.T, s storetest.Store) storetest.Store {
			return c.Open(s.(*etcdstore.Store).Prefix(), etcdstore.Options{})
		},
	})
}

// TestTwoReplicasShareOneStore: two stores on the same prefix (two
// replicas) writing at once never lose or duplicate a write: a commit that
// loses the race runs again on fresh data.
func TestTwoReplicasShareOneStore(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := c.Open("/shared/", etcdstore.Options{})
	b := c.Open("/shared/", etcdstore.Options{})
	const each = 30
	var wg sync.WaitGroup
	for r, s := range []*etcdstore.Store{a, b, a, b} {
		wg.Go(func() {
			for i := range each {
				err := s.Update(context.Background(), func(tx incident.Tx) error {
					n, err := tx.NextIncidentNumber()
					if err != nil {
						return err
					}
					if err := tx.PutKey(fmt.Sprintf("r%d-%d", r, i), nil, time.Now()); err != nil {
						return err
					}
					return tx.PutIncident(&incident.Incident{Number: n, Title: "x", Status: incident.StatusTriggered, DeclaredAt: time.Now()})
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = b.View(context.Background(), func(tx incident.Tx) error {
		all, _ := tx.Incidents(incident.Filter{})
		if len(all) != 4*each || all[len(all)-1].Number != 4*each {
			t.Errorf("%d incidents, want %d numbered 1..%d", len(all), 4*each, 4*each)
		}
		return nil
	})
}

// TestRedeliveryKeysExpireWithALease: redelivery keys carry a lease of the
// retention (etcd deletes them, no pruning scan); keys that carry state do
// not.
func TestRedeliveryKeysExpireWithALease(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := c.Open("/leases/", etcdstore.Options{ExpiringKeys: []string{"pd:webhook:"}, KeyTTL: 7 * 24 * time.Hour})
	err := s.Update(context.Background(), func(tx incident.Tx) error {
		if err := tx.PutKey("pd:webhook:1", nil, time.Now()); err != nil {
			return err
		}
		return tx.PutKey("declare:slack-view:V1", []byte("1"), time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	cli := c.Client()
	ctx := context.Background()
	lease := func(key string) int64 {
		resp, err := cli.Get(ctx, "/leases/key/"+key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading %s: %v", key, err)
		}
		return resp.Kvs[0].Lease
	}
	id := lease("pd:webhook:1")
	if id == 0 {
		t.Fatal("a redelivery key has no lease")
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(id))
	if err != nil {
		t.Fatal(err)
	}
	if week := int64(7 * 24 * 3600); ttl.TTL < week || ttl.TTL > week+3600 {
		t.Errorf("lease TTL %ds, want between 7d and 7d+1h", ttl.TTL)
	}
	if lease("declare:slack-view:V1") != 0 {
		t.Error("a key that carries state has a lease")
	}
	// When the lease ends, the key is gone and the delivery would be
	// accepted again.
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		t.Fatal(err)
	}
	_ = s.View(ctx, func(tx incident.Tx) error {
		if _, ok, _ := tx.Key("pd:webhook:1"); ok {
			t.Error("the key outlived its lease")
		}
		return nil
	})
	// A later key gets a new lease instead of failing on the revoked one.
	if err := s.Update(ctx, func(tx incident.Tx) error { return tx.PutKey("pd:webhook:2", nil, time.Now()) }); err != nil {
		t.Fatalf("writing after the lease was revoked: %v", err)
	}
}

// TestOversizedCommitIsRefusedClearly: a commit larger than etcd accepts
// (many values, each small enough to be stored in place) fails with an
// EINVALID error naming the limit and writes nothing.
func TestOversizedCommitIsRefusedClearly(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := c.Open("/big/", etcdstore.Options{})
	ctx := context.Background()
	err := s.Update(ctx, func(tx incident.Tx) error {
		if err := tx.PutKey("small", []byte("x"), time.Now()); err != nil {
			return err
		}
		for i := range 5 {
			if _, err := tx.PutDoc("runbook-run", fmt.Sprintf("R%d", i), make([]byte, etcdstore.DefaultMaxTxnBytes/4)); err != nil {
				return err
			}
		}
		return nil
	})
	if incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized commit: %v", err)
	}
	err = s.Update(ctx, func(tx incident.Tx) error {
		for i := range etcdstore.DefaultMaxTxnOps {
			if err := tx.PutKey(fmt.Sprintf("k%d", i), nil, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(err.Error(), "max-txn-ops") {
		t.Fatalf("commit with too many writes: %v", err)
	}
	_ = s.View(ctx, func(tx incident.Tx) error {
		if _, ok, _ := tx.Key("small"); ok {
			t.Error("part of a refused commit was written")
		}
		return nil
	})
}

// TestLargeValuesLeaveNoChunksBehind: a large value's chunks are kept by
// the commit that refers to them and deleted with it; the chunks of a
// transaction that failed carry the staging lease, so etcd deletes them.
func TestLargeValuesLeaveNoChunksBehind(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := c.Open("/chunks/", etcdstore.Options{})
	ctx := context.Background()
	body := make([]byte, 3<<20)
	blobs := func() (n int, leased int) {
		resp, err := s.Client().Get(ctx, "/chunks/blob/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if kv.Lease != 0 {
				leased++
			}
		}
		return len(resp.Kvs), leased
	}
	if err := s.Update(ctx, func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: "big", Due: time.Now(), Payload: body})
	}); err != nil {
		t.Fatal(err)
	}
	if n, leased := blobs(); n == 0 || leased != 0 {
		t.Fatalf("after the commit: %d chunks, %d still on the staging lease", n, leased)
	}
	jobs, _ := s.DueJobs(time.Now(), 10, nil)
	if err := s.CompleteJob(jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := blobs(); n != 0 {
		t.Fatalf("%d chunks left after the job completed", n)
	}
	errRefused := fmt.Errorf("refused")
	if err := s.Update(ctx, func(tx incident.Tx) error {
		if err := tx.Enqueue(&incident.Job{Kind: "big", Due: time.Now(), Payload: body}); err != nil {
			return err
		}
		return errRefused
	}); err != errRefused {
		t.Fatal(err)
	}
	if n, leased := blobs(); n != leased || n == 0 {
		t.Fatalf("a failed transaction left %d chunks, %d of them leased (want all)", n, leased)
	}
}
