package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// ServerConfig configures the admin API's routes.
type ServerConfig struct {
	// Backend answers the reads: the running bot's store.
	Backend Backend
	// PostDigest queues the digest of a resolved period for posting; nil:
	// POST /admin/digest answers that this bot cannot post.
	PostDigest func(ctx context.Context, req DigestRequest) (DigestReply, error)
	Logger     *zap.Logger
}

// Routes returns the admin API's routes, for httpserver's Extra.
func Routes(cfg ServerConfig) map[string]http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &server{cfg: cfg, log: cfg.Logger.Named("admin")}
	return map[string]http.Handler{
		"GET /admin/incidents":       http.HandlerFunc(s.incidents),
		"GET /admin/backup":          http.HandlerFunc(s.backup),
		"GET /admin/check":           http.HandlerFunc(s.check),
		"GET /admin/digest":          http.HandlerFunc(s.digest),
		"POST /admin/digest":         http.HandlerFunc(s.postDigest),
		"GET /admin/postmortem/{id}": http.HandlerFunc(s.postmortem),
		"GET /admin/handover":        http.HandlerFunc(s.handover),
	}
}

type server struct {
	cfg ServerConfig
	log *zap.Logger
}

func (s *server) incidents(w http.ResponseWriter, r *http.Request) {
	incs, err := s.cfg.Backend.Incidents(r.Context(), incident.Filter{OpenOnly: r.URL.Query().Get("open") == "1"})
	s.reply(w, "listing incidents", http.StatusOK, incs, err)
}

// backup streams a consistent hot backup of the database.
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := s.cfg.Backend.WriteBackup(r.Context(), w)
	if err != nil {
		// Headers are gone; the client sees a short body and its check fails.
		s.log.Error("backup failed", zap.Int64("bytes", n), zap.Error(err))
		return
	}
	s.log.Info("backup written", zap.Int64("bytes", n))
}

func (s *server) check(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Backend.Check(r.Context())
	if err != nil {
		// The operator asked for the details.
		s.log.Error("database check failed", zap.Error(err))
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.reply(w, "", http.StatusOK, st, nil)
}

func (s *server) digest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply, err := s.cfg.Backend.Digest(r.Context(), DigestRequest{Week: q.Get("week"), From: q.Get("from"), To: q.Get("to"), Chart: q.Get("chart") == "1"})
	s.reply(w, "rendering a digest", http.StatusOK, reply, err)
}

func (s *server) postDigest(w http.ResponseWriter, r *http.Request) {
	var req DigestRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "the body must be JSON like {\"week\": \"2026-W47\"}", http.StatusBadRequest)
		return
	}
	if s.cfg.PostDigest == nil {
		http.Error(w, "this bot has no chat platform to post to (set SLACK_BOT_TOKEN)", http.StatusConflict)
		return
	}
	reply, err := s.cfg.PostDigest(r.Context(), req)
	s.reply(w, "queueing a digest", http.StatusAccepted, reply, err)
}

func (s *server) postmortem(w http.ResponseWriter, r *http.Request) {
	n, ok := incident.ParseID(r.PathValue("id"))
	if !ok {
		http.Error(w, "name the incident like INC-7", http.StatusBadRequest)
		return
	}
	d, err := s.cfg.Backend.Postmortem(r.Context(), n)
	s.reply(w, "rendering a postmortem draft", http.StatusOK, d, err)
}

func (s *server) handover(w http.ResponseWriter, r *http.Request) {
	h, err := s.cfg.Backend.Handover(r.Context())
	s.reply(w, "rendering the handover", http.StatusOK, h, err)
}

// reply writes v as JSON, or maps err to a status once: a domain error's
// message is shown, anything else is logged and answered generically.
func (s *server) reply(w http.ResponseWriter, what string, status int, v any, err error) {
	if err != nil {
		status := map[string]int{
			incident.EINVALID:   http.StatusBadRequest,
			incident.ENOTFOUND:  http.StatusNotFound,
			incident.ECONFLICT:  http.StatusConflict,
			incident.EFORBIDDEN: http.StatusForbidden,
		}[incident.ErrorCode(err)]
		if status == 0 {
			status = http.StatusInternalServerError
			s.log.Error(what, zap.Error(err))
		}
		http.Error(w, incident.ErrorMessage(err), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// digestQuery names a resolved period for GET /admin/digest.
func digestQuery(req DigestRequest) string {
	q := url.Values{}
	for k, v := range map[string]string{"week": req.Week, "from": req.From, "to": req.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if req.Chart {
		q.Set("chart", "1")
	}
	return q.Encode()
}
