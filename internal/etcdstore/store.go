// Package etcdstore implements incident.Store, the durable job queue and the
// idempotency keys on etcd, for the replicated mode (BOT_STORE=etcd): every
// replica reads and writes the same keys, and each commit is applied by a
// quorum of etcd members before Update returns.
//
// Transactions are optimistic and serializable. A transaction reads a
// snapshot (one revision of the keyspace) and buffers its writes; the commit
// is one etcd Txn that applies them only if the prefix's commit marker has
// not changed since the snapshot, and moves the marker. A commit that loses
// that race (another replica committed meanwhile) runs the function again on
// a fresh snapshot, so, as with incident.Batcher, a function may run more
// than once and must set its results from scratch. Writers of one replica
// take turns on a mutex, so only another replica can make a function run
// again.
//
// etcd's limits (https://etcd.io/docs/v3.6/dev-guide/limit/): a request is
// at most 1.5 MiB by default (--max-request-bytes) and the database at most
// 2 GiB (--quota-backend-bytes); a Txn holds at most 128 operations by
// default (--max-txn-ops, https://etcd.io/docs/v3.6/op-guide/configuration/).
// A value over 256 KiB (a stored webhook body, a runbook run, a postmortem)
// is written as chunks in requests of their own and referred to by the
// commit (blob.go), so it is stored whole whatever its size. A commit that
// would still exceed Options.MaxTxnBytes or Options.MaxTxnOps fails with an
// EINVALID error naming the limit instead of an opaque gRPC error, and
// writes nothing. Redelivery keys (Options.ExpiringKeys) are written
// with a lease, so etcd deletes them when they expire and no pruning scan
// is needed.
package etcdstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// SchemaVersion is the key layout this code reads and writes.
const SchemaVersion = 2

// Defaults for Options.
const (
	DefaultPrefix      = "/incident-bot/"
	DefaultMaxTxnBytes = 1 << 20 // leaves headroom under etcd's 1.5 MiB request limit
	DefaultMaxTxnOps   = 128     // etcd's default --max-txn-ops
)

// ErrDeposed is returned by a fenced write (see Fence) when the replica is
// no longer the leader: its election key is gone or was replaced.
var ErrDeposed = errors.New("this replica is no longer the leader")

var errReadOnlyTxWrite = errors.New("write in a read-only transaction")

// Options configure Open.
type Options struct {
	Endpoints []string
	// Prefix is prepended to every key (default DefaultPrefix), so several
	// bots, or a bot and other tenants, can share one etcd cluster.
	Prefix             string
	TLS                *tls.Config // nil: plain gRPC
	Username, Password string
	// DialTimeout bounds connecting and the first read (default 5s).
	DialTimeout time.Duration
	// ExpiringKeys are the idempotency-key prefixes that only guard against
	// redelivery for KeyTTL; PutKey writes them with a lease.
	ExpiringKeys []string
	KeyTTL       time.Duration
	// MaxTxnBytes and MaxTxnOps cap one commit (defaults DefaultMaxTxnBytes,
	// DefaultMaxTxnOps); set them to what the cluster allows.
	MaxTxnBytes, MaxTxnOps int
	// Logger receives the etcd client's own logs (default: none).
	Logger *zap.Logger
	// Importing opens a keyspace that an interrupted `bot migrate` left
	// marked as incomplete, to migrate into it again.
	Importing bool
	// Now tells the time for rotating the redelivery keys' lease (default
	// time.Now).
	Now func() time.Time
}

// Store is the etcd-backed store. It is safe for concurrent use.
type Store struct {
	cli       *clientv3.Client
	ownClient bool
	opts      Options
	p         string // the prefix
	endpoints string

	// writer admits one writer of this replica at a time. It is a channel,
	// not a mutex, so a writer whose context ends while another holds it
	// (a job aborted when leadership is lost, while etcd is unreachable)
	// gives up instead of queueing behind it.
	writer    chan struct{}
	onEnqueue func()
	leases    leaseCache
	terms     terms
}

