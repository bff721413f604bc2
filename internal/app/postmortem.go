package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/postmortem"
)

var _ command.Postmortems = (*postmortem.Service)(nil)

// initPostmortems wires `/incident postmortem`: drafts are rendered from
// BOT_TEMPLATES_DIR/postmortem.md.tmpl (or the built-in template), stored
// as versions and, when the chat platform can share files, posted to the
// incident's channel by a durable job. It also serves drafts to
// `bot postmortem` on the admin socket.
func (a *App) initPostmortems() error {
	up, _ := a.chat.(incident.Uploader)
	if a.chat != nil && up == nil {
		a.log.Warn("the chat platform cannot share files; postmortem drafts are stored but not posted")
	}
	pm := postmortem.New(postmortemConfig(a.cfg, a.svc, up, a.log))
	if up != nil {
		a.runner.Handle(postmortem.JobPost, pm.HandlePost)
	}
	a.dispCfg.Postmortems = pm
	a.admin["GET /admin/postmortem/{id}"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.adminPostmortem(w, r, pm)
	})
	return nil
}

func postmortemConfig(cfg config.Config, svc *incident.Service, up incident.Uploader, log *zap.Logger) postmortem.Config {
	return postmortem.Config{Incidents: svc, Location: cfg.Location, TemplatesDir: cfg.TemplatesDir, Uploader: up, Logger: log}
}

// PostmortemDraft is an incident's postmortem draft as `bot postmortem`
// prints it, and the admin API's answer.
type PostmortemDraft struct {
	Incident string `json:"incident"`
	Draft    string `json:"draft"`
	// Warning says why a custom template was not used (file and line).
	Warning string `json:"warning,omitempty"`
}

func (a *App) adminPostmortem(w http.ResponseWriter, r *http.Request, pm *postmortem.Service) {
	n, ok := incident.ParseID(r.PathValue("id"))
	if !ok {
		http.Error(w, "name the incident like INC-7", http.StatusBadRequest)
		return
	}
	d, err := draftOf(r.Context(), pm, n)
	if err != nil {
		status := http.StatusInternalServerError
		if incident.ErrorCode(err) == incident.ENOTFOUND {
			status = http.StatusNotFound
		} else {
			a.log.Error("admin: rendering a postmortem draft", zap.Error(err))
		}
		http.Error(w, incident.ErrorMessage(err), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

func draftOf(ctx context.Context, pm *postmortem.Service, n int64) (PostmortemDraft, error) {
	r, err := pm.Preview(ctx, n)
	if err != nil {
		return PostmortemDraft{}, err
	}
	d := PostmortemDraft{Incident: incident.FormatID(n), Draft: string(r.Body)}
	if r.Warning != nil {
		d.Warning = r.Warning.Error()
	}
	return d, nil
}

// PostmortemText renders incident n's postmortem draft for the CLI, as
// `/incident postmortem` would, without storing it: from the database file
// when it is free, otherwise through the running bot's admin socket.
func PostmortemText(ctx context.Context, cfg config.Config, n int64) (PostmortemDraft, error) {
	store, err := boltstore.Open(cfg.DB, boltstore.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if err == nil {
		defer store.Close()
		svc := incident.NewService(incident.ServiceConfig{Store: store})
		return draftOf(ctx, postmortem.New(postmortemConfig(cfg, svc, nil, zap.NewNop())), n)
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return PostmortemDraft{}, err
	}
	var d PostmortemDraft
	if aerr := adminGet(ctx, cfg.AdminSocket, "/admin/postmortem/"+incident.FormatID(n), &d); aerr != nil {
		return PostmortemDraft{}, fmt.Errorf("%w; asking the running bot failed too: %w", err, aerr)
	}
	return d, nil
}
