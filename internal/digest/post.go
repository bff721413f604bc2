package digest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// JobPost is the job kind that posts a digest. All digest jobs share the
// job key "digest", so they run one at a time, in order.
const JobPost = "digest.post"

const jobKey = "digest"

// Keys in the store (Tx.Key/PutKey).
const (
	// sinceKey records when this bot first ran the schedule.
	sinceKey = "digest:since"
)

// WeekKey is the idempotency key of the weekly post of w: "digest:2026-W47".
func WeekKey(w Week) string { return "digest:" + w.String() }

// Post states recorded under a post's key.
const (
	StateQueued  = "queued"  // a job will post it
	StatePosting = "posting" // the post call started
	StatePosted  = "posted"  // the chat platform accepted it
	StateFailed  = "failed"  // the last post call failed; the job retries
)

// PostRecord is the value stored under a post's key.
type PostRecord struct {
	State   string    `json:"state"`
	Period  string    `json:"period"`
	Channel string    `json:"channel,omitempty"`
	At      time.Time `json:"at"`
	// Began is when the first post whose outcome is unknown began (state
	// posting): an interrupted post is looked for since then.
	Began time.Time `json:"began,omitzero"`
}

// Posted returns the record of key, and false if there is none.
func Posted(tx incident.Tx, key string) (PostRecord, bool, error) {
	raw, ok, err := tx.Key(key)
	if err != nil || !ok {
		return PostRecord{}, false, err
	}
	var r PostRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return PostRecord{}, true, fmt.Errorf("decoding %s: %w", key, err)
	}
	return r, true, nil
}

// PutRecord stores r under key, stamped with r.At.
func PutRecord(tx incident.Tx, key string, r PostRecord) error {
	raw, _ := json.Marshal(r)
	return tx.PutKey(key, raw, r.At)
}

