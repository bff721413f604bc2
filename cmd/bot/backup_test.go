package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	// 8192 bytes: the two meta pages and nothing they point to.
	for _, size := range []int64{8192, 0} {
		if err := os.Truncate(db, size); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check"}, {"serve"}, {"incidents"}, {"check", db}} {
			out, errOut, code := runBotWithin(t, 15*time.Second, env, args...)
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

// TestAdminSocketNeverDeletesAFile: `bot serve` with BOT_ADMIN_SOCKET
// naming the database, or any other file that is not a socket, refuses to
// start (a configuration problem, exit 2) and leaves the file as it was.
func TestAdminSocketNeverDeletesAFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	notes := filepath.Join(dir, "notes.txt")
	if _, _, code := runBot(t, map[string]string{"BOT_DB": db}, "/incident declare sev3 something broke\n", "shell", "--db", db); code != 0 {
		t.Fatal("shell failed")
	}
	if err := os.WriteFile(notes, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, socket := range []string{db, notes} {
		before, _ := os.ReadFile(socket)
		env := map[string]string{"BOT_DB": db, "BOT_ADDR": "127.0.0.1:0", "BOT_ADMIN_SOCKET": socket}
		_, errOut, code := runBotWithin(t, 15*time.Second, env, "serve")
		if code != exitConfig || !strings.Contains(errOut, "BOT_ADMIN_SOCKET") {
			t.Errorf("serve with BOT_ADMIN_SOCKET=%s: exit %d, %s", socket, code, errOut)
		}
		if after, err := os.ReadFile(socket); err != nil || !bytes.Equal(before, after) {
			t.Fatalf("%s was deleted or changed: %v", socket, err)
		}
	}
}

// runBotWithin is runBot for a command that must exit by itself (serve
// refusing to start): after limit it is killed and reported as not exiting
// (code -1).
func runBotWithin(t *testing.T, limit time.Duration, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := botCommand(t, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), errb.String() + fmt.Sprintf("\n(still running after %s: killed)", limit), -1
	}
}
