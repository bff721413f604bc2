package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNameTaken is returned by Chat.CreateChannel when the name is in use.
var ErrNameTaken = errors.New("channel name taken")

// ChannelRef identifies a chat channel.
type ChannelRef struct {
	ID   string
	Name string
}

// MessageKind says what a chat message shows; adapters render each kind in
// their own format (Block Kit for Slack, plain text for the shell).
type MessageKind int

// Message kinds.
const (
	// MessageSummary is the incident's summary card in its channel: title,
	// severity, status, roles, links, and the action buttons. It is posted
	// once and then updated in place.
	MessageSummary MessageKind = iota + 1
	// MessageAnnouncement announces the incident in the announce channel
	// with a link to its channel; it is updated in place too.
	MessageAnnouncement
	// MessageEvents tells timeline events in the incident's channel.
	MessageEvents
	// MessageText is plain text (reminders, digests, errors).
	MessageText
)

// Message is a chat message to render.
type Message struct {
	Kind     MessageKind
	Incident *Incident
	Events   []Event
	Text     string
	ThreadID string // reply in this thread (message id), if set
}

// Chat is what the chat sync needs from the chat platform. Adapters map
// their errors: ErrNameTaken, ENOTFOUND, retryable errors (rate limits,
// outages) via Retryable, anything else is treated as permanent.
type Chat interface {
	// CreateChannel creates a channel with exactly this name.
	CreateChannel(ctx context.Context, name string) (ChannelRef, error)
	// FindChannel finds a channel by name that the bot itself created and
	// that is not archived: one we asked for before a crash hid the answer.
	// A channel of that name that is someone else's (or archived) is
	// ErrNameTaken; no channel at all is ENOTFOUND.
	FindChannel(ctx context.Context, name string) (ChannelRef, error)
	SetTopic(ctx context.Context, channelID, topic string) error
	// Invite adds users to a channel; users already there are not an error.
	Invite(ctx context.Context, channelID string, users []string) error
	// Post posts a message and returns its id (Slack: its ts).
	Post(ctx context.Context, channelID string, m Message) (string, error)
	// Update replaces a message posted earlier; ENOTFOUND if it is gone
	// (deleted by someone), in which case the sync posts a new one.
	Update(ctx context.Context, channelID, messageID string, m Message) error
}

// Bookmarker is implemented by chats that can bookmark a link in a channel.
type Bookmarker interface {
	Bookmark(ctx context.Context, channelID, title, url string) error
}

// File is a document to share in a channel (a postmortem draft).
type File struct {
	Name     string // file name, e.g. "INC-7-postmortem-v2.md"
	Title    string
	Content  []byte
	Comment  string // the message that goes with the file
	ThreadID string // share in this thread, if set
}

// Uploader is implemented by chats that can share a file in a channel.
type Uploader interface {
	Upload(ctx context.Context, channelID string, f File) error
}

type chatSyncPayload struct {
	Incident int64 `json:"incident"`
}

// ChatSync converges the chat platform on an incident's state: one channel
// (created once, adopted after a crash, never duplicated), its topic, its
// members, the summary and announcement messages updated in place, and the
// timeline events told in the channel in order. Every step records its
// progress in the store before or right after the outside call, so a retry
// or a restart resumes where it stopped.
type ChatSync struct {
	Store           Store
	Chat            Chat
	Clock           Clock
	AnnounceChannel string // channel id; empty: no announcements
	// MaxEventsPerMessage caps how many pending events one message tells;
	// a backlog is told in a few long messages rather than hundreds.
	MaxEventsPerMessage int
}

// Handle runs one chat.sync job.
func (c *ChatSync) Handle(ctx context.Context, job Job) error {
	var p chatSyncPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 {
		return Errorf(EINVALID, "bad chat.sync payload %q", job.Payload)
	}
	return c.Sync(ctx, p.Incident)
}

