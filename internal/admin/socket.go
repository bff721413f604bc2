package admin

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Listen creates the admin socket at path and listens on it.
//
// The socket is mode 0600 from the moment anyone can reach it: it is bound
// inside a new private directory (mode 0700, next to path, so on the same
// file system), made 0600 there, and only then renamed to path. Binding at
// path directly would create it with the mode the umask allows (0777 under
// a permissive one) until a later chmod.
//
// A file already at path is replaced only if it is a stale socket (left by
// a bot that crashed: nothing answers on it). A socket that answers is
// another bot; any other kind of file is refused and left alone, whatever
// it is (the database itself, say).
func Listen(path string) (net.Listener, error) {
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	priv, err := os.MkdirTemp(filepath.Dir(path), ".admin-")
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: creating its private directory: %w", path, err)
	}
	defer os.RemoveAll(priv)
	tmp := filepath.Join(priv, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	// The socket file moves; the listener must not remove a path it no
	// longer owns when it closes (socketListener does, checking first).
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	// Checked again just before the move: the rename would replace
	// whatever is at path.
	if err := checkSocketPath(path); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &socketListener{UnixListener: ln, path: path, fi: fi}, nil
}

// checkSocketPath reports whether the admin socket may be created at path:
// nothing is there, or a stale socket is. Its errors name the path and say
// what to do.
func checkSocketPath(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("admin socket %s: %w", path, err)
	case fi.Mode().Type() != os.ModeSocket:
		return fmt.Errorf("BOT_ADMIN_SOCKET %s exists and is not a socket (%s); the bot only ever replaces a stale socket, so name a path where nothing exists yet (the default is BOT_DB + \".sock\")", path, describeMode(fi))
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		_ = c.Close()
		return fmt.Errorf("another bot is serving on %s (BOT_ADMIN_SOCKET): stop it, or give this one another BOT_DB and BOT_ADMIN_SOCKET", path)
	}
	return nil
}

func describeMode(fi os.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&os.ModeDir != 0:
		return "a directory"
	case t&os.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "mode " + fi.Mode().String()
	}
}

// socketListener removes the socket file when it closes, if the file at
// path is still the one it created.
type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
			_ = os.Remove(l.path)
		}
	})
	return err
}
