package etcdstore

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNoBackup is returned by WriteBackup: in the replicated mode the state
// is etcd's, and etcd's own snapshot is the backup.
var ErrNoBackup = errors.New("in the etcd mode, back up the cluster with `etcdctl snapshot save` (see deploy/README.md)")

// Stats counts what the store holds, as boltstore.Stats does. SizeBytes is
// the etcd database size reported by the first endpoint.
type Stats struct {
	Incidents, Events, Jobs, DeadJobs int
	SizeBytes                         int64
	SchemaVersion                     int
}

// Check verifies that the store is reachable and holds a schema this code
// reads.
func (s *Store) Check() error {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.migrate(ctx)
}

// Stats counts incidents, events, jobs and dead letters.
func (s *Store) Stats() (Stats, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var st Stats
	count := func(pfx string) (int, error) {
		resp, err := s.cli.Get(ctx, s.p+pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		return int(resp.Count), nil
	}
	var err error
	for _, c := range []struct {
		pfx string
		n   *int
	}{{pfxIncident, &st.Incidents}, {pfxEvent, &st.Events}, {pfxJob, &st.Jobs}, {pfxDead, &st.DeadJobs}} {
		if *c.n, err = count(c.pfx); err != nil {
			return st, fmt.Errorf("counting %s: %w", c.pfx, err)
		}
	}
	resp, err := s.cli.Get(ctx, s.p+keySchema)
	if err != nil {
		return st, err
	}
	if len(resp.Kvs) > 0 {
		st.SchemaVersion, _ = strconv.Atoi(string(resp.Kvs[0].Value))
	}
	if eps := s.cli.Endpoints(); len(eps) > 0 {
		if status, err := s.cli.Status(ctx, eps[0]); err == nil {
			st.SizeBytes = status.DbSize
		}
	}
	return st, nil
}

// WriteBackup refuses: see ErrNoBackup.
func (s *Store) WriteBackup(io.Writer) (int64, error) { return 0, ErrNoBackup }
