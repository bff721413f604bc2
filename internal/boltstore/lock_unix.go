//go:build unix

package boltstore

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a held lock is tried again (bbolt polls every 50ms).
const lockPoll = 50 * time.Millisecond

// errLockTimeout: another process held the lock for the whole timeout.
var errLockTimeout = errors.New("lock timeout")

// lockFile takes the lock bbolt takes on a database file (flock: shared
// for readers, exclusive for the writer, see go.etcd.io/bbolt bolt_unix.go
// flock) on f, without reading the file. It waits at most timeout.
// Closing f releases it.
func lockFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH | syscall.LOCK_NB
	if exclusive {
		how = syscall.LOCK_EX | syscall.LOCK_NB
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errLockTimeout
		}
		// The lock belongs to another process; there is nothing to wait on
		// but time (bbolt does the same).
		time.Sleep(lockPoll)
	}
}
