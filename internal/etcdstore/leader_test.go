package etcdstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// replica runs Lead on a store and reports its terms.
type replica struct {
	name    string
	elected chan etcdstore.Fence
	ended   chan etcdstore.Fence
	causes  chan error // context.Cause of each ended term
	active  *sync.Map  // replica name → in a term now
	t       *testing.T
}

func startReplica(t *testing.T, ctx context.Context, s *etcdstore.Store, name string, ttl time.Duration, active *sync.Map, wg *sync.WaitGroup) *replica {
	r := &replica{name: name, elected: make(chan etcdstore.Fence, 10), ended: make(chan etcdstore.Fence, 10), causes: make(chan error, 10), active: active, t: t}
	wg.Go(func() {
		_ = s.Lead(ctx, etcdstore.LeadConfig{Name: name, TTL: ttl}, func(ctx context.Context) error {
			f := fenceOf(ctx, s)
			// A replica's terms never overlap: it stops its work before
			// campaigning again. (Another replica may be elected a moment
			// before this one notices its lease is gone: the fence, not
			// timing, keeps that one's writes out.)
			if _, running := active.LoadOrStore(name, true); running {
				t.Errorf("%s elected again while its previous term still runs", name)
			}
			r.elected <- f
			<-ctx.Done()
			active.Delete(name)
			r.causes <- context.Cause(ctx)
			r.ended <- f
			return nil
		})
	})
	return r
}

// fenceOf reads the term's fence back: the election key this replica
// holds under the prefix.
func fenceOf(ctx context.Context, s *etcdstore.Store) etcdstore.Fence {
	resp, err := s.Client().Get(context.WithoutCancel(ctx), s.Prefix()+"leader/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return etcdstore.Fence{}
	}
	return etcdstore.Fence{Key: string(resp.Kvs[0].Key), Rev: resp.Kvs[0].CreateRevision}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestOneLeaderAndADeposedLeaderIsFenced: of two replicas one leads; when
// its session ends (its lease is revoked, as when it stops renewing) it
// stops its work before the other is elected, and a job write fenced on
// its old term fails and changes nothing, while the new leader's succeeds.
func TestOneLeaderAndADeposedLeaderIsFenced(t *testing.T) {
	c := etcdtest.Start(t, 1)
	sa := c.Open("/lead/", etcdstore.Options{})
	sb := c.Open("/lead/", etcdstore.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var active sync.Map
	a := startReplica(t, ctx, sa, "a", time.Second, &active, &wg)
	first := wait(t, a.elected, "a's election")

	var job incident.Job
	err := sa.Update(ctx, func(tx incident.Tx) error {
		job = incident.Job{Kind: "x", Due: time.Now()}
		return tx.Enqueue(&job)
	})
	if err != nil {
		t.Fatal(err)
	}
	b := startReplica(t, ctx, sb, "b", time.Second, &active, &wg)
	select {
	case <-b.elected:
		t.Fatal("b elected while a leads")
	case <-time.After(300 * time.Millisecond):
	}

	// a's session dies: revoke its lease.
	resp, err := c.Client().Get(ctx, first.Key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading a's election key: %v", err)
	}
	if _, err := c.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	wait(t, a.ended, "a's work to stop")
	// The term says why it ended, so the job runner aborts at once
	// instead of finishing jobs the next leader is about to run.
	if cause := <-a.causes; !errors.Is(cause, etcdstore.ErrLeadershipLost) {
		t.Errorf("a's term ended with cause %v, want ErrLeadershipLost", cause)
	}
	var second etcdstore.Fence
	select {
	case second = <-b.elected:
	case second = <-a.elected: // a may win the next term itself
	case <-time.After(15 * time.Second):
		t.Fatal("nobody took over")
	}
	if second.Rev == first.Rev {
		t.Fatal("the new term has the old fence")
	}

	// A write fenced on the old term is refused, as is a job completion.
	err = sa.Update(etcdstore.WithFence(ctx, first), func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: "from-the-deposed-leader", Due: time.Now()})
	})
	if !errors.Is(err, etcdstore.ErrDeposed) {
		t.Fatalf("write fenced on a past term: %v, want ErrDeposed", err)
	}
	if err := sa.Fenced(&first).CompleteJob(job.ID); !errors.Is(err, etcdstore.ErrDeposed) {
		t.Fatalf("completion fenced on a past term: %v, want ErrDeposed", err)
	}
	pending, _, _, _ := sb.JobStats()
	if pending != 1 {
		t.Fatalf("%d jobs pending after the deposed leader's writes, want 1 (untouched)", pending)
	}
	if err := sb.Fenced(&second).CompleteJob(job.ID); err != nil {
		t.Fatalf("the new leader's completion: %v", err)
	}
	if pending, _, _, _ = sb.JobStats(); pending != 0 {
		t.Fatalf("%d jobs pending after the new leader completed it", pending)
	}
}

