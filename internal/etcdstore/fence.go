package etcdstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fence conditions leader-only writes on the leader still holding its
// election: the election key Key must still exist with create revision Rev
// (concurrency.Election's Key and Rev). A deposed leader's key is deleted
// when its session's lease expires, and a new leader's key has a newer
// revision, so the comparison fails and the write changes nothing.
type Fence struct {
	Key string
	Rev int64
}

func (f *Fence) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)
}

// check tells a lost race from a lost leadership after a commit failed.
func (f *Fence) check(ctx context.Context, s *Store) error {
	ctx, cancel := s.rpcCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, f.Key)
	if err != nil {
		return fmt.Errorf("reading the election key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != f.Rev {
		return ErrDeposed
	}
	return nil
}

func (s *Store) expires(key string) bool {
	for _, p := range s.opts.ExpiringKeys {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// leaseRotation is how long one lease is shared by new redelivery keys:
// a key lives between KeyTTL and KeyTTL+leaseRotation. Sharing keeps the
// number of leases (each kept by every member) small.
const leaseRotation = time.Hour

// leaseCache hands out the lease redelivery keys are written with.
type leaseCache struct {
	s     *Store
	mu    sync.Mutex
	id    clientv3.LeaseID
	until time.Time
}

func (c *leaseCache) get(ctx context.Context) (clientv3.LeaseID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.s.now()
	if c.id != 0 && now.Before(c.until) {
		return c.id, nil
	}
	ttl := c.s.opts.KeyTTL + leaseRotation
	// Bounded like every request (rpcCtx): c.mu and the writer slot are
	// held meanwhile.
	ctx, cancel := c.s.rpcCtx(ctx)
	defer cancel()
	resp, err := c.s.cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return 0, fmt.Errorf("granting a lease for redelivery keys: %w", err)
	}
	c.id, c.until = resp.ID, now.Add(leaseRotation)
	return c.id, nil
}

// reset forgets a lease etcd no longer knows.
func (c *leaseCache) reset() {
	c.mu.Lock()
	c.id = 0
	c.mu.Unlock()
}

// terms tracks this replica's own leader terms, by fence revision, with a
// context that ends when the term is lost (its session ended): writes
// fenced on a lost term fail at once instead of waiting for etcd.
type terms struct {
	mu    sync.Mutex
	byRev map[int64]context.Context
}

// begin registers a term and returns the function that marks it lost.
func (ts *terms) begin(rev int64) context.CancelFunc {
	ctx, lose := context.WithCancel(context.Background())
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byRev == nil {
		ts.byRev = map[int64]context.Context{}
	}
	ts.byRev[rev] = ctx
	return lose
}

// end forgets a term that ended without being lost (it resigned).
func (ts *terms) end(rev int64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if c := ts.byRev[rev]; c != nil && c.Err() == nil {
		delete(ts.byRev, rev)
	}
}

// lost returns the context that ends when term rev is lost, or nil if rev
// is not a current or lost term of this replica.
func (ts *terms) lost(rev int64) context.Context {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.byRev[rev]
}