// postPayload is a JobPost job's payload.
type postPayload struct {
	Key     string    `json:"key"` // the idempotency key of this post
	Week    string    `json:"week,omitempty"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Channel string    `json:"channel"`
}

func (p postPayload) period(loc *time.Location) (Period, error) {
	if p.Week != "" {
		w, err := ParseWeek(p.Week)
		if err != nil {
			return Period{}, err
		}
		return w.Period(loc), nil
	}
	if p.From.IsZero() || !p.To.After(p.From) {
		return Period{}, incident.Errorf(incident.EINVALID, "digest job without a period")
	}
	return Period{From: p.From.In(loc), To: p.To.In(loc)}, nil
}

// EnqueueWeek schedules the post of week w's digest to channel, once: if
// the week's key is recorded (queued or posted), it does nothing and
// reports false. The key and the job are written in one transaction.
func EnqueueWeek(ctx context.Context, store incident.Store, w Week, channel string, now time.Time) (bool, error) {
	queued := false
	err := store.Update(ctx, func(tx incident.Tx) error {
		queued = false // the store may run this again (another replica committed first)
		key := WeekKey(w)
		if _, ok, err := tx.Key(key); err != nil || ok {
			return err
		}
		if err := PutRecord(tx, key, PostRecord{State: StateQueued, Period: w.String(), Channel: channel, At: now}); err != nil {
			return err
		}
		queued = true
		return enqueue(tx, postPayload{Key: key, Week: w.String(), Channel: channel}, now)
	})
	if err != nil {
		return false, fmt.Errorf("queueing the digest of %s: %w", w, err)
	}
	return queued, nil
}

// EnqueueRequest schedules the post of period p's digest on an operator's
// request (`bot digest --post`). A week whose digest was not posted yet is
// posted as the scheduled post would be, once, and the schedule will not
// post it again; otherwise (a custom period, or a week posted already) the
// request is its own post, made once however often its job is retried.
// A week whose scheduled post is still queued is not posted twice: the
// request reports false.
func EnqueueRequest(ctx context.Context, store incident.Store, p Period, channel string, now time.Time) (bool, error) {
	if !p.Week.IsZero() {
		var rec PostRecord
		var found bool
		err := store.View(ctx, func(tx incident.Tx) error {
			var err error
			rec, found, err = Posted(tx, WeekKey(p.Week))
			return err
		})
		if err != nil {
			return false, err
		}
		if !found {
			return EnqueueWeek(ctx, store, p.Week, channel, now)
		}
		if rec.State != StatePosted {
			return false, nil
		}
	}
	key := "digest:request:" + rand.Text()
	err := store.Update(ctx, func(tx incident.Tx) error {
		if err := PutRecord(tx, key, PostRecord{State: StateQueued, Period: p.Label(), Channel: channel, At: now}); err != nil {
			return err
		}
		pl := postPayload{Key: key, From: p.From, To: p.To, Channel: channel}
		if !p.Week.IsZero() {
			pl.Week = p.Week.String()
		}
		return enqueue(tx, pl, now)
	})
	if err != nil {
		return false, fmt.Errorf("queueing the digest of %s: %w", p.Label(), err)
	}
	return true, nil
}

func enqueue(tx incident.Tx, p postPayload, now time.Time) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return tx.Enqueue(&incident.Job{Kind: JobPost, Key: jobKey, Due: now, Payload: raw})
}

// PosterConfig configures a Poster.
type PosterConfig struct {
	Store incident.Store
	Clock incident.Clock
	// Chat posts the digest: as a Markdown file with a summary when it is an
	// incident.Uploader, as a text message otherwise.
	Chat         incident.Chat
	Location     *time.Location
	TemplatesDir string
	Logger       *zap.Logger
	// Chart posts the digest's chart (a PNG, see Chart) after the digest,
	// when Chat is an incident.Uploader.
	Chart bool
	// Directory names follow-up owners; nil: mentions.
	Directory incident.Directory
}

// Poster runs JobPost jobs.
type Poster struct {
	cfg PosterConfig
	log *zap.Logger
}

// NewPoster returns a poster.
func NewPoster(cfg PosterConfig) *Poster {
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Poster{cfg: cfg, log: cfg.Logger.Named("digest")}
}

// Handle posts one digest, once.
//
// The post's state is recorded around the call: "posting" before it,
// "posted" or "failed" after it. A retry of a posted digest does nothing and
// a retry after a failed call posts. A retry that finds "posting" (a kill,
// or a lost answer, after the call began) first looks in the channel for
// the digest shared since the post began (incident.Finder; the file's
// title names its period) and records it as posted if it is there. Only a
// chat that cannot look (or a look-up the platform refuses) posts again,
// saying so, rather than risk a week without a digest.
func (p *Poster) Handle(ctx context.Context, job incident.Job) error {
	var pl postPayload
	if err := json.Unmarshal(job.Payload, &pl); err != nil || pl.Key == "" || pl.Channel == "" {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobPost, job.Payload)
	}
	period, err := pl.period(p.cfg.Location)
	if err != nil {
		return err
	}
	log := p.log.With(zap.String("period", period.Label()), zap.String("channel", pl.Channel))
	var rec PostRecord
	err = p.cfg.Store.View(ctx, func(tx incident.Tx) error {
		var err error
		rec, _, err = Posted(tx, pl.Key)
		return err
	})
	if err != nil {
		return err
	}
	if rec.State == StatePosted {
		log.Info("digest already posted")
		return nil
	}
	r, err := Generate(ctx, p.cfg.Store, period, Options{TemplatesDir: p.cfg.TemplatesDir, Now: p.cfg.Clock.Now(), Chart: p.cfg.Chart, Directory: p.cfg.Directory})
	if err != nil {
		return err
	}
	if r.Warning != nil {
		log.Warn("custom digest template failed; used the built-in one", zap.Error(r.Warning))
	}
	summary := r.Summary()
	// began is when the first attempt whose outcome is unknown began: the
	// look-up window, kept across further interrupted attempts.
	began := p.cfg.Clock.Now()
	if rec.State == StatePosting {
		began = rec.At
		if !rec.Began.IsZero() {
			began = rec.Began
		}
		found, looked, err := p.find(ctx, pl.Channel, r, began)
		if err != nil {
			return err
		}
		if found {
			log.Info("an interrupted post of this digest went through; recording it")
			return p.record(ctx, pl, period, StatePosted, time.Time{})
		}
		if !looked {
			log.Warn("an earlier post of this digest was interrupted; posting it again")
			summary += "\n_(Sent again: an earlier post of this digest was interrupted and may have arrived too.)_"
		}
	}
	mark := func(ctx context.Context, state string) error {
		b := time.Time{}
		if state == StatePosting {
			b = began
		}
		return p.record(ctx, pl, period, state, b)
	}
	if err := mark(ctx, StatePosting); err != nil {
		return err
	}
	if err := p.post(ctx, pl.Channel, r, summary); err != nil {
		// A failure after which the post may have gone through (a timeout,
		// a lost answer, a 5xx) leaves "posting", so the retry looks first.
		if incident.Certain(err) {
			if merr := mark(context.WithoutCancel(ctx), StateFailed); merr != nil {
				log.Error("recording a failed digest post", zap.Error(merr))
			}
		}
		return fmt.Errorf("posting the digest of %s: %w", period.Label(), err)
	}
	if err := mark(context.WithoutCancel(ctx), StatePosted); err != nil {
		return err
	}
	log.Info("digest posted", zap.Int("opened", r.Digest.Opened), zap.Int("resolved", r.Digest.Resolved))
	return nil
}

// record writes the post's state under its key.
func (p *Poster) record(ctx context.Context, pl postPayload, period Period, state string, began time.Time) error {
	err := p.cfg.Store.Update(ctx, func(tx incident.Tx) error {
		return PutRecord(tx, pl.Key, PostRecord{State: state, Period: period.Label(), Channel: pl.Channel, At: p.cfg.Clock.Now(), Began: began})
	})
	if err != nil {
		return fmt.Errorf("recording digest state %s: %w", state, err)
	}
	return nil
}

// find looks for the digest r in channel since began, as it would be
// posted: a file with its title, or a message with its key. looked is
// false when the chat cannot look.
func (p *Poster) find(ctx context.Context, channel string, r Rendered, began time.Time) (found, looked bool, err error) {
	f, ok := p.cfg.Chat.(incident.Finder)
	if !ok {
		return false, false, nil
	}
	if _, up := p.cfg.Chat.(incident.Uploader); up {
		// A title is not unique (an operator may ask for a week's digest
		// again), so the window opens only a little before the attempt.
		found, err = f.FindFile(ctx, channel, "", fileTitle(r), began.Add(-fileSkew))
	} else {
		var id string
		id, err = f.FindPost(ctx, channel, "", postKey(r), began.Add(-incident.FindSkew))
		found = id != ""
	}
	if err != nil {
		return false, false, fmt.Errorf("looking for an interrupted post of the digest of %s: %w", r.Digest.Label, err)
	}
	return found, true, nil
}

// fileSkew allows for the chat platform's clock being behind ours when an
// interrupted upload is looked for by its title.
const fileSkew = 5 * time.Second

func fileTitle(r Rendered) string { return "Incident digest " + r.Digest.Label }

func postKey(r Rendered) incident.PostKey {
	return incident.PostKey{Kind: incident.PostDigest, Period: r.Digest.Label}
}

func (p *Poster) post(ctx context.Context, channel string, r Rendered, summary string) error {
	if up, ok := p.cfg.Chat.(incident.Uploader); ok {
		err := up.Upload(ctx, channel, incident.File{
			Name: r.FileName(), Title: fileTitle(r), Content: r.Body, Comment: summary,
		})
		if err == nil && r.Chart != nil {
			p.postChart(ctx, up, channel, r)
		}
		return err
	}
	_, err := p.cfg.Chat.Post(ctx, channel, incident.Message{Kind: incident.MessageText, Text: summary + "\n\n" + string(r.Body), Key: postKey(r)})
	return err
}

// postChart shares the digest's chart after the digest itself. The digest
// is what is recorded as posted exactly once; a chart that cannot be
// uploaded is logged, not retried, so it never makes the digest repeat.
func (p *Poster) postChart(ctx context.Context, up incident.Uploader, channel string, r Rendered) {
	err := up.Upload(ctx, channel, incident.File{
		Name: r.ChartName(), Title: fmt.Sprintf("Incidents per week and median time to resolve, %d weeks to %s", ChartWeeks, r.Digest.Label),
		Content: r.Chart,
	})
	if err != nil {
		p.log.Warn("cannot post the digest chart", zap.String("period", r.Digest.Label), zap.Error(err))
	}
}
