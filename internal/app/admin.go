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

// adminTimeout bounds admin API calls from the CLI.
const adminTimeout = 10 * time.Second

func (a *App) mountAdmin() error {
	a.admin["GET /admin/incidents"] = http.HandlerFunc(a.adminIncidents)
	return nil
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
	client := &http.Client{
		Timeout: adminTimeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin"+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%s)", errNoAdmin, socket)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("admin API %s: %s: %s", path, resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
