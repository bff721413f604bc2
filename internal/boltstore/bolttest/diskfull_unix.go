//go:build linux || darwin || freebsd

package bolttest

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

var diskFullMu sync.Mutex

// DiskFull makes writes that would grow any file of this process beyond the
// current size of path, or 1 MiB if that is more, fail as on a full disk
// (RLIMIT_FSIZE: the write fails with EFBIG instead of raising SIGXFSZ,
// which is ignored meanwhile). The 1 MiB leave room for the small files the
// test binary itself writes (go test's test log): a store then cannot grow
// past it, so a write of a megabyte fails.
// It returns a function that frees the "disk" again; that also runs when
// the test ends. The limit is process-wide: tests that use it must not run
// in parallel with tests that grow files.
func DiskFull(t testing.TB, path string) (free func()) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	diskFullMu.Lock()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		diskFullMu.Unlock()
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	limit := old
	limit.Cur = uint64(max(fi.Size(), 1<<20))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		signal.Reset(syscall.SIGXFSZ)
		diskFullMu.Unlock()
		t.Fatal(err)
	}
	var once sync.Once
	free = func() {
		once.Do(func() {
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Errorf("restoring the file size limit: %v", err)
			}
			signal.Reset(syscall.SIGXFSZ)
			diskFullMu.Unlock()
		})
	}
	t.Cleanup(free)
	return free
}
