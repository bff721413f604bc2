package etcdstore

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// LeadConfig configures Lead.
type LeadConfig struct {
	// Name identifies this replica in the election key's value (the
	// hostname: the pod name in Kubernetes).
	Name string
	// TTL is the session lease: how long a dead leader keeps its
	// leadership before another replica takes over (default 10s).
	TTL    time.Duration
	Logger *zap.Logger
	// Elected, if set, is called each time this replica becomes leader,
	// with the term's fence (tests and metrics).
	Elected func(Fence)
}

// leaderPrefix is the election's key prefix, under the store's prefix.
const leaderPrefix = "leader/"

// ErrLeadershipLost is the cause (context.Cause) of a term's context that
// ended because the leader's session did (etcd unreachable past the TTL,
// or the process stalled), as opposed to Lead's context ending. Another
// replica may lead already: the term's writes are fenced, and whatever else
// it started (calls to Slack or PagerDuty) must stop at once rather than be
// given time to finish, or the new leader could repeat them meanwhile.
var ErrLeadershipLost = errors.New("leadership lost: the leader's etcd session ended")

type fenceKey struct{}

// WithFence returns a context whose writes through this package's stores
// are fenced on f (see Fence): once the term ends they fail with
// ErrDeposed and change nothing.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, &f)
}

func fenceFrom(ctx context.Context) *Fence {
	f, _ := ctx.Value(fenceKey{}).(*Fence)
	return f
}

// Lead campaigns for leadership of the store's prefix and, each time this
// replica wins, runs work with a context that ends when the term ends (its
// session's lease lapsed: etcd unreachable, or the process stalled past the
// TTL; the context's cause is then ErrLeadershipLost) and that fences every
// store write made with it. work must stop
// everything it started and return when its context ends; only then does
// Lead campaign again, so two terms of one replica never overlap. Lead
// returns when ctx ends, resigning so that another replica takes over at
// once instead of after the TTL.
func (s *Store) Lead(ctx context.Context, cfg LeadConfig, work func(ctx context.Context) error) error {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	log := cfg.Logger.Named("leader")
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
		}
		err := s.term(ctx, cfg, log, work)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("leadership lost or not won; campaigning again", zap.Error(err))
		}
		// A short pause so a flapping etcd connection is not hammered.
		retry.Reset(time.Second)
	}
}

// term runs one campaign and, if won, one term of work.
func (s *Store) term(ctx context.Context, cfg LeadConfig, log *zap.Logger, work func(ctx context.Context) error) error {
	ttl := max(int(cfg.TTL/time.Second), 1)
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close() // revokes the lease: the election key goes with it
	el := concurrency.NewElection(sess, s.p+leaderPrefix)
	// Campaign until elected, or until the session dies while waiting.
	cctx, stopCampaign := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
		case <-cctx.Done():
		}
		stopCampaign()
	}()
	err = el.Campaign(cctx, cfg.Name)
	stopCampaign()
	if err != nil {
		return err
	}
	fence := Fence{Key: el.Key(), Rev: el.Rev()}
	log.Info("elected leader", zap.String("key", fence.Key), zap.Int64("revision", fence.Rev))
	if cfg.Elected != nil {
		cfg.Elected(fence)
	}
	lose := s.terms.begin(fence.Rev)
	tctx, endTerm := context.WithCancelCause(WithFence(ctx, fence))
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-sess.Done():
			if ctx.Err() != nil {
				// Lead is stopping: the session ends with its context.
				endTerm(nil)
				return
			}
			log.Warn("leader session ended; stopping leader work")
			lose()
			endTerm(ErrLeadershipLost)
		case <-tctx.Done():
		}
	}()
	err = work(tctx)
	endTerm(nil)
	<-watchDone
	s.terms.end(fence.Rev)
	if errors.Is(context.Cause(tctx), ErrLeadershipLost) {
		// The lease is gone, and the election key with it; etcd may be
		// unreachable, so do not wait on a resignation.
	} else {
		// Resign so a follower takes over now.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if rerr := el.Resign(rctx); rerr != nil && !errors.Is(rerr, context.DeadlineExceeded) {
			log.Debug("resigning", zap.Error(rerr))
		}
	}
	log.Info("leader work stopped")
	return err
}

// WatchJobs calls fn whenever any replica enqueues or reschedules a job,
// until ctx ends: the leader's job runner wakes on it instead of polling.
// After a broken watch it calls fn once (a wake-up may have been missed)
// and watches again.
func (s *Store) WatchJobs(ctx context.Context, fn func()) {
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.p+pfxJobDue, clientv3.WithPrefix(), clientv3.WithFilterDelete())
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) > 0 {
				fn()
			}
		}
		fn()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // do not spin while etcd is away
		}
	}
}
