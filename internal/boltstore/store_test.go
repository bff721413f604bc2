package boltstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/storetest"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
)

func update(t *testing.T, s *boltstore.Store, fn func(tx incident.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

// TestContract runs the store contract every implementation passes.
func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) storetest.Store { return bolttest.Open(t) },
		Reopen: func(t *testing.T, s storetest.Store) storetest.Store {
			path := s.(*boltstore.Store).Path()
			_ = s.(*boltstore.Store).Close()
			return bolttest.OpenAt(t, path)
		},
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(); v != boltstore.SchemaVersion {
		t.Fatalf("schema %d", v)
	}
	_ = s.Close()
	db, _ := bolt.Open(path, 0o600, nil)
	_ = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte{0, 0, 0, 0, 0, 0, 0, 99})
	})
	_ = db.Close()
	if _, err := boltstore.Open(path, boltstore.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

// TestHeldFileFailsFast opens the database in a second process and checks
// that this process's Open fails quickly with ErrLocked instead of hanging.
func TestHeldFileFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), "BOLTSTORE_HOLD="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("helper said %q", line)
	}
	begin := time.Now()
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second opener: %v, want ErrLocked naming the file", err)
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Fatalf("waited %s for the lock", waited)
	}
	// Once the other process lets go, the file opens.
	_ = stdin.Close()
	_ = cmd.Wait()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	_ = s.Close()
}

// TestHelperHoldDatabase is not a test: TestHeldFileFailsFast runs it in a
// child process to hold the database until its stdin closes.
func TestHelperHoldDatabase(t *testing.T) {
	path := os.Getenv("BOLTSTORE_HOLD")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = s.Close()
	os.Exit(0)
}

func TestPruneKeysRemovesOnlyOldKeysOfTheGivenKinds(t *testing.T) {
	s := bolttest.Open(t)
	old, fresh := t0.Add(-8*24*time.Hour), t0
	update(t, s, func(tx incident.Tx) error {
		for i := range 5 {
			_ = tx.PutKey(fmt.Sprintf("pd:webhook:old%d", i), nil, old)
			_ = tx.PutKey(fmt.Sprintf("slack-event:T1:old%d", i), nil, old)
		}
		_ = tx.PutKey("pd:webhook:fresh", nil, fresh)
		_ = tx.PutKey("declare:slack-view:V1", []byte("1"), old) // permanent kind
		return nil
	})
	total := 0
	for {
		n, err := s.PruneKeys([]string{"pd:webhook:", "slack-event:"}, t0.Add(-7*24*time.Hour), 3)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 10 {
		t.Fatalf("pruned %d keys, want 10", total)
	}
	_ = s.View(ctx, func(tx incident.Tx) error {
		for _, k := range []string{"pd:webhook:fresh", "declare:slack-view:V1"} {
			if _, ok, _ := tx.Key(k); !ok {
				t.Errorf("%s was pruned", k)
			}
		}
		return nil
	})
}