// Sync converges incident n now.
func (c *ChatSync) Sync(ctx context.Context, n int64) error {
	inc, err := c.load(ctx, n)
	if err != nil {
		return err
	}
	if inc.Chat.ChannelID == "" {
		// createChannel returns the incident as it last saw it even when
		// a store write fails, but the error names the incident by number
		// so that no failure can turn into a nil dereference here.
		if inc, err = c.createChannel(ctx, inc); err != nil {
			return fmt.Errorf("creating channel for %s: %w", FormatID(n), err)
		}
	}
	// Order matters when the platform makes us wait: people and what they
	// need to read come first (invites, the summary, the timeline), the
	// shared announce channel next, cosmetics (topic, bookmark) last, so a
	// slow rate tier for the latter never holds the former back.
	ch := inc.Chat.ChannelID
	if missing := missingPeople(inc); len(missing) > 0 {
		if err := c.Chat.Invite(ctx, ch, missing); err != nil {
			return fmt.Errorf("inviting to %s: %w", inc.ID(), err)
		}
		if inc, err = c.saveChat(ctx, n, func(r *ChatRef) { r.Invited = append(r.Invited, missing...) }); err != nil {
			return err
		}
	}
	if inc, err = c.syncSummary(ctx, inc); err != nil {
		return err
	}
	if inc.Chat.AnnounceID == "" { // a new incident is announced at once
		if inc, err = c.syncAnnouncement(ctx, inc); err != nil {
			return err
		}
	}
	if inc, err = c.postEvents(ctx, inc); err != nil {
		return err
	}
	if inc, err = c.syncAnnouncement(ctx, inc); err != nil {
		return err
	}
	if inc, err = c.shareUpdates(ctx, inc); err != nil {
		return err
	}
	// A refusal recorded just now (by the announcement or a thread copy)
	// is told in the channel now, not at the incident's next change.
	if inc, err = c.postEvents(ctx, inc); err != nil {
		return err
	}
	if topic := Topic(inc); topic != inc.Chat.Topic {
		if err := c.Chat.SetTopic(ctx, ch, topic); err != nil {
			return fmt.Errorf("setting topic of %s: %w", inc.ID(), err)
		}
		if inc, err = c.saveChat(ctx, n, func(r *ChatRef) { r.Topic = topic }); err != nil {
			return err
		}
	}
	if b, ok := c.Chat.(Bookmarker); ok && inc.Pager.URL != "" && !inc.Chat.BookmarkSet {
		if err := b.Bookmark(ctx, ch, "PagerDuty "+inc.Pager.incidentLabel(), inc.Pager.URL); err != nil {
			return fmt.Errorf("bookmarking PagerDuty incident in %s: %w", inc.ID(), err)
		}
		if _, err = c.saveChat(ctx, n, func(r *ChatRef) { r.BookmarkSet = true }); err != nil {
			return err
		}
	}
	return nil
}

func (p PagerRef) incidentLabel() string {
	if p.Number != 0 {
		return "#" + strconv.FormatInt(p.Number, 10)
	}
	return p.IncidentID
}

func (c *ChatSync) load(ctx context.Context, n int64) (*Incident, error) {
	var inc *Incident
	err := c.Store.View(ctx, func(tx Tx) error {
		var err error
		inc, err = tx.Incident(n)
		return err
	})
	return inc, err
}

// saveChat changes only the chat bookkeeping of incident n. It does not bump
// the revision: the incident itself did not change.
func (c *ChatSync) saveChat(ctx context.Context, n int64, fn func(*ChatRef)) (*Incident, error) {
	var out *Incident
	err := writeShared(ctx, c.Store, func(tx Tx) error {
		inc, err := tx.Incident(n)
		if err != nil {
			return err
		}
		fn(&inc.Chat)
		out = inc
		return tx.PutIncident(inc)
	})
	if err != nil {
		return nil, fmt.Errorf("saving chat state of %s: %w", FormatID(n), err)
	}
	return out, nil
}

