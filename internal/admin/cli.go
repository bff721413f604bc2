package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// CLI runs the command line's reads: each opens the database file
// read-only when no bot holds it, and otherwise asks the running bot on
// its admin socket.
type CLI struct {
	// Socket is the running bot's admin socket (BOT_ADMIN_SOCKET).
	Socket string
	// Open opens the database file read-only for one command, waiting only
	// a moment for the lock. Its error wraps ErrHeld when a running bot
	// holds the file.
	Open func() (Backend, io.Closer, error)
	// CheckFile checks a database file that nobody holds (a new backup).
	CheckFile func(path string) (Stats, error)
	// Resolve turns a period as the user gave it into a resolved one (Week,
	// or From and To), so that the bot and the CLI agree on "last week"; an
	// EINVALID error explains a bad period.
	Resolve func(req DigestRequest, now time.Time) (DigestRequest, error)
}

// with runs fn on the database file when it is free, otherwise on the
// running bot. A failure to reach the bot is reported with the reason the
// file could not be used.
func (c *CLI) with(fn func(Backend) error) error {
	b, closer, err := c.Open()
	if err == nil {
		defer closer.Close()
		return fn(b)
	}
	if !errors.Is(err, ErrHeld) {
		return err
	}
	ferr := fn(NewClient(c.Socket))
	if ferr == nil || incident.ErrorCode(ferr) != incident.EINTERNAL {
		return ferr // the bot answered (a domain error is its answer)
	}
	return fmt.Errorf("%w; asking the running bot failed too: %w", err, ferr)
}

// Incidents lists incidents for `bot incidents`.
func (c *CLI) Incidents(ctx context.Context, openOnly bool) ([]*incident.Incident, error) {
	var out []*incident.Incident
	err := c.with(func(b Backend) error {
		var err error
		out, err = b.Incidents(ctx, incident.Filter{OpenOnly: openOnly})
		return err
	})
	return out, err
}

// Check checks the database for `bot check`.
func (c *CLI) Check(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.with(func(b Backend) error {
		var err error
		st, err = b.Check(ctx)
		return err
	})
	return st, err
}

// Digest renders the digest of a period for `bot digest`.
func (c *CLI) Digest(ctx context.Context, req DigestRequest, now time.Time) (DigestReply, error) {
	chart := req.Chart
	req, err := c.Resolve(req, now)
	if err != nil {
		return DigestReply{}, err
	}
	req.Chart = chart
	var reply DigestReply
	err = c.with(func(b Backend) error {
		var err error
		reply, err = b.Digest(ctx, req)
		return err
	})
	return reply, err
}

// PostDigest asks the running bot to post the digest of a period to the
// digest channel. Posting always goes through the running bot: it holds the
// database (so the post is recorded and the schedule does not repeat it)
// and the chat connection.
func (c *CLI) PostDigest(ctx context.Context, req DigestRequest, now time.Time) (DigestReply, error) {
	req, err := c.Resolve(req, now)
	if err != nil {
		return DigestReply{}, err
	}
	reply, err := NewClient(c.Socket).PostDigest(ctx, req)
	if err != nil {
		return DigestReply{}, fmt.Errorf("posting needs the running bot (`bot serve`), which posts through its chat connection and records the post: %w", err)
	}
	return reply, nil
}

// Postmortem renders incident n's postmortem draft for `bot postmortem`.
func (c *CLI) Postmortem(ctx context.Context, n int64) (PostmortemDraft, error) {
	var d PostmortemDraft
	err := c.with(func(b Backend) error {
		var err error
		d, err = b.Postmortem(ctx, n)
		return err
	})
	return d, err
}

// Handover renders the current shift's on-call handover for `bot
// handover`.
func (c *CLI) Handover(ctx context.Context) (HandoverReply, error) {
	var h HandoverReply
	err := c.with(func(b Backend) error {
		var err error
		h, err = b.Handover(ctx)
		return err
	})
	return h, err
}

// BackupOptions adjust Backup.
type BackupOptions struct {
	// Force replaces an existing file at the destination.
	Force bool
}

// ErrExists is returned by Backup when the destination exists and Force is
// not set.
var ErrExists = errors.New("the destination exists")

// Backup writes a consistent backup of the database to path for `bot
// backup`: from the file when it is free, otherwise streamed from the
// running bot. The backup is checked before Backup returns.
//
// The file is written safely whatever is planted around it: the data goes
// to a new temporary file created exclusively (O_EXCL, so a symlink there
// is never followed) with mode 0600 in the destination's directory, and is
// then moved into place: linked only if nothing exists at path (no race
// with a file created meanwhile), or renamed over it with Force (a symlink
// at path is replaced, not followed). The result is a new file owned by
// the caller, never a pre-existing file's owner or mode.
func (c *CLI) Backup(ctx context.Context, path string, opts BackupOptions) (Stats, error) {
	if !opts.Force {
		if _, err := os.Lstat(path); err == nil {
			return Stats{}, fmt.Errorf("%w: %s (choose a new file, or use --force to replace it)", ErrExists, path)
		}
	}
	err := c.with(func(b Backend) error {
		return writeFileExclusive(path, opts.Force, func(w io.Writer) error {
			_, err := b.WriteBackup(ctx, w)
			return err
		})
	})
	if err != nil {
		return Stats{}, err
	}
	st, err := c.CheckFile(path)
	if err != nil {
		return st, fmt.Errorf("the backup does not check out (kept at %s for inspection): %w", path, err)
	}
	return st, nil
}

// writeFileExclusive writes a new file at path through a temporary file
// (see CLI.Backup); without replace it fails with ErrExists if path exists.
func writeFileExclusive(path string, replace bool, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp opens with O_CREATE|O_EXCL and mode 0600 under a random
	// name: a name planted in advance (a symlink included) makes it pick
	// another, never open the planted one.
	f, err := os.CreateTemp(dir, "."+base+".partial-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else if err = os.Link(tmp, path); err == nil {
		err = os.Remove(tmp)
	} else if errors.Is(err, os.ErrExist) {
		err = fmt.Errorf("%w: %s (choose a new file, or use --force to replace it)", ErrExists, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
