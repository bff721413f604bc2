package admin

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenNeverRemovesWhatIsNotASocket: a BOT_ADMIN_SOCKET that names an
// existing file (the database itself, a directory, a symlink) is refused
// with a clear error and the file is left as it was.
func TestListenNeverRemovesWhatIsNotASocket(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	if err := os.WriteFile(db, []byte("the database"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(db, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{db, sub, link} {
		ln, err := Listen(path)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%s) took over an existing file", path)
		}
		if !strings.Contains(err.Error(), "is not a socket") || !strings.Contains(err.Error(), path) {
			t.Errorf("Listen(%s): %v; want an error naming the file and saying it is not a socket", path, err)
		}
	}
	if raw, err := os.ReadFile(db); err != nil || string(raw) != "the database" {
		t.Fatalf("the database is gone or changed: %q, %v", raw, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Fatalf("the symlink is gone: %v", err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("the directory is gone: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".admin-*")); len(left) != 0 {
		t.Errorf("private directories left behind: %v", left)
	}
}

// TestListenReplacesOnlyAStaleSocket: a socket left by a crashed bot is
// replaced; one another bot answers on is refused; closing removes the
// socket.
func TestListenReplacesOnlyAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // a crash leaves the file behind

	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("a stale socket must be replaced: %v", err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another bot is serving") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket stopped answering after the refused Listen: %v", err)
	}
	c.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after Close: %v", err)
	}
}