var _ incident.Store = (*Store)(nil)
var _ incident.Batcher = (*Store)(nil)

// Open connects to etcd and checks (or, on an empty prefix, writes) the
// schema version.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	cli, err := clientv3.New(clientv3.Config{
		Logger:      opts.Logger.Named("etcd-client"),
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		// Keep the connection checked so a dead member is noticed and the
		// client moves to another endpoint.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	s, err := New(ctx, cli, opts)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	s.ownClient = true
	return s, nil
}

// New is Open on a client the caller owns (Close leaves it open).
func New(ctx context.Context, cli *clientv3.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxTxnBytes <= 0 {
		opts.MaxTxnBytes = DefaultMaxTxnBytes
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{cli: cli, opts: opts, p: opts.Prefix, endpoints: strings.Join(cli.Endpoints(), ","), writer: make(chan struct{}, 1)}
	s.leases.s = s
	cctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if err := s.migrate(cctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	if !s.opts.Importing {
		m, err := s.cli.Get(ctx, s.p+keyMigrating, clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("cannot reach etcd at %s: %w", s.endpoints, err)
		}
		if m.Count > 0 {
			return fmt.Errorf("etcd prefix %s holds an unfinished `bot migrate`: run it again (with --force) before serving from it", s.p)
		}
	}
	key := s.p + keySchema
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.Itoa(SchemaVersion))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("cannot reach etcd at %s: %w", s.endpoints, err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return fmt.Errorf("etcd prefix %s: schema version vanished", s.p)
	}
	v, err := strconv.Atoi(string(kvs[0].Value))
	if err != nil {
		return fmt.Errorf("etcd prefix %s: not an incident-bot keyspace (schema %q)", s.p, kvs[0].Value)
	}
	if v > SchemaVersion {
		return fmt.Errorf("etcd prefix %s holds schema %d, newer than this bot supports (%d); run the newer version", s.p, v, SchemaVersion)
	}
	if v < 1 {
		return fmt.Errorf("etcd prefix %s: not an incident-bot keyspace (schema %d)", s.p, v)
	}
	// An upgrade reads every incident: more than the time allowed to
	// connect.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	for ; v < SchemaVersion; v++ {
		if err := upgrades[v-1](s, ctx); err != nil {
			return fmt.Errorf("upgrading etcd prefix %s from schema %d to %d: %w", s.p, v, v+1, err)
		}
		// Moved only after the step, and only from v: a step stopped
		// half-way (a crash, a lost connection) runs again at the next
		// start, and replicas starting together both finish it.
		_, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", strconv.Itoa(v))).
			Then(clientv3.OpPut(key, strconv.Itoa(v+1))).Commit()
		if err != nil {
			return fmt.Errorf("recording etcd prefix %s's schema %d: %w", s.p, v+1, err)
		}
	}
	return nil
}

// upgrades[i] brings a keyspace from schema i+1 to i+2. Each can run again
// over its own partial result.
var upgrades = []func(s *Store, ctx context.Context) error{
	(*Store).pagerIndexBySystem,
}

