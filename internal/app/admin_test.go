package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// TestBackupNeverFollowsOrReusesPlantedFiles: `bot backup X` writes a new
// file of its own whatever is planted around X, from the file and through
// the running bot alike: a symlink at X.partial is not followed (its
// target is untouched), a file planted at X.partial does not lend X its
// mode, and an existing X is replaced only with --force.
func TestBackupNeverFollowsOrReusesPlantedFiles(t *testing.T) {
	clock := &pmClock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	for _, serving := range []bool{false, true} {
		name := "from the file"
		if serving {
			name = "through the running bot"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := pmConfig(t, dir, nil)
			a := pmOpen(t, cfg, clock, nil)
			if _, err := a.Service().Declare(context.Background(), incident.Declaration{Title: "Checkout is down", By: pmAlice}); err != nil {
				t.Fatal(err)
			}
			if serving {
				pmServe(t, a)
			} else if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			cli := AdminCLI(cfg)
			ctx := context.Background()

			// A symlink planted at X.partial pointing at a precious file.
			precious := filepath.Join(dir, "precious")
			if err := os.WriteFile(precious, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			x := filepath.Join(dir, "backup.db")
			if err := os.Symlink(precious, x+".partial"); err != nil {
				t.Fatal(err)
			}
			st, err := cli.Backup(ctx, x, admin.BackupOptions{})
			if err != nil || st.Incidents != 1 {
				t.Fatalf("backup: %+v, %v", st, err)
			}
			if raw, _ := os.ReadFile(precious); string(raw) != "keep me" {
				t.Fatalf("the symlink's target was overwritten (%d bytes)", len(raw))
			}
			assertPrivateBackup(t, x)

			// A file planted at Y.partial, world-readable.
			y := filepath.Join(dir, "backup2.db")
			if err := os.WriteFile(y+".partial", []byte("planted"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(y+".partial", 0o666); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Backup(ctx, y, admin.BackupOptions{}); err != nil {
				t.Fatal(err)
			}
			assertPrivateBackup(t, y)

			// An existing destination: refused, unchanged; replaced with --force.
			z := filepath.Join(dir, "existing.db")
			if err := os.WriteFile(z, []byte("an older backup"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Backup(ctx, z, admin.BackupOptions{}); !errors.Is(err, admin.ErrExists) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("backup over an existing file: %v, want ErrExists mentioning --force", err)
			}
			if raw, _ := os.ReadFile(z); string(raw) != "an older backup" {
				t.Fatal("the refused backup changed the existing file")
			}
			if _, err := cli.Backup(ctx, z, admin.BackupOptions{Force: true}); err != nil {
				t.Fatalf("backup --force: %v", err)
			}
			assertPrivateBackup(t, z)
			if left, _ := filepath.Glob(filepath.Join(dir, ".*.partial-*")); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// assertPrivateBackup checks that path is a regular file, mode 0600, that
// holds a consistent database.
func assertPrivateBackup(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a regular file with 0600", path, fi.Mode())
	}
	if _, err := boltstore.CheckFile(path, time.Second); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}
