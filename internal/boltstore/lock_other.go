//go:build !unix

package boltstore

import (
	"errors"
	"os"
	"time"
)

var errLockTimeout = errors.New("lock timeout")

// lockFile is a no-op where flock does not exist: the bot is built and
// supported for Unix systems; elsewhere bbolt's own lock still guards Open,
// but Restore cannot prove the file is free.
func lockFile(*os.File, bool, time.Duration) error { return nil }
