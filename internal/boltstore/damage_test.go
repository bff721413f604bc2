package boltstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// seedDB makes a database with n incidents, each with a description of
// some length and a note, and closes it.
func seedDB(t *testing.T, path string, n int) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := incident.NewService(incident.ServiceConfig{Store: s})
	by := incident.Actor{ID: "U1", Name: "alice", Source: incident.SourceSlack}
	for i := range n {
		desc := strings.Repeat(fmt.Sprintf("line %d of a long description. ", i), 1+i%80)
		inc, err := svc.Declare(context.Background(), incident.Declaration{Title: fmt.Sprintf("incident %d", i), Description: desc, By: by})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AddNote(context.Background(), incident.Ref{Number: inc.Number}, "a note", by); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// damage is one way a file gets damaged.
type damage struct {
	name string
	do   func(t *testing.T, path string, size int64)
}

func overwrite(t *testing.T, path string, off, n int64, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

var damages = []damage{
	{"truncated to half", func(t *testing.T, p string, size int64) { truncate(t, p, size/2) }},
	{"truncated to one page", func(t *testing.T, p string, size int64) { truncate(t, p, 4096) }},
	{"zero bytes", func(t *testing.T, p string, size int64) { truncate(t, p, 0) }},
	{"pages in the middle overwritten", func(t *testing.T, p string, size int64) { overwrite(t, p, 2*4096, size/2, 1) }},
	{"every page after the metas overwritten", func(t *testing.T, p string, size int64) { overwrite(t, p, 2*4096, size-2*4096, 2) }},
	{"both meta pages overwritten", func(t *testing.T, p string, size int64) { overwrite(t, p, 0, 2*4096, 3) }},
	{"not a database", func(t *testing.T, p string, size int64) {
		if err := os.WriteFile(p, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}},
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedFilesAreClearErrors: opening (for the bot or read-only for
// the CLI) and checking a damaged file is an error that names the file and
// says to restore a backup: never a panic (bbolt's assertions fire in its
// own goroutines and would kill the process) and never a silent fresh
// database in place of a zero-byte file.
func TestDamagedFilesAreClearErrors(t *testing.T) {
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bot.db")
			seedDB(t, path, 60)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			d.do(t, path, fi.Size())
			before, _ := os.ReadFile(path)

			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: no error for a damaged file", what)
				}
				if !errors.Is(err, boltstore.ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bot restore") {
					t.Errorf("%s: %v; want ErrDamaged naming %s and saying to restore a backup", what, err, path)
				}
			}
			s, err := boltstore.Open(path, boltstore.Options{})
			if err == nil {
				s.Close()
			}
			check("Open", err)
			s, err = boltstore.Open(path, boltstore.Options{ReadOnly: true})
			if err == nil {
				s.Close()
			}
			check("Open read-only", err)
			_, err = boltstore.CheckFile(path, time.Second)
			check("CheckFile", err)
			other := filepath.Join(filepath.Dir(path), "other.db")
			_, err = boltstore.Restore(path, other, time.Now())
			check("Restore from it", err)
			if _, err := os.Stat(other); !os.IsNotExist(err) {
				t.Errorf("a damaged backup was restored: %v", err)
			}

			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("the damaged file was changed (%d bytes, was %d): the evidence is gone", len(after), len(before))
			}
		})
	}
}

