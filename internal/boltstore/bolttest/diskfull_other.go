//go:build !(linux || darwin || freebsd)

package bolttest

import "testing"

// DiskFull needs RLIMIT_FSIZE; where there is none the test is skipped.
func DiskFull(t testing.TB, path string) (free func()) {
	t.Helper()
	t.Skip("emulating a full disk needs RLIMIT_FSIZE")
	return func() {}
}
