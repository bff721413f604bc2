//go:build unix

package boltstore

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only for verifyFile: walking a large
// file's pages through the page cache without a read call and a copy per
// page (bbolt maps it the same way).
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
