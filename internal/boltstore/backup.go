package boltstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WriteBackup writes a consistent copy of the whole database to w from one
// read transaction: writers are not blocked while it runs, and the copy is
// the state of the last commit before it began. It returns the bytes written.
func (s *Store) WriteBackup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("writing backup: %w", err)
	}
	return n, nil
}

// Check verifies the consistency of the open database (bbolt's page-level
// check) and that its schema is one this code reads. It returns every
// problem found, joined.
func (s *Store) Check() error {
	var problems []error
	var damage error
	err := s.db.View(func(tx *bolt.Tx) error {
		// bbolt's check panics, in a goroutine of its own, on an overwritten
		// page: walk the transaction's pages safely first.
		if err := s.verifyLive(uint64(tx.ID())); err != nil {
			damage = err
			return nil
		}
		// Drained to the end: bbolt's checking goroutine reads the
		// transaction until it has sent everything.
		for err := range tx.Check() {
			if len(problems) < 20 {
				problems = append(problems, err)
			}
		}
		return nil
	})
	if damage != nil {
		return damage // reading on would trip bbolt's assertions
	}
	if err != nil {
		problems = append(problems, err)
	}
	if err := s.checkVersion(); err != nil {
		problems = append(problems, err)
	}
	if err := s.checkBuckets(); err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// verifyLive runs verifyPages on the open file for read transaction txid,
// whose pages stay as they are while it is open.
func (s *Store) verifyLive(txid uint64) error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := verifyPages(f, fi.Size(), s.path, txid); !errors.Is(err, errMetaGone) {
		return err
	}
	return nil // rewritten by two commits since the transaction began: rare; bbolt's check still runs
}

func (s *Store) checkBuckets() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s is missing", b)
			}
		}
		return nil
	})
}

// Stats summarises a database for operators.
type Stats struct {
	Incidents, Events, Jobs, DeadJobs int
	SizeBytes                         int64
	SchemaVersion                     int
}

// Stats counts what the database holds.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Incidents = tx.Bucket(bucketIncidents).Stats().KeyN
		st.Events = tx.Bucket(bucketEvents).Stats().KeyN
		st.Jobs = tx.Bucket(bucketJobs).Stats().KeyN
		st.DeadJobs = tx.Bucket(bucketJobsDead).Stats().KeyN
		st.SizeBytes = tx.Size()
		return nil
	})
	if err != nil {
		return st, err
	}
	st.SchemaVersion, err = s.SchemaVersion()
	return st, err
}

// CheckFile opens the database file at path read-only (waiting at most
// lockTimeout for a writer's lock) and checks it.
func CheckFile(path string, lockTimeout time.Duration) (Stats, error) {
	s, err := Open(path, Options{ReadOnly: true, LockTimeout: lockTimeout})
	if err != nil {
		return Stats{}, err
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		return Stats{}, fmt.Errorf("%s is damaged: %w", path, err)
	}
	return s.Stats()
}

// Restored says what Restore did.
type Restored struct {
	// Stats are the restored database's.
	Stats Stats
	// Previous is where the file that was at dst is kept ("" if there was
	// none).
	Previous string
}

// Restore replaces the database at dst with the backup at src after
// checking the backup. The bot must be stopped: if a process holds dst,
// Restore fails with ErrLocked and changes nothing.
//
// dst itself is never opened as a database: the lock is taken as bbolt
// takes it, without reading a page, so a damaged file, or one a newer
// version upgraded, can be replaced (that is when a restore is needed). The
// file that was at dst is copied first to a new file named
// dst.before-restore-<UTC time> (never overwriting an earlier one), and
// the backup is copied next to dst and renamed over it, so dst is always
// either the old file or the whole backup.
func Restore(src, dst string, now time.Time) (Restored, error) {
	st, err := CheckFile(src, time.Second)
	if err != nil {
		return Restored{}, fmt.Errorf("not restoring: the backup %s does not check out: %w", src, err)
	}
	out := Restored{Stats: st}
	old, err := os.Open(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return out, err
		}
	case err != nil:
		return out, fmt.Errorf("not restoring: %w", err)
	default:
		defer old.Close() // releases the lock once dst is replaced
		if err := lockFile(old, true, time.Second); errors.Is(err, errLockTimeout) {
			return out, fmt.Errorf("not restoring: %w", lockedError(dst))
		} else if err != nil {
			return out, fmt.Errorf("not restoring: locking %s: %w", dst, err)
		}
		if out.Previous, err = keepPrevious(old, dst, now); err != nil {
			return out, fmt.Errorf("not restoring: keeping the current database: %w", err)
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return out, err
	}
	defer in.Close()
	tmp, err := createCopy(in, filepath.Dir(dst), "."+filepath.Base(dst)+".restoring-*")
	if err != nil {
		return out, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return out, fmt.Errorf("replacing %s: %w", dst, err)
	}
	return out, syncDir(filepath.Dir(dst))
}

// keepPrevious copies the file being replaced to a new file named after
// dst and the time, with a counter if that name is taken.
func keepPrevious(old *os.File, dst string, now time.Time) (string, error) {
	base := dst + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) && i < 1000 {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := writeAll(f, old); err != nil {
			_ = os.Remove(name)
			return "", fmt.Errorf("copying %s to %s: %w", dst, name, err)
		}
		return name, nil
	}
}

// createCopy copies r to a new temporary file (mode 0600, created
// exclusively) in dir and returns its name.
func createCopy(r io.Reader, dir, pattern string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	if err := writeAll(f, r); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// writeAll copies r to f, fsyncs and closes f.
func writeAll(f *os.File, r io.Reader) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