// createChannel creates the incident's channel exactly once.
//
// A crash can separate the platform's "created" from our record of it. So a
// name is written to NamesTried before it is asked for. A name taken on its
// first try belongs to someone else: it goes to NamesTaken and the next
// candidate (with a numeric suffix) is tried. A name we tried before whose
// answer we never saw, reported taken now, may be our own channel from that
// attempt: it is adopted if the platform says the bot created it
// (FindChannel), and skipped otherwise.
func (c *ChatSync) createChannel(ctx context.Context, inc *Incident) (*Incident, error) {
	n := inc.Number
	for attempt := 0; attempt < 20; attempt++ {
		name := ChannelName(inc.Number, inc.Title, attempt)
		if slices.Contains(inc.Chat.NamesTaken, name) {
			continue
		}
		triedBefore := slices.Contains(inc.Chat.NamesTried, name)
		if !triedBefore {
			saved, err := c.saveChat(ctx, n, func(r *ChatRef) { r.NamesTried = append(r.NamesTried, name) })
			if err != nil {
				return inc, err
			}
			inc = saved
		}
		ref, err := c.Chat.CreateChannel(ctx, name)
		if errors.Is(err, ErrNameTaken) && triedBefore {
			ref, err = c.Chat.FindChannel(ctx, name)
			if ErrorCode(err) == ENOTFOUND { // taken, yet not there to adopt
				err = ErrNameTaken
			}
		}
		switch {
		case errors.Is(err, ErrNameTaken):
			saved, err := c.saveChat(ctx, n, func(r *ChatRef) { r.NamesTaken = append(r.NamesTaken, name) })
			if err != nil {
				return inc, err
			}
			inc = saved
			continue
		case err != nil:
			return inc, err
		}
		now := c.Clock.Now()
		var out *Incident
		err = c.Store.Update(ctx, func(tx Tx) error {
			cur, err := tx.Incident(n)
			if err != nil {
				return err
			}
			cur.Chat.ChannelID, cur.Chat.ChannelName = ref.ID, ref.Name
			// Everything up to the declaration is shown by the summary card;
			// later events (a note added while the platform was down) are
			// still told in the channel.
			if cur.Chat.PostedSeq == 0 {
				cur.Chat.PostedSeq = 1
			}
			if cur.Chat.SharedSeq == 0 {
				cur.Chat.SharedSeq = cur.Chat.PostedSeq
			}
			if err := tx.PutIncident(cur); err != nil {
				return err
			}
			ev := Event{Incident: n, At: now, Recorded: now, Kind: EventChannelCreated, Actor: BotActor,
				Text: "Channel #" + ref.Name + " created", Key: "channel-created", Quiet: true,
				Data: map[string]string{"channel_id": ref.ID, "channel": ref.Name}}
			if _, err := tx.AppendEvent(&ev); err != nil {
				return err
			}
			out = cur
			return nil
		})
		if err != nil {
			return inc, fmt.Errorf("recording channel %s: %w", ref.Name, err)
		}
		return out, nil
	}
	return inc, Errorf(ECONFLICT, "every channel name tried for %s is taken", inc.ID())
}

func missingPeople(inc *Incident) []string {
	var out []string
	for _, p := range inc.People() {
		if !slices.Contains(inc.Chat.Invited, p) {
			out = append(out, p)
		}
	}
	return out
}

// SummaryFingerprint covers everything a summary card may show (adapters
// render the summary from these fields only, plus the time it was made):
// the card is updated when it changes, not on every timeline event, which
// keeps a busy incident's channel within the platform's posting pace.
func SummaryFingerprint(inc *Incident) string {
	return fingerprint(inc.Title, inc.Description, inc.Severity, inc.Status, inc.Roles, inc.DeclaredAt, inc.DeclaredBy,
		inc.AcknowledgedAt, inc.MitigatedAt, inc.ResolvedAt, inc.Pager.URL, inc.Pager.Number, inc.Pager.Status,
		inc.Chat.ChannelID, inc.Services, len(inc.Followups), inc.Impact, inc.StartedAt)
}

