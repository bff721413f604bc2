package postmortem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// DocKind is the kind of the stored drafts: version v of INC-7's draft is
// Tx.Doc(DocKind, "INC-7", v).
const DocKind = "postmortem"

// JobPost is the job kind that shares a stored draft in the incident's
// channel. Its jobs are keyed by the incident's chat key, so a draft is
// posted after the chat sync that creates the channel.
const JobPost = "postmortem.post"

// Config configures a Service.
type Config struct {
	Incidents *incident.Service
	// Location is the time zone of the times in drafts (BOT_TIMEZONE).
	Location *time.Location
	// TemplatesDir may hold postmortem.md.tmpl to replace the built-in
	// template (BOT_TEMPLATES_DIR).
	TemplatesDir string
	// Uploader shares drafts in incident channels. Nil: drafts are stored
	// and can be printed with `bot postmortem`, but not posted.
	Uploader incident.Uploader
	// Directory names the people in drafts (Slack's users.info, cached);
	// nil: the names the timeline recorded, else mentions.
	Directory incident.Directory
	Logger    *zap.Logger
}

// Service drafts, stores and posts postmortems. It implements the
// `/incident postmortem` command (command.Postmortems).
type Service struct {
	cfg   Config
	store incident.Store
	clock incident.Clock
	log   *zap.Logger
}

// New returns the postmortem service.
func New(cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, store: cfg.Incidents.Store(), clock: cfg.Incidents.Clock(), log: cfg.Logger.Named("postmortem")}
}

// errRaced means another draft of the same incident was stored between
// reading and storing; the draft is rendered again with the next version.
var errRaced = errors.New("another draft was stored meanwhile")

// Draft renders the incident's postmortem draft, stores it as the next
// version, records that on the timeline and schedules its posting, all in
// one transaction. It returns the reply for the person who asked.
func (s *Service) Draft(ctx context.Context, ref incident.Ref, by incident.Actor) (string, error) {
	target, err := s.cfg.Incidents.Get(ctx, ref)
	if err != nil {
		return "", err
	}
	for range 3 {
		inc, events, latest, err := s.read(ctx, target.Number)
		if err != nil {
			return "", err
		}
		r, err := Render(inc, events, s.cfg.TemplatesDir, Options{Location: s.cfg.Location, Now: s.clock.Now(), Version: latest + 1, Names: s.names(ctx, inc, events)})
		if err != nil {
			return "", err
		}
		s.warn(inc, r.Warning)
		inc, err = s.save(ctx, inc.Number, latest, r, by)
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("storing the postmortem draft of %s: %w", target.ID(), err)
		}
		return s.reply(inc, r), nil
	}
	return "", incident.Errorf(incident.ECONFLICT, "Several postmortem drafts of %s are being made at once; try again in a moment.", target.ID())
}

// Preview renders incident n's draft as Draft would, without storing it.
func (s *Service) Preview(ctx context.Context, n int64) (Rendered, error) {
	inc, events, _, err := s.read(ctx, n)
	if err != nil {
		return Rendered{}, err
	}
	r, err := Render(inc, events, s.cfg.TemplatesDir, Options{Location: s.cfg.Location, Now: s.clock.Now(), Names: s.names(ctx, inc, events)})
	if err == nil {
		s.warn(inc, r.Warning)
	}
	return r, err
}

// names looks up the people a draft of inc names.
func (s *Service) names(ctx context.Context, inc *incident.Incident, events []incident.Event) incident.Names {
	if s.cfg.Directory == nil {
		return nil
	}
	return s.cfg.Directory.Names(ctx, PeopleIDs(inc, events))
}

func (s *Service) warn(inc *incident.Incident, w error) {
	if w != nil {
		s.log.Warn("custom postmortem template failed; used the built-in one", zap.String("incident", inc.ID()), zap.Error(w))
	}
}

// read loads incident n, its timeline and the latest stored draft version
// (0 if none) in one snapshot.
func (s *Service) read(ctx context.Context, n int64) (inc *incident.Incident, events []incident.Event, latest int, err error) {
	err = s.store.View(ctx, func(tx incident.Tx) error {
		if inc, err = tx.Incident(n); err != nil {
			return err
		}
		if events, err = tx.Timeline(n); err != nil {
			return err
		}
		latest, err = latestVersion(tx, inc.ID())
		return err
	})
	return inc, events, latest, err
}

