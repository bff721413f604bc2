package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedDatabaseIsAClearError: with a truncated database (and with a
// zero-byte one) every command that reads it fails with exit status 1 and
// a message naming the file and the remedy, never a stack trace; serve
// does not replace a zero-byte file with a new empty database; restore
// replaces the damaged file and keeps it aside.
func TestDamagedDatabaseIsAClearError(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	env := map[string]string{"BOT_DB": db, "BOT_ADDR": "127.0.0.1:0"}
	if _, _, code := runBot(t, env, "/incident declare sev3 something broke\n", "shell", "--db", env["BOT_DB"]); code != 0 {
		t.Fatal("shell failed")
	}
	backup := filepath.Join(dir, "backup.db")
	if out, errOut, code := runBot(t, env, "", "backup", backup); code != 0 {
		t.Fatalf("backup: %s %s", out, errOut)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{fi.Size() / 2, 0} {
		if err := os.Truncate(db, size); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check"}, {"serve"}, {"incidents"}, {"check", db}} {
			out, errOut, code := runBot(t, env, "", args...)
			if code != exitFail || !strings.Contains(errOut, db) || !strings.Contains(errOut, "bot restore") ||
				strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("bot %v on a %d-byte database: exit %d\nstdout: %s\nstderr: %s", args, size, code, out, errOut)
			}
		}
		if fi, err := os.Stat(db); err != nil || fi.Size() != size {
			t.Fatalf("the damaged file was changed: %v, %v", fi.Size(), err)
		}
	}
	out, errOut, code := runBot(t, env, "", "restore", backup)
	if code != 0 || !strings.Contains(out, "the previous database is kept as "+db+".before-restore-") {
		t.Fatalf("restore over the damaged file: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, _, code := runBot(t, env, "", "incidents"); code != 0 || !strings.Contains(out, "something broke") {
		t.Fatalf("after restore: exit %d\n%s", code, out)
	}
}