// TestResignOnShutdownHandsOverAtOnce: a leader that stops (SIGTERM)
// resigns, so the next replica leads without waiting for the lease.
func TestResignOnShutdownHandsOverAtOnce(t *testing.T) {
	c := etcdtest.Start(t, 1)
	sa := c.Open("/resign/", etcdstore.Options{})
	sb := c.Open("/resign/", etcdstore.Options{})
	var wg sync.WaitGroup
	defer wg.Wait()
	var active sync.Map
	actx, stopA := context.WithCancel(context.Background())
	a := startReplica(t, actx, sa, "a", time.Minute, &active, &wg)
	wait(t, a.elected, "a's election")
	bctx, stopB := context.WithCancel(context.Background())
	defer stopB()
	bElected := make(chan struct{}, 1)
	wg.Go(func() {
		// Both leases last a minute: only a's resignation can make b
		// leader within the wait.
		_ = sb.Lead(bctx, etcdstore.LeadConfig{Name: "b", TTL: time.Minute}, func(ctx context.Context) error {
			bElected <- struct{}{}
			<-ctx.Done()
			return nil
		})
	})
	stopA()
	wait(t, a.ended, "a's work to stop")
	// Well inside b's one-minute lease: only the resignation explains it.
	wait(t, bElected, "b to take over after a resigned")
}

// TestWatchWakesOnAnotherReplicasEnqueue: a job enqueued through one
// replica wakes the watcher on another (no polling).
func TestWatchWakesOnAnotherReplicasEnqueue(t *testing.T) {
	c := etcdtest.Start(t, 1)
	leader := c.Open("/watch/", etcdstore.Options{})
	other := c.Open("/watch/", etcdstore.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		leader.WatchJobs(ctx, func() { woke <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	// The watch starts asynchronously: enqueue until a wake-up arrives, and
	// check that a later enqueue wakes it again.
	for range 2 {
		got := false
		for i := 0; i < 50 && !got; i++ {
			err := other.Update(ctx, func(tx incident.Tx) error {
				return tx.Enqueue(&incident.Job{Kind: "x", Due: time.Now()})
			})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-woke:
				got = true
			case <-time.After(100 * time.Millisecond):
			}
		}
		if !got {
			t.Fatal("no wake-up for another replica's enqueue")
		}
	}
}

// TestWritesOfALostTermFailAtOnce: a leader cut off from etcd loses its
// term when its lease lapses; from then on its fenced writes fail with
// ErrDeposed at once, even under context.WithoutCancel, instead of waiting
// on the etcd it cannot reach (which kept a cut-off leader's jobs, and so
// its leader work, from ever stopping).
func TestWritesOfALostTermFailAtOnce(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := c.Open("/lost/", etcdstore.Options{DialTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var active sync.Map
	a := startReplica(t, ctx, s, "a", time.Second, &active, &wg)
	fence := wait(t, a.elected, "a's election")
	c.Members[0].Stop()
	wait(t, a.ended, "a's term to end with etcd gone")
	if cause := <-a.causes; !errors.Is(cause, etcdstore.ErrLeadershipLost) {
		t.Fatalf("the term ended with cause %v, want ErrLeadershipLost", cause)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Update(context.WithoutCancel(etcdstore.WithFence(ctx, fence)), func(tx incident.Tx) error {
			return tx.Enqueue(&incident.Job{Kind: "from-the-lost-term", Due: time.Now()})
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, etcdstore.ErrDeposed) {
			t.Fatalf("a write of the lost term: %v, want ErrDeposed", err)
		}
	case <-time.After(10 * time.Second): // etcd is down: without the fix it waits for ever
		t.Fatal("a write of the lost term still waits on the unreachable etcd")
	}
	cancel()
	wg.Wait()
	// Restart the member so the cleanup's client closes promptly.
	c.Restart(c.Members[0])
}