// AnnounceFingerprint covers everything an announcement may show: the
// announce channel is shared by every incident, so it is updated only when
// one of these changes.
func AnnounceFingerprint(inc *Incident) string {
	return fingerprint(inc.Title, inc.Severity, inc.Status, inc.Chat.ChannelID, inc.Roles[RoleCommander], inc.Pager.URL)
}

func fingerprint(parts ...any) string {
	b, _ := json.Marshal(parts) // maps marshal with sorted keys
	return string(b)
}

func (c *ChatSync) syncSummary(ctx context.Context, inc *Incident) (*Incident, error) {
	shows := SummaryFingerprint(inc)
	if inc.Chat.SummaryID != "" && inc.Chat.SummaryShows == shows {
		return inc, nil
	}
	m := Message{Kind: MessageSummary, Incident: inc}
	rev := inc.Revision
	posted := func(id string) func(r *ChatRef) {
		return func(r *ChatRef) { r.SummaryID, r.SummaryRev, r.SummaryShows = id, rev, shows }
	}
	if inc.Chat.SummaryID == "" {
		id, err := c.Chat.Post(ctx, inc.Chat.ChannelID, m)
		if err != nil {
			return inc, fmt.Errorf("posting summary of %s: %w", inc.ID(), err)
		}
		return c.saveChat(ctx, inc.Number, posted(id))
	}
	err := c.Chat.Update(ctx, inc.Chat.ChannelID, inc.Chat.SummaryID, m)
	if ErrorCode(err) == ENOTFOUND { // somebody deleted it: post a new one
		id, err := c.Chat.Post(ctx, inc.Chat.ChannelID, m)
		if err != nil {
			return inc, fmt.Errorf("reposting summary of %s: %w", inc.ID(), err)
		}
		return c.saveChat(ctx, inc.Number, posted(id))
	}
	if err != nil {
		return inc, fmt.Errorf("updating summary of %s: %w", inc.ID(), err)
	}
	return c.saveChat(ctx, inc.Number, posted(inc.Chat.SummaryID))
}

func (c *ChatSync) syncAnnouncement(ctx context.Context, inc *Incident) (*Incident, error) {
	ch := inc.Chat.AnnounceCh
	if ch == "" {
		ch = c.AnnounceChannel
	}
	shows := AnnounceFingerprint(inc)
	if ch == "" || inc.Chat.AnnounceFailed || (inc.Chat.AnnounceID != "" && inc.Chat.AnnounceShows == shows) {
		return inc, nil
	}
	m := Message{Kind: MessageAnnouncement, Incident: inc}
	rev := inc.Revision
	if inc.Chat.AnnounceID != "" {
		err := c.Chat.Update(ctx, ch, inc.Chat.AnnounceID, m)
		if err == nil {
			return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.AnnounceRev, r.AnnounceShows = rev, shows })
		}
		if ErrorCode(err) != ENOTFOUND {
			return c.announceFailed(ctx, inc, ch, fmt.Errorf("updating announcement of %s: %w", inc.ID(), err))
		}
		// Somebody deleted it: announce again.
	}
	id, err := c.Chat.Post(ctx, ch, m)
	if err != nil {
		return c.announceFailed(ctx, inc, ch, fmt.Errorf("announcing %s: %w", inc.ID(), err))
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.AnnounceCh, r.AnnounceID, r.AnnounceRev, r.AnnounceShows = ch, id, rev, shows })
}

