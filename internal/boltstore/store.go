// Package boltstore implements incident.Store, the durable job queue and the
// idempotency keys on a single bbolt file.
//
// Every commit is fsynced (NoSync is never set). The file is held with an
// exclusive lock; a second opener fails after Options.LockTimeout with
// ErrLocked instead of hanging. Values returned to callers are decoded
// copies, never slices into the memory map.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// SchemaVersion is the layout this code reads and writes. Open migrates older
// files forward and refuses newer ones.
const SchemaVersion = 3

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("database is locked by another process")

var (
	bucketMeta         = []byte("meta")
	bucketIncidents    = []byte("incidents")
	bucketByChannel    = []byte("idx_channel")
	bucketByPager      = []byte("idx_pager")
	bucketOpen         = []byte("idx_open")
	bucketByDeclared   = []byte("idx_declared")
	bucketEvents       = []byte("events")
	bucketEventKeys    = []byte("event_keys")
	bucketKeys         = []byte("keys")
	bucketJobs         = []byte("jobs")
	bucketJobsDue      = []byte("jobs_due")
	bucketJobsByKey    = []byte("jobs_key")
	bucketJobsDead     = []byte("jobs_dead")
	bucketDocs         = []byte("docs")
	keySchemaVersion   = []byte("schema_version")
	allBuckets         = [][]byte{bucketMeta, bucketIncidents, bucketByChannel, bucketByPager, bucketOpen, bucketByDeclared, bucketEvents, bucketEventKeys, bucketKeys, bucketJobs, bucketJobsDue, bucketJobsByKey, bucketJobsDead, bucketDocs}
	errReadOnlyTxWrite = errors.New("write in a read-only transaction")
)

// Options configure Open.
type Options struct {
	// LockTimeout bounds the wait for another process's lock (default 1s).
	LockTimeout time.Duration
	// ReadOnly opens the file with a shared lock for inspection.
	ReadOnly bool
}

// Store is the bbolt-backed store. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	group     *groupCommit
	path      string
	onEnqueue func()
}

var _ incident.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and migrates it to
// SchemaVersion.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating database directory: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	if err := preflight(path, opts); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, lockedError(path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	s := &Store{db: db, path: path, group: &groupCommit{db: db}}
	if !opts.ReadOnly {
		if err := s.migrate(); err != nil {
			_ = db.Close()
			return nil, err
		}
	} else if err := s.checkVersion(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// preflight verifies an existing database file before bbolt opens it (see
// verifyFile), under a shared lock so that no writer changes it meanwhile.
// A file that does not exist yet is left for bbolt to create.
func preflight(path string, opts Options) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !opts.ReadOnly {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening database %s: %w", path, err)
	}
	defer f.Close() // releases the lock
	if err := lockFile(f, false, opts.LockTimeout); errors.Is(err, errLockTimeout) {
		return lockedError(path)
	} else if err != nil {
		return fmt.Errorf("locking database %s: %w", path, err)
	}
	return verifyFile(f, path)
}

func lockedError(path string) error {
	return fmt.Errorf("%w: %s (is `bot serve` running on it? stop it, or use the running bot)", ErrLocked, path)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the file, waiting for open transactions.
func (s *Store) Close() error { return s.db.Close() }

// migrations[i] upgrades a file from schema i to i+1. Version 0 is an empty
// file.
var migrations = []func(tx *bolt.Tx) error{
	func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	neutralSources,
	pagerIndexBySystem,
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := 0
		if raw := meta.Get(keySchemaVersion); raw != nil {
			v = int(binary.BigEndian.Uint64(raw))
		}
		if v > SchemaVersion {
			return fmt.Errorf("database schema %d is newer than this bot supports (%d); run the newer version or restore a backup", v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrating database schema %d to %d: %w", v, v+1, err)
			}
		}
		return meta.Put(keySchemaVersion, u64(uint64(SchemaVersion)))
	})
}

func (s *Store) checkVersion() error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("not an incident-bot database (no meta bucket)")
		}
		raw := meta.Get(keySchemaVersion)
		if raw == nil || int(binary.BigEndian.Uint64(raw)) > SchemaVersion {
			return fmt.Errorf("database schema is missing or newer than this bot supports (%d)", SchemaVersion)
		}
		return nil
	})
}

// SchemaVersion returns the schema version recorded in the file.
func (s *Store) SchemaVersion() (int, error) {
	v := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketMeta).Get(keySchemaVersion); raw != nil {
			v = int(binary.BigEndian.Uint64(raw))
		}
		return nil
	})
	return v, err
}

// OnEnqueue sets a function called after every commit that enqueued a job
// (the job runner's Notify). Set it before concurrent use.
func (s *Store) OnEnqueue(fn func()) { s.onEnqueue = fn }

func (s *Store) committed(t *tx) {
	if t.enqueued && s.onEnqueue != nil {
		s.onEnqueue()
	}
}

// View implements incident.Store.
func (s *Store) View(ctx context.Context, fn func(incident.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(btx *bolt.Tx) error { return fn(&tx{tx: btx}) })
}

// Update implements incident.Store. The commit is fsynced before it returns.
func (s *Store) Update(ctx context.Context, fn func(incident.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &tx{}
	err := s.update(func(btx *bolt.Tx) error {
		*t = tx{tx: btx}
		return fn(t)
	})
	if err == nil {
		s.committed(t)
	}
	return err
}

// Batch is Update for many concurrent callers: their functions share
// commits (and fsyncs) without waiting on a timer (see groupCommit). fn may
// run more than once, so it must only change the store through tx. It
// returns once the commit is durable.
func (s *Store) Batch(ctx context.Context, fn func(incident.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	enqueued := false
	err := s.group.do(func(btx *bolt.Tx) error {
		t := &tx{tx: btx}
		err := fn(t)
		if t.enqueued {
			enqueued = true
		}
		return err
	})
	if err == nil && enqueued && s.onEnqueue != nil {
		s.onEnqueue()
	}
	return err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func i64key(v int64) []byte { return u64(uint64(v)) }

// timeKey orders times; times before 1970 sort as 1970.
func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return u64(uint64(n))
}

func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

func notFound(format string, args ...any) error {
	return incident.Errorf(incident.ENOTFOUND, format, args...)
}
