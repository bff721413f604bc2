package boltstore_test

import (
	"bytes"
	"testing"

	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestWritableFollowsCommits: while commits fail (a full disk) the store
// says it cannot commit; once there is room again it says so by itself,
// without another write from anyone.
func TestWritableFollowsCommits(t *testing.T) {
	s := bolttest.Open(t)
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("a new store is not writable: %v", err)
	}
	free := bolttest.DiskFull(t, s.Path())
	big := bytes.Repeat([]byte("x"), 4<<20) // a webhook body's worth of new pages
	if err := s.Update(ctx, func(tx incident.Tx) error { return tx.PutKey("big", big, t0) }); err == nil {
		t.Fatal("a write that grows the file succeeded on a full disk")
	}
	err := s.Writable(ctx)
	if err == nil {
		t.Fatal("the store says it is writable after a commit failed for lack of space")
	}
	t.Logf("while full: %v", err)
	free()
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("the store did not recover once there was room: %v", err)
	}
	if err := s.Update(ctx, func(tx incident.Tx) error { return tx.PutKey("big", big, t0) }); err != nil {
		t.Fatalf("the write failed after the disk was freed: %v", err)
	}
	// A write that failed for its own reasons is not a sign of a bad disk.
	if err := s.Update(ctx, func(tx incident.Tx) error { return incident.Errorf(incident.ECONFLICT, "refused") }); err == nil {
		t.Fatal("a refused write succeeded")
	}
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("a write that refused itself made the store unwritable: %v", err)
	}
}