// announceFailed keeps a refused announcement from stalling the incident's
// own channel: a retryable failure is retried, but a refusal for good (a
// wrong announce channel, no access) is told in the incident's channel and
// the announcement is given up for this incident.
func (c *ChatSync) announceFailed(ctx context.Context, inc *Incident, ch string, err error) (*Incident, error) {
	if _, retry := IsRetryable(err); retry {
		return inc, err
	}
	return c.optionalFailed(ctx, inc, ch, "announce-failed",
		fmt.Sprintf("I could not announce %s in <#%s>: %s. Check BOT_ANNOUNCE_CHANNEL and that the bot is in that channel.", inc.ID(), ch, ErrorMessage(err)))
}

// optionalFailed gives up the announce channel (an optional destination)
// for incident inc after a refusal for good: AnnounceFailed stops every
// later announcement update and thread copy, and the refusal is recorded
// on the timeline under key, so it is told in the incident's channel once.
func (c *ChatSync) optionalFailed(ctx context.Context, inc *Incident, ch, key, text string) (*Incident, error) {
	now := c.Clock.Now()
	var out *Incident
	serr := c.Store.Update(ctx, func(tx Tx) error {
		cur, err2 := tx.Incident(inc.Number)
		if err2 != nil {
			return err2
		}
		cur.Chat.AnnounceFailed = true
		if err2 := tx.PutIncident(cur); err2 != nil {
			return err2
		}
		ev := Event{Incident: inc.Number, At: now, Recorded: now, Kind: EventError, Actor: BotActor, Key: key,
			Text: text, Data: map[string]string{"channel": ch}}
		if _, err2 := tx.AppendEvent(&ev); err2 != nil {
			return err2
		}
		out = cur
		return nil
	})
	if serr != nil {
		return inc, serr
	}
	return out, nil
}

// postEvents tells the events recorded since the last post, a batch per
// message, oldest first.
func (c *ChatSync) postEvents(ctx context.Context, inc *Incident) (*Incident, error) {
	max := c.MaxEventsPerMessage
	if max <= 0 {
		max = 20
	}
	for {
		var pending []Event
		err := c.Store.View(ctx, func(tx Tx) error {
			var err error
			pending, err = tx.EventsAfter(inc.Number, inc.Chat.PostedSeq)
			return err
		})
		if err != nil {
			return inc, err
		}
		if len(pending) == 0 {
			return inc, nil
		}
		var batch []Event
		last := inc.Chat.PostedSeq
		for _, ev := range pending {
			if len(batch) == max {
				break
			}
			last = ev.Seq
			if !ev.Quiet {
				batch = append(batch, ev)
			}
		}
		// One outside call, then its progress is saved: the thread copies
		// of status updates are a separate outbox (shareUpdates), so a
		// copy that must wait, or fails, never makes this post again.
		if len(batch) > 0 {
			if _, err := c.Chat.Post(ctx, inc.Chat.ChannelID, Message{Kind: MessageEvents, Incident: inc, Events: batch}); err != nil {
				return inc, fmt.Errorf("telling %d events in %s: %w", len(batch), inc.ID(), err)
			}
		}
		if inc, err = c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.PostedSeq = last }); err != nil {
			return inc, err
		}
	}
}

