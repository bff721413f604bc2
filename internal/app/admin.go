package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// The admin API answers the CLI's read commands while `bot serve` holds the
// database. It listens only on a Unix socket (mode 0600) next to the
// database, so it is reachable only from this host by the bot's user.

// errNoAdmin is returned by the admin client when nothing answers.
var errNoAdmin = errors.New("no running bot answers on the admin socket")

func (a *App) mountAdmin() error {
	a.admin["GET /admin/incidents"] = http.HandlerFunc(a.adminIncidents)
	a.admin["GET /admin/backup"] = http.HandlerFunc(a.adminBackup)
	a.admin["GET /admin/check"] = http.HandlerFunc(a.adminCheck)
	return nil
}

// adminBackup streams a consistent hot backup of the database.
func (a *App) adminBackup(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := a.store.WriteBackup(w)
	if err != nil {
		// Headers are gone; the client sees a short body and its check fails.
		a.log.Error("admin: backup failed", zap.Int64("bytes", n), zap.Error(err))
		return
	}
	a.log.Info("admin: backup written", zap.Int64("bytes", n))
}

// adminCheck checks the open database.
func (a *App) adminCheck(w http.ResponseWriter, _ *http.Request) {
	if err := a.store.Check(); err != nil {
		a.log.Error("admin: database check failed", zap.Error(err))
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	st, err := a.store.Stats()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// Backup writes a consistent backup of the database to path: from the file
// when it is free, otherwise streamed from the running bot. The result is
// checked before Backup returns.
func Backup(ctx context.Context, cfg config.Config, path string) (boltstore.Stats, error) {
	store, err := boltstore.Open(cfg.DB, boltstore.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	switch {
	case err == nil:
		_, err = store.WriteBackupFile(path)
		_ = store.Close()
	case errors.Is(err, boltstore.ErrLocked):
		if aerr := adminDownload(ctx, cfg.AdminSocket, "/admin/backup", path); aerr != nil {
			err = fmt.Errorf("%w; asking the running bot failed too: %w", err, aerr)
		} else {
			err = nil
		}
	}
	if err != nil {
		return boltstore.Stats{}, err
	}
	st, err := boltstore.CheckFile(path, time.Second)
	if err != nil {
		return st, fmt.Errorf("the backup does not check out (kept at %s for inspection): %w", path, err)
	}
	return st, nil
}

// Check checks the database: the file itself when it is free, otherwise
// through the running bot.
func Check(ctx context.Context, cfg config.Config) (boltstore.Stats, error) {
	st, err := boltstore.CheckFile(cfg.DB, 200*time.Millisecond)
	if !errors.Is(err, boltstore.ErrLocked) {
		return st, err
	}
	if aerr := adminGet(ctx, cfg.AdminSocket, "/admin/check", &st); aerr != nil {
		return st, fmt.Errorf("%w; asking the running bot failed too: %w", err, aerr)
	}
	return st, nil
}

// adminDownload saves the body of an admin API answer to path atomically.
func adminDownload(ctx context.Context, socket, path, dst string) error {
	resp, err := adminDo(ctx, socket, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp := dst + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func (a *App) adminIncidents(w http.ResponseWriter, r *http.Request) {
	f := incident.Filter{OpenOnly: r.URL.Query().Get("open") == "1"}
	incs, err := a.svc.List(r.Context(), f)
	if err != nil {
		a.log.Error("admin: listing incidents", zap.Error(err))
		http.Error(w, incident.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(incs)
}

// ListIncidents lists incidents for the CLI: from the database file when it
// is free, otherwise from the running bot's admin socket. It never waits on
// the file lock for more than a moment.
func ListIncidents(ctx context.Context, cfg config.Config, openOnly bool) ([]*incident.Incident, error) {
	store, err := boltstore.Open(cfg.DB, boltstore.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if err == nil {
		defer store.Close()
		var out []*incident.Incident
		err := store.View(ctx, func(tx incident.Tx) error {
			var err error
			out, err = tx.Incidents(incident.Filter{OpenOnly: openOnly})
			return err
		})
		return out, err
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return nil, err
	}
	q := url.Values{}
	if openOnly {
		q.Set("open", "1")
	}
	var out []*incident.Incident
	if aerr := adminGet(ctx, cfg.AdminSocket, "/admin/incidents?"+q.Encode(), &out); aerr != nil {
		return nil, fmt.Errorf("%w; asking the running bot failed too: %w", err, aerr)
	}
	return out, nil
}

// adminGet calls the admin API on the Unix socket and decodes the JSON answer.
func adminGet(ctx context.Context, socket, path string, v any) error {
	resp, err := adminDo(ctx, socket, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// adminDo sends a GET to the admin API on the Unix socket; a non-200 answer
// is an error carrying the body's first line.
func adminDo(ctx context.Context, socket, path string) (*http.Response, error) {
	// No client timeout: callers bound the call with ctx (a backup of a big
	// database takes a while).
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", errNoAdmin, socket)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("admin API %s: %s: %s", path, resp.Status, body)
	}
	return resp, nil
}