// pagerIndexBySystem (schema 1 to 2) rekeys the pager index from the pager's
// incident id alone to its system and id (incident.PagerIndexKey), so one
// pager's id never finds another pager's incident: it is written anew from
// the incidents' pager links, and the old entries (no ':') are deleted, in
// commits of at most MaxTxnOps that move the commit marker, so a replica's
// transaction that read the old index starts over.
func (s *Store) pagerIndexBySystem(ctx context.Context) error {
	var ops []clientv3.Op
	flush := func(force bool) error {
		if len(ops) == 0 || (!force && len(ops) < s.opts.MaxTxnOps-1) {
			return nil
		}
		ops = append(ops, clientv3.OpPut(s.p+keyCommit, ""))
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	incs, err := s.cli.Get(ctx, s.p+pfxIncident, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	for _, kv := range incs.Kvs {
		var rec struct {
			Number int64             `json:"number"`
			Pager  incident.PagerRef `json:"pager"`
		}
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		if k := rec.Pager.IndexKey(); k != "" {
			ops = append(ops, clientv3.OpPut(s.p+pfxByPager+k, num(rec.Number)))
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	idx, err := s.cli.Get(ctx, s.p+pfxByPager, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	for _, kv := range idx.Kvs {
		if !strings.Contains(strings.TrimPrefix(string(kv.Key), s.p+pfxByPager), ":") {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	return flush(true)
}

func (s *Store) now() time.Time { return s.opts.Now() }

// Client is the etcd client, for the leader election on the same cluster.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the key prefix.
func (s *Store) Prefix() string { return s.p }

// Path names the store in messages: its endpoints and prefix.
func (s *Store) Path() string { return "etcd " + s.endpoints + " " + s.p }

// Close revokes nothing (leased keys must outlive the process) and closes
// the client if Open made it.
func (s *Store) Close() error {
	if s.ownClient {
		return s.cli.Close()
	}
	return nil
}

// OnEnqueue sets a function called after every commit of this replica that
// enqueued a job. Set it before concurrent use. (Jobs enqueued by other
// replicas are seen with WatchJobs.)
func (s *Store) OnEnqueue(fn func()) { s.onEnqueue = fn }

// View implements incident.Store: fn reads one snapshot.
func (s *Store) View(ctx context.Context, fn func(incident.Tx) error) (err error) {
	ctx, done := s.bindTerm(ctx, fenceFrom(ctx), &err)
	defer done()
	t, err := s.begin(ctx, false)
	if err != nil {
		return err
	}
	return fn(t)
}

// bindTerm ends ctx when the leader term of fence (one of this replica's
// own) is lost, even if ctx was made with context.WithoutCancel: the
// term's work, reads included, stops waiting on an etcd it cannot reach,
// and its writes could only be refused. done, deferred, releases the
// binding and turns *err into ErrDeposed if the term was lost.
func (s *Store) bindTerm(ctx context.Context, fence *Fence, err *error) (context.Context, func()) {
	if fence == nil {
		return ctx, func() {}
	}
	lost := s.terms.lost(fence.Rev)
	if lost == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(lost, cancel)
	return ctx, func() {
		stop()
		cancel()
		if lost.Err() != nil && *err != nil {
			*err = ErrDeposed
		}
	}
}

// rpcCtx bounds one request to etcd (two dial timeouts, 10 s by default)
// whatever ctx allows: a request stuck on one member (seen after members
// restarted, the request sent and never answered) fails, and the caller's
// retry goes out again instead of holding a job worker, or the writer
// slot, for ever. A commit that timed out may have been applied; every
// caller treats it as an unknown outcome already (a job runs again, a
// webhook is answered 5xx and redelivered, and both are idempotent).
func (s *Store) rpcCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*s.opts.DialTimeout)
}

// lockWriter waits for this replica's writer slot, or for ctx to end.
func (s *Store) lockWriter(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWriter() { <-s.writer }

// Update implements incident.Store. It returns once a quorum applied the
// commit. fn may run again if another replica committed first (see the
// package doc).
func (s *Store) Update(ctx context.Context, fn func(incident.Tx) error) error {
	return s.update(ctx, nil, fn)
}

// Batch implements incident.Batcher. Concurrent callers of a replica commit
// one after another; a function that fails or panics affects only its own
// caller.
func (s *Store) Batch(ctx context.Context, fn func(incident.Tx) error) error {
	return s.update(ctx, nil, fn)
}

// update runs fn and commits its writes, with fence's comparison added to
// the commit's conditions; without a fence, the one in ctx (WithFence), if
// any.
func (s *Store) update(ctx context.Context, fence *Fence, fn func(incident.Tx) error) (err error) {
	if fence == nil {
		fence = fenceFrom(ctx)
	}
	if fence != nil {
		if lost := s.terms.lost(fence.Rev); lost != nil && lost.Err() != nil {
			return ErrDeposed // the term is over: refused without asking etcd
		}
	}
	ctx, done := s.bindTerm(ctx, fence, &err)
	defer done()
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	for {
		t, err := s.begin(ctx, true)
		if err != nil {
			return err
		}
		if err := safely(fn, t); err != nil {
			return err
		}
		if len(t.writes) == 0 {
			return nil
		}
		ok, err := s.commit(ctx, t, fence)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.leases.reset() // the shared lease expired or was revoked: grant another
			continue
		}
		if err != nil {
			return err
		}
		if ok {
			if t.enqueued && s.onEnqueue != nil {
				s.onEnqueue()
			}
			return nil
		}
	}
}

// safely calls fn, turning a panic into an error so that a bug in one
// write fails that write, not the process.
func safely(fn func(incident.Tx) error, t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w in a store transaction: %v\n%s", incident.ErrPanicked, p, debug.Stack())
		}
	}()
	return fn(t)
}

// begin starts a transaction on the current revision. Reading the commit
// marker with a linearizable read both pins the snapshot and gives the
// commit its condition.
func (s *Store) begin(ctx context.Context, writable bool) (*tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rctx, cancel := s.rpcCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.p+keyCommit)
	if err != nil {
		return nil, fmt.Errorf("reading etcd: %w", err)
	}
	t := &tx{s: s, ctx: ctx, rev: resp.Header.Revision, writable: writable}
	if len(resp.Kvs) > 0 {
		t.marker = resp.Kvs[0].ModRevision
	}
	if writable {
		t.writes = map[string]*write{}
	}
	return t, nil
}

// commit applies t's writes if nothing committed since t's snapshot (and
// fence, if set, still holds). It reports false when it lost that race.
func (s *Store) commit(ctx context.Context, t *tx, fence *Fence) (bool, error) {
	if len(t.writes)+1 > s.opts.MaxTxnOps {
		return false, incident.Errorf(incident.EINVALID, "This change is too large for the store: %d writes in one commit, etcd allows %d (--max-txn-ops).", len(t.writes), s.opts.MaxTxnOps)
	}
	ops := make([]clientv3.Op, 0, len(t.writes)+1)
	size := 0
	for k, w := range t.writes {
		size += len(k) + len(w.value)
		switch {
		case w.keep:
			ops = append(ops, clientv3.OpPut(k, "", clientv3.WithIgnoreValue()))
		case w.deleted && w.rangeEnd != "":
			ops = append(ops, clientv3.OpDelete(k, clientv3.WithRange(w.rangeEnd)))
		case w.deleted:
			ops = append(ops, clientv3.OpDelete(k))
		case w.lease != 0:
			ops = append(ops, clientv3.OpPut(k, string(w.value), clientv3.WithLease(w.lease)))
		default:
			ops = append(ops, clientv3.OpPut(k, string(w.value)))
		}
	}
	if size > s.opts.MaxTxnBytes {
		return false, incident.Errorf(incident.EINVALID, "This change is too large for the store: %d bytes in one commit, the limit is %d (etcd's request limit).", size, s.opts.MaxTxnBytes)
	}
	ops = append(ops, clientv3.OpPut(s.p+keyCommit, ""))
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.p+keyCommit), "=", t.marker)}
	if fence != nil {
		cmps = append(cmps, fence.cmp())
	}
	rctx, cancel := s.rpcCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("committing to etcd: %w", err)
	}
	if resp.Succeeded {
		return true, nil
	}
	if fence != nil {
		if err := fence.check(ctx, s); err != nil {
			return false, err
		}
	}
	return false, nil
}

// Writable reports whether the store can commit (readiness): it writes a
// probe key through a quorum. A replica cut off from etcd's quorum, or a
// cluster out of space (etcd raises a NOSPACE alarm and refuses writes),
// is not ready.
func (s *Store) Writable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.p+keyProbe, ""); err != nil {
		return fmt.Errorf("etcd cannot commit: %w", err)
	}
	return nil
}