func latestVersion(tx incident.Tx, id string) (int, error) {
	_, v, err := tx.Doc(DocKind, id, 0)
	if incident.ErrorCode(err) == incident.ENOTFOUND {
		return 0, nil
	}
	return v, err
}

// postPayload is a JobPost job's payload.
type postPayload struct {
	Incident int64  `json:"incident"`
	Version  int    `json:"version"`
	Comment  string `json:"comment"`
}

// save stores r as the version after latest, or returns errRaced.
func (s *Service) save(ctx context.Context, n int64, latest int, r Rendered, by incident.Actor) (*incident.Incident, error) {
	var out *incident.Incident
	err := s.store.Update(ctx, func(tx incident.Tx) error {
		inc, err := tx.Incident(n)
		if err != nil {
			return err
		}
		if cur, err := latestVersion(tx, inc.ID()); err != nil {
			return err
		} else if cur != latest {
			return errRaced
		}
		v, err := tx.PutDoc(DocKind, inc.ID(), r.Body)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		ev := incident.Event{
			Incident: n, At: now, Recorded: now, Kind: incident.EventPostmortemDrafted, Actor: by,
			Key:  "postmortem-v" + strconv.Itoa(v),
			Data: map[string]string{"version": strconv.Itoa(v)},
			// The posted file tells the channel; without an uploader the
			// timeline line is all the channel hears of it.
			Quiet: s.cfg.Uploader != nil,
		}
		if _, err := tx.AppendEvent(&ev); err != nil {
			return err
		}
		inc.UpdatedAt = now
		if err := tx.PutIncident(inc); err != nil {
			return err
		}
		// The chat sync goes first in the incident's chat queue: it creates
		// the channel if there is none yet, and the upload follows it.
		if err := incident.EnqueueChatSync(tx, n, now); err != nil {
			return err
		}
		if s.cfg.Uploader != nil {
			payload, _ := json.Marshal(postPayload{Incident: n, Version: v, Comment: r.Summary()})
			if err := tx.Enqueue(&incident.Job{Kind: JobPost, Key: incident.ChatJobKey(n), Due: now, Payload: payload}); err != nil {
				return err
			}
		}
		out = inc
		return nil
	})
	return out, err
}

func (s *Service) reply(inc *incident.Incident, r Rendered) string {
	d := r.Data
	var b strings.Builder
	fmt.Fprintf(&b, "Postmortem draft v%d of *%s* saved", d.Version, inc.ID())
	switch {
	case s.cfg.Uploader == nil:
		fmt.Fprintf(&b, ". This chat cannot receive files; print it with `bot postmortem %s`.", inc.ID())
	case inc.Chat.ChannelID != "":
		fmt.Fprintf(&b, "; it is being posted in <#%s> as `%s`.", inc.Chat.ChannelID, FileName(inc.Number, d.Version))
	default:
		fmt.Fprintf(&b, "; it will be posted as `%s` once the incident's channel exists.", FileName(inc.Number, d.Version))
	}
	if n := len(d.Review) + d.ReviewMore; n > 0 {
		fmt.Fprintf(&b, "\nThe blameless review at its end lists %s to look at.", plural(n, "phrase"))
	}
	if r.Warning != nil {
		fmt.Fprintf(&b, "\nThe custom template failed (%s), so the built-in one was used; the details are in the bot's log.", templateWhere(r.Warning))
	}
	return b.String()
}

// templateWhere names the failed template file and line for a reply,
// without the details (which are logged).
func templateWhere(err error) string {
	var te *templates.Error
	if !errors.As(err, &te) {
		return "unknown error"
	}
	where := filepath.Base(te.Template)
	if te.Line > 0 {
		where += fmt.Sprintf(", line %d", te.Line)
	}
	return where
}

// Keys of the post state of each version; see HandlePost.
const (
	statePosting = "posting"
	statePosted  = "posted"
	stateFailed  = "failed"
)

