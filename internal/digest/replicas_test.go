package digest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
)

// TestEnqueueWeekOnceAcrossReplicas: replicas on one etcd racing to queue
// the same week's digest (a leadership change overlapping a schedule
// tick) agree on one winner. The etcd store runs a transaction again when
// another replica committed first; EnqueueWeek must then report what the
// last run did, not what a lost run did.
func TestEnqueueWeekOnceAcrossReplicas(t *testing.T) {
	c := etcdtest.Start(t, 1)
	stores := []*etcdstore.Store{c.Open("/digest/", etcdstore.Options{}), c.Open("/digest/", etcdstore.Options{}), c.Open("/digest/", etcdstore.Options{})}
	now := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	w := digest.WeekOf(now)
	for round := range 12 {
		w = w.Prev()
		var winners atomic.Int64
		var wg sync.WaitGroup
		for i := range 9 {
			s := stores[i%len(stores)]
			wg.Go(func() {
				queued, err := digest.EnqueueWeek(context.Background(), s, w, "CDIGEST", now)
				if err != nil {
					t.Error(err)
				}
				if queued {
					winners.Add(1)
				}
			})
		}
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d replicas report they queued the digest of %s, want 1", round, n, w)
		}
	}
	jobs, err := stores[0].DueJobs(now, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 { // one key: the others wait behind the first
		t.Fatalf("%d runnable digest jobs", len(jobs))
	}
	pending, _, _, _ := stores[0].JobStats()
	if pending != 12 {
		t.Fatalf("%d digest jobs queued for 12 weeks", pending)
	}
}
