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
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			problems = append(problems, err)
			if len(problems) >= 20 {
				break
			}
		}
		return nil
	})
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

// Restore replaces the database at dst with the backup at src after
// checking the backup. The bot must be stopped: if dst is held by another
// process Restore fails with ErrLocked and changes nothing. The old file is
// kept as dst + ".before-restore".
func Restore(src, dst string) (Stats, error) {
	st, err := CheckFile(src, time.Second)
	if err != nil {
		return st, fmt.Errorf("not restoring: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		// Take the lock to prove nobody is running on dst.
		held, err := Open(dst, Options{LockTimeout: time.Second})
		if err != nil {
			return st, fmt.Errorf("not restoring: %w", err)
		}
		defer held.Close()
		if err := copyFile(dst, dst+".before-restore"); err != nil {
			return st, fmt.Errorf("keeping the old database: %w", err)
		}
	}
	tmp := dst + ".restoring"
	if err := copyFile(src, tmp); err != nil {
		return st, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return st, fmt.Errorf("replacing %s: %w", dst, err)
	}
	return st, syncDir(filepath.Dir(dst))
}

// copyFile copies src to dst (mode 0600) and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