// TestHealthyFilesPassVerification: files of many shapes (empty, small,
// deep trees, values spanning pages, inline and nested buckets, free
// pages after deletes, a synced freelist) open and check, seeded.
func TestHealthyFilesPassVerification(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()

	empty := filepath.Join(dir, "empty.db")
	seedDB(t, empty, 0)
	seeded := filepath.Join(dir, "seeded.db")
	seedDB(t, seeded, 300)
	paths := []string{empty, seeded}

	// Raw bbolt files with random buckets, nested buckets and values, and
	// deletes, written both with and without a synced freelist.
	for i, noFreelistSync := range []bool{true, false, true} {
		p := filepath.Join(dir, fmt.Sprintf("raw-%d.db", i))
		db, err := bolt.Open(p, 0o600, &bolt.Options{NoFreelistSync: noFreelistSync})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte(fmt.Sprintf("b%d", r.IntN(5))))
				if err != nil {
					return err
				}
				for range r.IntN(200) {
					k := binary.BigEndian.AppendUint32(nil, r.Uint32()%5000)
					switch r.IntN(10) {
					case 0:
						if _, err := b.CreateBucketIfNotExists(append([]byte("nested-"), k...)); err != nil && !errors.Is(err, bolt.ErrIncompatibleValue) {
							return err
						}
					case 1, 2:
						if err := b.Delete(k); err != nil && !errors.Is(err, bolt.ErrIncompatibleValue) {
							return err
						}
					default:
						if err := b.Put(k, bytes.Repeat([]byte{byte(r.Uint32())}, r.IntN(3)*r.IntN(6000)+1)); err != nil && !errors.Is(err, bolt.ErrIncompatibleValue) {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, p := range paths[:2] {
		if _, err := boltstore.CheckFile(p, time.Second); err != nil {
			t.Errorf("seed %d: %s: %v", seed, filepath.Base(p), err)
		}
		s, err := boltstore.Open(p, boltstore.Options{})
		if err != nil {
			t.Errorf("seed %d: opening %s: %v", seed, filepath.Base(p), err)
			continue
		}
		s.Close()
	}
	// The raw files are not incident-bot databases (no schema): they must
	// pass the page verification and fail only on the schema.
	for _, p := range paths[2:] {
		_, err := boltstore.CheckFile(p, time.Second)
		if err == nil || errors.Is(err, boltstore.ErrDamaged) || !strings.Contains(err.Error(), "not an incident-bot database") {
			t.Errorf("seed %d: %s: %v; want only 'not an incident-bot database'", seed, filepath.Base(p), err)
		}
	}
}

// TestRestoreKeepsEveryPreviousDatabase: each restore keeps the file it
// replaces under a new name and says which; a second restore (even within
// the same second) never overwrites what the first kept.
func TestRestoreKeepsEveryPreviousDatabase(t *testing.T) {
	dir := t.TempDir()
	db, backup := filepath.Join(dir, "bot.db"), filepath.Join(dir, "backup.db")
	seedDB(t, db, 1)
	seedDB(t, backup, 2)
	original, _ := os.ReadFile(db)
	now := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)

	first, err := boltstore.Restore(backup, db, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := db + ".before-restore-20261202T030405Z"; first.Previous != want || first.Stats.Incidents != 2 {
		t.Fatalf("first restore: %+v, want the previous file kept as %s", first, want)
	}
	second, err := boltstore.Restore(backup, db, now)
	if err != nil {
		t.Fatal(err)
	}
	if second.Previous == "" || second.Previous == first.Previous {
		t.Fatalf("second restore kept the previous file as %q, the first as %q", second.Previous, first.Previous)
	}
	if kept, _ := os.ReadFile(first.Previous); !bytes.Equal(kept, original) {
		t.Fatal("the original database was overwritten by the second restore")
	}
	if st, err := boltstore.CheckFile(db, time.Second); err != nil || st.Incidents != 2 {
		t.Fatalf("restored database: %+v, %v", st, err)
	}
	for _, p := range []string{first.Previous, second.Previous} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", p, fi.Mode(), err)
		}
	}
}

// TestRestoreReplacesDamagedAndNewerFiles: restoring is what a damaged
// database, or one a newer version upgraded, needs; Restore must not open
// (let alone migrate) the file it replaces, and keeps it byte for byte.
func TestRestoreReplacesDamagedAndNewerFiles(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			truncate(t, p, fi.Size()/2)
		}},
		{"pages overwritten", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			overwrite(t, p, 2*4096, fi.Size()-2*4096, 7)
		}},
		{"zero bytes", func(t *testing.T, p string) { truncate(t, p, 0) }},
		{"upgraded by a newer version", func(t *testing.T, p string) {
			db, err := bolt.Open(p, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, boltstore.SchemaVersion+1))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, backup := filepath.Join(dir, "bot.db"), filepath.Join(dir, "backup.db")
			seedDB(t, db, 3)
			seedDB(t, backup, 5)
			tt.spoil(t, db)
			spoiled, _ := os.ReadFile(db)
			r, err := boltstore.Restore(backup, db, time.Now())
			if err != nil {
				t.Fatalf("restore over a %s database: %v", tt.name, err)
			}
			if kept, _ := os.ReadFile(r.Previous); !bytes.Equal(kept, spoiled) {
				t.Errorf("the replaced file was not kept as it was (%d bytes, was %d)", len(kept), len(spoiled))
			}
			s, err := boltstore.Open(db, boltstore.Options{})
			if err != nil {
				t.Fatalf("opening the restored database: %v", err)
			}
			defer s.Close()
			if st, err := s.Stats(); err != nil || st.Incidents != 5 {
				t.Errorf("restored: %+v, %v", st, err)
			}
		})
	}
}

// TestCheckOfAnOpenStoreDamagedUnderIt: `bot check` through the running
// bot checks its open store; pages overwritten under it are an ErrDamaged
// error, not a bbolt assertion panic that would kill the bot.
func TestCheckOfAnOpenStoreDamagedUnderIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	seedDB(t, path, 60)
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	fi, _ := os.Stat(path)
	overwrite(t, path, 2*4096, fi.Size()-2*4096, 11)
	err = s.Check()
	if !errors.Is(err, boltstore.ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Fatalf("check of a store damaged under it: %v, want ErrDamaged naming the file", err)
	}
}
