// Package bolttest opens real bbolt stores in a test's temporary directory.
package bolttest

import (
	"path/filepath"
	"testing"

	"github.com/incidentbot/incident-bot/internal/boltstore"
)

// Open opens a new store in t.TempDir() and closes it when the test ends.
func Open(t testing.TB) *boltstore.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "bot.db"))
}

// OpenAt opens the store at path and closes it when the test ends (closing
// twice is harmless).
func OpenAt(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("opening store %s: %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