func postKey(n int64, v int) string {
	return fmt.Sprintf("postmortem.post:%s:v%d", incident.FormatID(n), v)
}

// HandlePost runs a JobPost job: it uploads one stored version of a draft
// to the incident's channel, once.
//
// The post state is recorded around the upload: "posting" before the call,
// "posted" or "failed" after it. A retry of a posted version does nothing; a
// retry after a failed call uploads again. A retry that finds "posting" (a
// crash, a lost answer or a failed store write after the call began) looks
// for the file in the channel by its title (incident.Finder) and records it
// if it is there; only a chat that cannot look uploads again, with a
// comment saying so.
func (s *Service) HandlePost(ctx context.Context, job incident.Job) error {
	var p postPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 || p.Version == 0 {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobPost, job.Payload)
	}
	if s.cfg.Uploader == nil {
		return incident.Errorf(incident.EINVALID, "this chat cannot receive files")
	}
	key := postKey(p.Incident, p.Version)
	var (
		inc   *incident.Incident
		body  []byte
		state string
	)
	err := s.store.View(ctx, func(tx incident.Tx) error {
		var err error
		if inc, err = tx.Incident(p.Incident); err != nil {
			return err
		}
		if body, _, err = tx.Doc(DocKind, inc.ID(), p.Version); err != nil {
			return err
		}
		raw, _, err := tx.Key(key)
		state = string(raw)
		return err
	})
	if err != nil {
		return fmt.Errorf("loading postmortem draft v%d of %s: %w", p.Version, incident.FormatID(p.Incident), err)
	}
	log := s.log.With(zap.String("incident", inc.ID()), zap.Int("version", p.Version))
	if state == statePosted {
		log.Debug("postmortem draft already posted")
		return nil
	}
	ch := inc.Chat.ChannelID
	if ch == "" {
		return fmt.Errorf("%s has no channel yet", inc.ID())
	}
	comment := p.Comment
	title := fmt.Sprintf("%s postmortem draft v%d", inc.ID(), p.Version)
	if state == statePosting {
		// The title names the incident and the version, so the bot's own
		// share of it in the incident's channel is this upload: found,
		// it is recorded instead of uploaded again (issue 17).
		finder, canFind := s.cfg.Uploader.(incident.Finder)
		if canFind {
			found, err := finder.FindFile(ctx, ch, "", title, time.Time{})
			if err != nil {
				return fmt.Errorf("looking for an interrupted upload of %s: %w", title, err)
			}
			if found {
				log.Info("an interrupted upload of this postmortem draft went through; recording it")
				return s.mark(ctx, key, statePosted)
			}
		} else {
			log.Warn("an earlier upload of this postmortem draft was interrupted; uploading it again")
			comment += "\n_(Sent again: an earlier upload of this version was interrupted and may have arrived too.)_"
		}
	}
	if err := s.mark(ctx, key, statePosting); err != nil {
		return err
	}
	f := incident.File{
		Name:    FileName(p.Incident, p.Version),
		Title:   title,
		Content: body,
		Comment: comment,
	}
	if err := s.cfg.Uploader.Upload(ctx, ch, f); err != nil {
		// After a failure whose outcome is unknown (a timeout, a lost
		// answer) the state stays "posting", so the retry looks first.
		if incident.Certain(err) {
			if merr := s.mark(context.WithoutCancel(ctx), key, stateFailed); merr != nil {
				log.Error("recording a failed postmortem upload", zap.Error(merr))
			}
		}
		return fmt.Errorf("uploading %s: %w", f.Name, err)
	}
	if err := s.mark(context.WithoutCancel(ctx), key, statePosted); err != nil {
		return err
	}
	log.Info("postmortem draft posted", zap.String("channel", ch))
	return nil
}

func (s *Service) mark(ctx context.Context, key, state string) error {
	err := s.store.Update(ctx, func(tx incident.Tx) error {
		return tx.PutKey(key, []byte(state), s.clock.Now())
	})
	if err != nil {
		return fmt.Errorf("recording post state %s of %s: %w", state, key, err)
	}
	return nil
}
