package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// TestSocketIsPrivateFromTheStart runs under a permissive umask (0) and
// watches the socket's directory: the socket must appear at its path
// already mode 0600, never be created there with a wider mode and fixed up
// afterwards (a chmod there is an IN_ATTRIB event: before it, any local
// user could connect and download the database).
func TestSocketIsPrivateFromTheStart(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // a shared directory
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bot.db.sock")
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("no inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_ATTRIB|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	appeared := false
	buf := make([]byte, 64*1024)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < n; {
		ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := string(bytes.TrimRight(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)], "\x00"))
		off += syscall.SizeofInotifyEvent + int(ev.Len)
		if name != filepath.Base(path) {
			continue
		}
		switch {
		case ev.Mask&syscall.IN_CREATE != 0:
			t.Errorf("the socket was created at %s itself, with the mode the umask allows", path)
			appeared = true
		case ev.Mask&syscall.IN_MOVED_TO != 0:
			appeared = true
		case ev.Mask&syscall.IN_ATTRIB != 0:
			t.Errorf("the socket's mode was changed after it appeared at %s: it was reachable with a wider mode before", path)
		}
	}
	if !appeared {
		t.Fatal("no event for the socket")
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
}