// shareUpdates copies the status updates told in the incident's channel
// into its announcement's thread, each once, in order, after the channel
// post: SharedSeq is the last event considered for a copy. The announce
// channel is optional: a copy it refuses for good (archived, gone, the bot
// removed, the message refused) is said once in the incident's channel
// and copies stop there, rather than block the incident's channel.
func (c *ChatSync) shareUpdates(ctx context.Context, inc *Incident) (*Incident, error) {
	shared := inc.Chat.SharedSeq
	if shared == 0 {
		// Recorded by a version that copied updates along with the
		// channel post: everything told was shared.
		shared = inc.Chat.PostedSeq
	}
	if shared >= inc.Chat.PostedSeq {
		return inc, nil
	}
	upTo := inc.Chat.PostedSeq
	if inc.Chat.AnnounceID != "" && !inc.Chat.AnnounceFailed {
		var pending []Event
		err := c.Store.View(ctx, func(tx Tx) error {
			var err error
			pending, err = tx.EventsAfter(inc.Number, shared)
			return err
		})
		if err != nil {
			return inc, err
		}
		for _, ev := range pending {
			if ev.Seq > upTo {
				break
			}
			if ev.Kind != EventStatusUpdate || ev.Quiet {
				continue
			}
			m := Message{Kind: MessageEvents, Incident: inc, Events: []Event{ev}, ThreadID: inc.Chat.AnnounceID}
			if _, err := c.Chat.Post(ctx, inc.Chat.AnnounceCh, m); err != nil {
				err = fmt.Errorf("sharing a status update of %s: %w", inc.ID(), err)
				if _, retry := IsRetryable(err); retry {
					return inc, err
				}
				return c.optionalFailed(ctx, inc, inc.Chat.AnnounceCh, "share-failed",
					fmt.Sprintf("I could not copy status updates of %s into the announcement's thread in <#%s>: %s. Later updates are told here only.", inc.ID(), inc.Chat.AnnounceCh, ErrorMessage(err)))
			}
			seq := ev.Seq
			if inc, err = c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.SharedSeq = max(r.SharedSeq, seq) }); err != nil {
				return inc, err
			}
		}
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.SharedSeq = max(r.SharedSeq, upTo) })
}

// ChannelName is the name of incident n's channel: "inc-<n>-<slug of title>"
// within the rules chat platforms share (lowercase ASCII letters, digits,
// '-' and '_', at most 80 characters). A title with nothing to slug (another
// script, emoji) yields "inc-<n>". attempt > 0 adds a numeric suffix for
// retries after a name was taken.
func ChannelName(n int64, title string, attempt int) string {
	const maxLen = 80
	base := "inc-" + strconv.FormatInt(n, 10)
	suffix := ""
	if attempt > 0 {
		suffix = "-" + strconv.Itoa(attempt+1)
	}
	slug := Slug(title)
	room := maxLen - len(base) - len(suffix) - 1
	if len(slug) > room {
		slug = strings.TrimRight(slug[:max(room, 0)], "-_")
		if i := strings.LastIndexByte(slug, '-'); i > room/2 {
			slug = slug[:i]
		}
	}
	if slug == "" {
		return base + suffix
	}
	return base + "-" + slug + suffix
}

// Slug lowercases title, folds common Latin accents, and joins the runs of
// letters and digits with '-'. Anything else (other scripts, emoji,
// punctuation) is dropped.
func Slug(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		piece, ok := latinFold[r]
		if !ok && ((r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			piece, ok = string(r), true
		}
		if !ok {
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		b.WriteString(piece)
		dash = false
	}
	return b.String()
}

var latinFold = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'æ': "ae", 'ç': "c",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ì': "i", 'í': "i", 'î': "i", 'ï': "i",
	'ñ': "n", 'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'œ': "oe",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ý': "y", 'ÿ': "y", 'ß': "ss", 'ł': "l",
	'ś': "s", 'š': "s", 'ž': "z", 'ź': "z", 'ż': "z", 'č': "c", 'ć': "c", 'ř': "r",
	'ě': "e", 'ę': "e", 'ą': "a", 'ń': "n", 'ő': "o", 'ű': "u", 'ğ': "g", 'ı': "i", 'ş': "s",
}

// Topic is the channel topic for inc: plain text (platforms do not format
// topics), at most 250 characters. It leaves the status to the summary card:
// platforms announce every topic change in the channel and rate-limit it
// hard, so the topic changes only with the severity or the title.
func Topic(inc *Incident) string {
	t := fmt.Sprintf("%s %s | %s", inc.ID(), inc.Severity, inc.Title)
	return truncate(t, 250)
}

// SinceText renders how long ago t was, for summaries ("12m", "3h5m").
func SinceText(now, t time.Time) string {
	d := now.Sub(t).Round(time.Minute)
	if d < time.Minute {
		return "just now"
	}
	return strings.TrimSuffix(d.String(), "0s")
}
