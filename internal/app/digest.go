package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// initDigest wires the weekly digest: the job that posts it (when there is
// a chat platform), the cron schedule that queues it once a week (when
// BOT_DIGEST_SCHEDULE is not "off" and there is a digest channel), and the
// admin routes `bot digest` uses while the bot holds the database.
func (a *App) initDigest() error {
	dcfg := a.cfg.Digest
	log := a.log.Named("digest")
	a.admin["GET /admin/digest"] = http.HandlerFunc(a.adminDigestText)
	a.admin["POST /admin/digest"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.adminDigestPost(w, r, dcfg)
	})
	if a.chat == nil {
		log.Warn("no chat platform; the weekly digest is not posted")
		return nil
	}
	poster := digest.NewPoster(digest.PosterConfig{
		Store: a.store, Clock: a.clock, Chat: a.chat, Location: a.cfg.Location, TemplatesDir: a.cfg.TemplatesDir, Logger: a.log,
	})
	a.runner.Handle(digest.JobPost, poster.Handle)
	if !dcfg.Enabled() {
		log.Info("weekly digest is off (BOT_DIGEST_SCHEDULE is off, or no BOT_DIGEST_CHANNEL or BOT_ANNOUNCE_CHANNEL)")
		return nil
	}
	sched, err := digest.ParseSchedule(dcfg.Schedule, a.cfg.Location)
	if err != nil {
		return fmt.Errorf("BOT_DIGEST_SCHEDULE: %w", err)
	}
	s := digest.NewScheduler(digest.SchedulerConfig{Schedule: sched, Store: a.store, Clock: a.clock, Channel: dcfg.Channel, Logger: a.log})
	a.schedulers = append(a.schedulers, s.Run)
	return nil
}

// DigestRequest names the period of a digest as `bot digest` takes it:
// Week ("2026-W47"), or From and To (dates, To included), or nothing for
// the previous week.
type DigestRequest struct {
	Week string `json:"week,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// DigestReply is a rendered digest, or the answer to a post request.
type DigestReply struct {
	Period  string `json:"period"`
	Text    string `json:"text,omitempty"`
	Warning string `json:"warning,omitempty"` // why a custom template was not used
	Queued  bool   `json:"queued,omitempty"`
	Channel string `json:"channel,omitempty"`
	Message string `json:"message,omitempty"`
}

func (a *App) adminDigestText(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := digest.ParsePeriod(q.Get("week"), q.Get("from"), q.Get("to"), a.clock.Now(), a.cfg.Location)
	if err != nil {
		http.Error(w, incident.ErrorMessage(err), http.StatusBadRequest)
		return
	}
	reply, err := digestText(r.Context(), a.store, a.cfg, p, a.clock.Now())
	if err != nil {
		a.log.Error("admin: rendering a digest", zap.Error(err))
		http.Error(w, incident.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func (a *App) adminDigestPost(w http.ResponseWriter, r *http.Request, dcfg config.Digest) {
	var req DigestRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "the body must be JSON like {\"week\": \"2026-W47\"}", http.StatusBadRequest)
		return
	}
	now := a.clock.Now()
	p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, a.cfg.Location)
	if err != nil {
		http.Error(w, incident.ErrorMessage(err), http.StatusBadRequest)
		return
	}
	switch {
	case a.chat == nil:
		http.Error(w, "this bot has no chat platform to post to (set SLACK_BOT_TOKEN)", http.StatusConflict)
		return
	case dcfg.Channel == "":
		http.Error(w, "there is no digest channel: set BOT_DIGEST_CHANNEL (or BOT_ANNOUNCE_CHANNEL)", http.StatusConflict)
		return
	}
	queued, err := digest.EnqueueRequest(r.Context(), a.store, p, dcfg.Channel, now)
	if err != nil {
		a.log.Error("admin: queueing a digest", zap.Error(err))
		http.Error(w, incident.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	reply := DigestReply{Period: p.Label(), Queued: queued, Channel: dcfg.Channel,
		Message: fmt.Sprintf("The digest of %s is queued for posting to %s.", p.Label(), dcfg.Channel)}
	if !queued {
		reply.Message = fmt.Sprintf("The digest of %s is already queued for posting; it is posted once.", p.Label())
	}
	writeJSON(w, http.StatusAccepted, reply)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func digestText(ctx context.Context, store incident.Store, cfg config.Config, p digest.Period, now time.Time) (DigestReply, error) {
	r, err := digest.Generate(ctx, store, p, digest.Options{TemplatesDir: cfg.TemplatesDir, Now: now})
	if err != nil {
		return DigestReply{}, err
	}
	reply := DigestReply{Period: p.Label(), Text: string(r.Body)}
	if r.Warning != nil {
		reply.Warning = r.Warning.Error()
	}
	return reply, nil
}

// DigestText renders the digest of a period for `bot digest`: from the
// database file when it is free, otherwise through the running bot's admin
// socket. Bad periods are EINVALID errors with a message for the user.
func DigestText(ctx context.Context, cfg config.Config, req DigestRequest, now time.Time) (DigestReply, error) {
	p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, cfg.Location)
	if err != nil {
		return DigestReply{}, err
	}
	store, err := boltstore.Open(cfg.DB, boltstore.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if err == nil {
		defer store.Close()
		return digestText(ctx, store, cfg, p, now)
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		return DigestReply{}, err
	}
	q := periodQuery(p)
	var reply DigestReply
	if aerr := adminGet(ctx, cfg.AdminSocket, "/admin/digest?"+q, &reply); aerr != nil {
		return DigestReply{}, fmt.Errorf("%w; asking the running bot failed too: %w", err, aerr)
	}
	return reply, nil
}

// periodQuery names p for the admin API, resolved here so that the bot and
// the CLI agree on "last week" whatever their clocks say.
func periodQuery(p digest.Period) string {
	if !p.Week.IsZero() {
		return "week=" + p.Week.String()
	}
	return "from=" + p.From.Format("2006-01-02") + "&to=" + p.To.AddDate(0, 0, -1).Format("2006-01-02")
}

// PostDigest asks the running bot to post the digest of a period to the
// digest channel. Posting always goes through the running bot: it holds the
// database (so the post is recorded and the schedule does not repeat it)
// and the chat connection.
func PostDigest(ctx context.Context, cfg config.Config, req DigestRequest, now time.Time) (DigestReply, error) {
	p, err := digest.ParsePeriod(req.Week, req.From, req.To, now, cfg.Location)
	if err != nil {
		return DigestReply{}, err
	}
	body := DigestRequest{Week: p.Week.String()}
	if p.Week.IsZero() {
		body = DigestRequest{From: p.From.Format("2006-01-02"), To: p.To.AddDate(0, 0, -1).Format("2006-01-02")}
	}
	var reply DigestReply
	if err := adminPost(ctx, cfg.AdminSocket, "/admin/digest", body, &reply); err != nil {
		return DigestReply{}, fmt.Errorf("posting needs the running bot (`bot serve`), which posts through its chat connection and records the post: %w", err)
	}
	return reply, nil
}

// adminPost is adminGet for a POST with a JSON body.
func adminPost(ctx context.Context, socket, path string, body, v any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	// Callers bound the call with ctx.
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://admin"+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%s)", errNoAdmin, socket)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the bot answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
