package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// Key names the message so that it can be found again after a post
	// whose outcome a kill or a lost answer hid (see Finder). Adapters
	// attach it to the message where the platform keeps it (Slack: message
	// metadata); the zero Key attaches nothing.
	Key PostKey
}

// PostKey names a message the bot posts: the incident (or the digest's
// period), what kind of message it is, and which one. Two messages never
// share a key.
type PostKey struct {
	Incident string `json:"incident,omitempty"` // "INC-7"; empty for messages of no incident
	Kind     string `json:"kind"`               // PostSummary, PostAnnouncement, PostEvents, PostUpdateCopy, PostDigest…
	Seq      string `json:"seq,omitempty"`      // which one of its kind: the timeline sequence numbers it tells ("13-15")
	Period   string `json:"period,omitempty"`   // the digest's period ("2026-W48")
}

// PostKey kinds.
const (
	PostSummary      = "summary"
	PostAnnouncement = "announcement"
	PostEvents       = "events"
	PostUpdateCopy   = "update_copy" // a status update's copy in the announcement's thread
	// PostUnattendedCopy is a reminder's or an escalation's copy in the
	// announce channel, for a paged incident nobody is in (see shareUpdates).
	PostUnattendedCopy = "unattended_copy"
	PostDigest         = "digest"
)

// IsZero reports whether k names nothing.
func (k PostKey) IsZero() bool { return k == PostKey{} }

func (k PostKey) String() string {
	parts := []string{}
	for _, p := range []string{k.Incident, k.Kind, k.Seq, k.Period} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

// Finder is implemented by chats that can find what the bot posted. When
// the outcome of a post is unknown (the bot was killed, or the answer was
// lost, between the call and recording the message's id), the chat sync
// looks for the message before posting it again, so that a person sees it
// once.
type Finder interface {
	// FindPost returns the id of the bot's own message with this key in
	// channelID (among the replies to threadID when it is set) posted at
	// or after since, or "" when there is none.
	FindPost(ctx context.Context, channelID, threadID string, key PostKey, since time.Time) (string, error)
	// FindFile reports whether the bot shared a file with this title in
	// channelID (in threadID when set) at or after since.
	FindFile(ctx context.Context, channelID, threadID, title string, since time.Time) (bool, error)
}

// FindSkew widens a look-up's window back from when the post began: the
// platform stamps messages with its own clock, which may be behind ours.
const FindSkew = 2 * time.Minute

// OutcomeUnknown marks err as the failure of an outside call that may
// have been carried out all the same: a timeout, a broken connection, a
// 5xx. Adapters mark such failures; any other failure means the other side
// refused the call, so it certainly did nothing.
func OutcomeUnknown(err error) error {
	if err == nil {
		return nil
	}
	return &outcomeUnknownError{err}
}

type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string { return e.err.Error() }
func (e *outcomeUnknownError) Unwrap() error { return e.err }

// Certain reports whether a failed outside call certainly did nothing
// (see OutcomeUnknown).
func Certain(err error) bool {
	var u *outcomeUnknownError
	return !errors.As(err, &u)
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
// members, the summary and announcement messages updated in place, the
// timeline events told in the channel in order, and status updates copied
// into the announcement's thread. Every step records its progress in the
// store before or right after its one outside call, so a retry or a
// restart resumes where it stopped.
//
// Posts are an ordered outbox per destination (the channel's timeline
// messages, the thread copies, the summary card, the announcement): each
// message is recorded as under way (ChatRef.Sending) before the call and
// replaced by its id right after it. A run that finds a message under way
// (a kill, a lost answer, a timeout in between) looks for it by its key
// (Finder) before posting it again, so each is posted exactly once where
// the platform can be asked. A destination that refuses a message for good
// never blocks the others: the announce channel is given up for the
// incident and the refusal told once; a refused timeline entry or summary
// card is left out and the refusal told instead.
type ChatSync struct {
	Store           Store
	Chat            Chat
	Clock           Clock
	AnnounceChannel string // channel id; empty: no announcements
	// MaxEventsPerMessage caps how many pending events one message tells;
	// a backlog is told in a few long messages rather than hundreds.
	MaxEventsPerMessage int
	// Serial runs the steps that need only the channel (invites, summary,
	// first announcement; topic, bookmark) one after another instead of
	// side by side: for a chat whose calls take no time (the local shell),
	// so that its transcript reads in a fixed order.
	Serial bool
}

// backgroundKey marks calls that may wait behind others (WithBackground).
type backgroundKey struct{}

// WithBackground tells adapters that calls made with ctx are for work no
// person is waiting on yet (an incident an alert raised, nobody paged):
// when the platform's rate limits make calls queue, these leave room for
// the others, so that a page or a declaration that arrives in an alert
// storm gets its channel without waiting behind the storm's.
func WithBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// Background reports whether ctx was marked by WithBackground.
func Background(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// awaited reports whether a person is waiting for the incident's war room:
// it was declared by a person, or someone was paged for it (by the pager
// that raised it, or by the bot since). An incident an alert router raised,
// that nobody was paged for, is not: its chat work goes in the background.
func awaited(inc *Incident) bool {
	return !inc.Source.External() || inc.Pager.Linked()
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
	if !awaited(inc) {
		ctx = WithBackground(ctx)
	}
	if inc.Chat.ChannelID == "" {
		// createChannel returns the incident as it last saw it even when
		// a store write fails, but the error names the incident by number
		// so that no failure can turn into a nil dereference here.
		if inc, err = c.createChannel(ctx, inc); err != nil {
			return fmt.Errorf("creating channel for %s: %w", FormatID(n), err)
		}
	}
	if inc.Chat.SharedSeq == 0 && inc.Chat.PostedSeq > 0 {
		// Recorded by a version that copied status updates along with the
		// channel post: everything told so far was copied. Settled before
		// this sync tells anything new.
		told := inc.Chat.PostedSeq
		if inc, err = c.saveChat(ctx, n, func(r *ChatRef) {
			if r.SharedSeq == 0 {
				r.SharedSeq = told
			}
		}); err != nil {
			return err
		}
	}
	// Order matters when the platform makes us wait: people and what they
	// need to read come first (invites, the summary, the timeline), the
	// shared announce channel next, cosmetics (topic, bookmark) last, so a
	// slow rate tier for the latter never holds the former back.
	//
	// Once the channel exists, the invite and the summary card need only
	// its id, not each other: they run side by side, so a page's war room
	// (channel, on-call person in it, summary posted) is two round trips,
	// not three. A new incident's announcement could go with them, but its
	// store write before the post would then compete with the card's for
	// the commit on the war room's path (measured: about +20 ms for an
	// alert's war room on a busy machine), and nobody waits in the announce channel
	// for it; it follows the card. The timeline comes after the card
	// (people read the card first).
	if inc, err = c.together(ctx, inc, c.syncInvites, c.syncSummary); err != nil {
		return err
	}
	if inc, err = c.firstAnnouncement(ctx, inc); err != nil {
		return err
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
	_, err = c.together(ctx, inc, c.syncTopic, c.syncBookmark)
	return err
}

// chatStep is one step of a sync: at most one outside call at a time, each
// followed by saving its own progress (its own fields of the chat record,
// or its own slot of ChatRef.Sending) through saveChat or giveUp, which
// read, change and write the record in one store transaction. That is why
// steps may run side by side: neither overwrites what the other saved.
type chatStep func(ctx context.Context, inc *Incident) (*Incident, error)

// together runs steps side by side from the same incident and returns the
// incident as the store holds it once all have finished, with their
// errors (in the order of steps) joined. A failing step does not stop the
// others: each one's progress is saved, and the job's retry resumes the
// rest. With Serial set, or one step, they run one after another.
func (c *ChatSync) together(ctx context.Context, inc *Incident, steps ...chatStep) (*Incident, error) {
	if c.Serial || len(steps) == 1 {
		for _, step := range steps {
			out, err := step(ctx, inc)
			if err != nil {
				// As the steps ran before they went side by side: the
				// first failure ends the sync, and its retry starts over.
				return out, err
			}
			inc = out
		}
		return inc, nil
	}
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() {
			// A panic here would not reach the queue's recover: it
			// is turned into the error the queue dead-letters.
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("chat sync of %s %w: %v\n%s", inc.ID(), ErrPanicked, p, debug.Stack())
				}
			}()
			_, errs[i] = step(ctx, inc)
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if e := slices.DeleteFunc(errs, func(e error) bool { return e == nil }); len(e) == 1 {
		err = e[0] // one failure reads (and is classified) as it always did
	}
	// Each step returned its own view of the record; the store holds all
	// of them merged.
	cur, lerr := c.load(context.WithoutCancel(ctx), inc.Number)
	if lerr != nil {
		return inc, errors.Join(err, lerr)
	}
	return cur, err
}

// syncInvites invites the incident's people not yet invited.
func (c *ChatSync) syncInvites(ctx context.Context, inc *Incident) (*Incident, error) {
	missing := missingPeople(inc)
	if len(missing) == 0 {
		return inc, nil
	}
	if err := c.Chat.Invite(ctx, inc.Chat.ChannelID, missing); err != nil {
		return inc, fmt.Errorf("inviting to %s: %w", inc.ID(), err)
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) {
		for _, u := range missing {
			if !slices.Contains(r.Invited, u) {
				r.Invited = append(r.Invited, u)
			}
		}
	})
}

// firstAnnouncement announces a new incident at once; later changes update
// the announcement after the timeline is told.
func (c *ChatSync) firstAnnouncement(ctx context.Context, inc *Incident) (*Incident, error) {
	if inc.Chat.AnnounceID != "" {
		return inc, nil
	}
	return c.syncAnnouncement(ctx, inc)
}

// syncTopic sets the channel topic when what it shows changed.
func (c *ChatSync) syncTopic(ctx context.Context, inc *Incident) (*Incident, error) {
	topic := Topic(inc)
	if topic == inc.Chat.Topic {
		return inc, nil
	}
	if err := c.Chat.SetTopic(ctx, inc.Chat.ChannelID, topic); err != nil {
		return inc, fmt.Errorf("setting topic of %s: %w", inc.ID(), err)
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.Topic = topic })
}

// syncBookmark bookmarks the pager incident in the channel, once.
func (c *ChatSync) syncBookmark(ctx context.Context, inc *Incident) (*Incident, error) {
	b, ok := c.Chat.(Bookmarker)
	if !ok || inc.Pager.URL == "" || inc.Chat.BookmarkSet {
		return inc, nil
	}
	if err := b.Bookmark(ctx, inc.Chat.ChannelID, inc.Pager.Label(), inc.Pager.URL); err != nil {
		return inc, fmt.Errorf("bookmarking pager incident in %s: %w", inc.ID(), err)
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.BookmarkSet = true })
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
		return nil, &chatStateError{fmt.Errorf("saving chat state of %s: %w", FormatID(n), err)}
	}
	return out, nil
}

// chatStateError is a failure to record chat progress in the store (a
// full disk, a shutdown): never a refusal by the chat platform, so it
// must not give up an optional destination.
type chatStateError struct{ err error }

func (e *chatStateError) Error() string { return e.err.Error() }
func (e *chatStateError) Unwrap() error { return e.err }

// refusedForGood reports whether err is the chat platform refusing a call
// for good (not a rate limit, an outage or a store failure of ours).
func refusedForGood(err error) bool {
	var se *chatStateError
	_, retry := IsRetryable(err)
	return err != nil && !retry && !errors.As(err, &se)
}

// Slots of ChatRef.Sending: one post of each may be under way at a time.
const (
	slotSummary  = "summary"
	slotAnnounce = "announce"
	slotEvents   = "events"
	slotShare    = "share"
)

// settle resolves the post recorded under slot whose outcome is unknown,
// if any: the bot looks for the message (Finder) and, if it is there,
// records it with apply; if it is not, the record is dropped and the
// caller posts afresh. A chat that cannot look posts again.
func (c *ChatSync) settle(ctx context.Context, inc *Incident, slot string, apply func(r *ChatRef, id string, s Sending)) (*Incident, error) {
	s, ok := inc.Chat.Sending[slot]
	if !ok {
		return inc, nil
	}
	id := ""
	if f, can := c.Chat.(Finder); can {
		var err error
		id, err = f.FindPost(ctx, s.Channel, s.Thread, s.Key, s.Since.Add(-FindSkew))
		if _, retry := IsRetryable(err); retry {
			return inc, fmt.Errorf("looking for an interrupted post (%s) of %s: %w", s.Key, inc.ID(), err)
		}
		// Any other failure to look (the channel is gone, no access):
		// post again; the post meets the same refusal and deals with it.
	}
	settled, err := c.saveChat(ctx, inc.Number, func(r *ChatRef) {
		cur, still := r.Sending[slot]
		if !still || cur.Key != s.Key {
			return
		}
		if id != "" {
			apply(r, id, s)
		}
		delete(r.Sending, slot)
	})
	if err != nil {
		return inc, err
	}
	return settled, nil
}

// postOnce posts m as the message want names, recorded under slot: the
// record is saved before the call and replaced by record's result right
// after it, one outside call between two saves. A kill or a lost answer
// in between leaves the record for settle. A failure that certainly posted
// nothing drops the record.
func (c *ChatSync) postOnce(ctx context.Context, inc *Incident, slot string, want Sending, m Message, record func(r *ChatRef, id string)) (*Incident, error) {
	n := inc.Number
	want.Since = c.Clock.Now()
	begun, err := c.saveChat(ctx, n, func(r *ChatRef) {
		if r.Sending == nil {
			r.Sending = map[string]Sending{}
		}
		r.Sending[slot] = want
	})
	if err != nil {
		return inc, err
	}
	m.Key, m.ThreadID = want.Key, want.Thread
	id, err := c.Chat.Post(ctx, want.Channel, m)
	if err != nil {
		if Certain(err) {
			if _, serr := c.saveChat(context.WithoutCancel(ctx), n, func(r *ChatRef) { delete(r.Sending, slot) }); serr != nil {
				return begun, errors.Join(err, serr)
			}
		}
		return begun, err
	}
	done, err := c.saveChat(context.WithoutCancel(ctx), n, func(r *ChatRef) {
		record(r, id)
		delete(r.Sending, slot)
	})
	if err != nil {
		return begun, err
	}
	return done, nil
}

// PostKind of a runbook's result, posted by PostOnce.
const PostRunbookResult = "runbook_result"

// postRecord is what PostOnce keeps under "post:<key>": the post began at
// Since (outcome unknown while ID is empty), or was posted as ID.
type postRecord struct {
	Since  time.Time `json:"since"`
	ID     string    `json:"id,omitempty"`
	Failed bool      `json:"failed,omitempty"` // the last call certainly posted nothing
}

// PostOnce posts m to channelID exactly once across retries, kills and
// lost answers, for a post outside an incident's chat sync (a runbook's
// result). key must name this post alone (say, by its job's id). Its
// progress is kept under the idempotency key "post:"+key: recorded before
// the call and replaced by the message's id right after it; a retry that
// finds the post begun looks for it first (Finder), as the chat sync does.
func PostOnce(ctx context.Context, store Store, chat Chat, clock Clock, key PostKey, channelID string, m Message) (string, error) {
	k := "post:" + key.String()
	var rec postRecord
	var found bool
	err := store.View(ctx, func(tx Tx) error {
		raw, ok, err := tx.Key(k)
		if err != nil || !ok {
			return err
		}
		found = true
		return json.Unmarshal(raw, &rec)
	})
	if err != nil {
		return "", fmt.Errorf("reading the record of post %s: %w", key, err)
	}
	if rec.ID != "" {
		return rec.ID, nil
	}
	put := func(ctx context.Context, r postRecord) error {
		raw, _ := json.Marshal(r)
		if err := store.Update(ctx, func(tx Tx) error { return tx.PutKey(k, raw, clock.Now()) }); err != nil {
			return fmt.Errorf("recording post %s: %w", key, err)
		}
		return nil
	}
	if found && !rec.Failed {
		if f, ok := chat.(Finder); ok {
			id, err := f.FindPost(ctx, channelID, m.ThreadID, key, rec.Since.Add(-FindSkew))
			if _, retry := IsRetryable(err); retry {
				return "", fmt.Errorf("looking for an interrupted post %s: %w", key, err)
			}
			if id != "" {
				return id, put(context.WithoutCancel(ctx), postRecord{Since: rec.Since, ID: id})
			}
		}
	}
	if err := put(ctx, postRecord{Since: clock.Now()}); err != nil {
		return "", err
	}
	m.Key = key
	id, err := chat.Post(ctx, channelID, m)
	if err != nil {
		if Certain(err) {
			if perr := put(context.WithoutCancel(ctx), postRecord{Failed: true}); perr != nil {
				return "", errors.Join(err, perr)
			}
		}
		return "", err
	}
	return id, put(context.WithoutCancel(ctx), postRecord{ID: id})
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
			cur.Chat.InvitedAtCreation = append([]string{}, cur.People()...)
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
	inc, err := c.settle(ctx, inc, slotSummary, func(r *ChatRef, id string, _ Sending) {
		if r.SummaryID == "" {
			r.SummaryID, r.SummaryShows = id, "" // found: updated below to show the incident as it is now
		}
	})
	if err != nil {
		return inc, err
	}
	shows := SummaryFingerprint(inc)
	if inc.Chat.SummaryID != "" && inc.Chat.SummaryShows == shows {
		return inc, nil
	}
	m := Message{Kind: MessageSummary, Incident: inc}
	rev := inc.Revision
	post := func(what string) (*Incident, error) {
		out, err := c.postOnce(ctx, inc, slotSummary, Sending{Key: PostKey{Incident: inc.ID(), Kind: PostSummary}, Channel: inc.Chat.ChannelID}, m,
			func(r *ChatRef, id string) { r.SummaryID, r.SummaryRev, r.SummaryShows = id, rev, shows })
		if err != nil {
			return c.summaryFailed(ctx, out, shows, fmt.Errorf("%s summary of %s: %w", what, inc.ID(), err))
		}
		return out, nil
	}
	if inc.Chat.SummaryID == "" {
		return post("posting")
	}
	err = c.Chat.Update(ctx, inc.Chat.ChannelID, inc.Chat.SummaryID, m)
	if ErrorCode(err) == ENOTFOUND { // somebody deleted it: post a new one
		return post("reposting")
	}
	if err != nil {
		return c.summaryFailed(ctx, inc, shows, fmt.Errorf("updating summary of %s: %w", inc.ID(), err))
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.SummaryRev, r.SummaryShows = rev, shows })
}

// summaryFailed keeps a summary card the platform refuses for good from
// stalling the channel: this version of the card is given up (it is tried
// again when what it shows changes) and the refusal is told in the
// channel, once per incident. Other failures are returned to be retried.
func (c *ChatSync) summaryFailed(ctx context.Context, inc *Incident, shows string, err error) (*Incident, error) {
	if !refusedForGood(err) {
		return inc, err
	}
	return c.giveUp(ctx, inc, func(r *ChatRef) { r.SummaryShows = shows }, &Event{Key: "summary-failed",
		Text: fmt.Sprintf("I could not show the summary of %s here: %s. `/incident status` shows it.", inc.ID(), ErrorMessage(err))})
}

// giveUp records what the sync gives up after a refusal for good (fix) and
// the event that tells people about it (recorded once per its key; nil:
// none), in one transaction.
func (c *ChatSync) giveUp(ctx context.Context, inc *Incident, fix func(*ChatRef), report *Event) (*Incident, error) {
	now := c.Clock.Now()
	var out *Incident
	err := c.Store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Incident(inc.Number)
		if err != nil {
			return err
		}
		fix(&cur.Chat)
		if err := tx.PutIncident(cur); err != nil {
			return err
		}
		out = cur
		if report == nil {
			return nil
		}
		ev := *report
		ev.Incident, ev.At, ev.Recorded, ev.Kind, ev.Actor = inc.Number, now, now, EventError, BotActor
		_, err = tx.AppendEvent(&ev)
		return err
	})
	if err != nil {
		return inc, &chatStateError{fmt.Errorf("recording a refusal for %s: %w", inc.ID(), err)}
	}
	return out, nil
}

func (c *ChatSync) syncAnnouncement(ctx context.Context, inc *Incident) (*Incident, error) {
	inc, err := c.settle(ctx, inc, slotAnnounce, func(r *ChatRef, id string, s Sending) {
		if r.AnnounceID == "" {
			r.AnnounceCh, r.AnnounceID, r.AnnounceShows = s.Channel, id, ""
		}
	})
	if err != nil {
		return inc, err
	}
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
	out, err := c.postOnce(ctx, inc, slotAnnounce, Sending{Key: PostKey{Incident: inc.ID(), Kind: PostAnnouncement}, Channel: ch}, m,
		func(r *ChatRef, id string) {
			r.AnnounceCh, r.AnnounceID, r.AnnounceRev, r.AnnounceShows = ch, id, rev, shows
		})
	if err != nil {
		return c.announceFailed(ctx, out, ch, fmt.Errorf("announcing %s: %w", inc.ID(), err))
	}
	return out, nil
}

// announceFailed keeps a refused announcement from stalling the incident's
// own channel: a retryable failure is retried, but a refusal for good (a
// wrong announce channel, no access) is told in the incident's channel and
// the announcement is given up for this incident.
func (c *ChatSync) announceFailed(ctx context.Context, inc *Incident, ch string, err error) (*Incident, error) {
	if !refusedForGood(err) {
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
	return c.giveUp(ctx, inc, func(r *ChatRef) { r.AnnounceFailed = true },
		&Event{Key: key, Text: text, Data: map[string]string{"channel": ch}})
}

// postEvents tells the events recorded since the last post, a batch per
// message, oldest first, each message once: its progress (PostedSeq) is
// saved right after the one outside call that posts it.
func (c *ChatSync) postEvents(ctx context.Context, inc *Incident) (*Incident, error) {
	max := c.MaxEventsPerMessage
	if max <= 0 {
		max = 20
	}
	for {
		var err error
		inc, err = c.settle(ctx, inc, slotEvents, func(r *ChatRef, _ string, s Sending) { r.PostedSeq = maxSeq(r.PostedSeq, s.Last) })
		if err != nil {
			return inc, err
		}
		var pending []Event
		err = c.Store.View(ctx, func(tx Tx) error {
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
		if len(batch) == 0 { // only quiet events: nothing to tell
			if inc, err = c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.PostedSeq = maxSeq(r.PostedSeq, last) }); err != nil {
				return inc, err
			}
			continue
		}
		// The thread copies of status updates are a separate outbox
		// (shareUpdates), so a copy that must wait, or fails, never makes
		// this post again.
		key := PostKey{Incident: inc.ID(), Kind: PostEvents, Seq: fmt.Sprintf("%d-%d", batch[0].Seq, last)}
		out, err := c.postOnce(ctx, inc, slotEvents, Sending{Key: key, Channel: inc.Chat.ChannelID, Last: last},
			Message{Kind: MessageEvents, Incident: inc, Events: batch},
			func(r *ChatRef, _ string) { r.PostedSeq = maxSeq(r.PostedSeq, last) })
		switch {
		case err == nil:
			inc = out
		case !refusedForGood(err):
			return out, fmt.Errorf("telling %d events in %s: %w", len(batch), inc.ID(), err)
		case len(batch) > 1:
			// Refused for good (a message too long, say): tell them one
			// at a time, so that only the one Slack refuses is left out.
			inc, max = out, 1
		default:
			// One event the platform will never take must not block the
			// channel: it is skipped, and the refusal is told instead.
			if inc, err = c.untold(ctx, out, batch[0], last, err); err != nil {
				return inc, err
			}
		}
	}
}

// untold skips a timeline event the platform refused for good in the
// incident's channel (PostedSeq moves past it) and records the refusal on
// the timeline, to be told in its place, once. A refusal of such a report
// itself (the channel is archived or gone) is not reported again.
func (c *ChatSync) untold(ctx context.Context, inc *Incident, ev Event, last int64, cause error) (*Incident, error) {
	var report *Event
	if !strings.HasPrefix(ev.Key, untoldKey) {
		report = &Event{Key: untoldKey + strconv.FormatInt(ev.Seq, 10),
			Text: fmt.Sprintf("I could not tell a timeline entry (%s, #%d) here: %s. It is on the timeline (`/incident timeline`).", ev.Kind, ev.Seq, ErrorMessage(cause)),
			Data: map[string]string{"seq": strconv.FormatInt(ev.Seq, 10)}}
	}
	return c.giveUp(ctx, inc, func(r *ChatRef) { r.PostedSeq = maxSeq(r.PostedSeq, last) }, report)
}

// untoldKey prefixes the timeline key of a report that an event could not
// be told in the incident's channel.
const untoldKey = "untold:"

func maxSeq(a, b int64) int64 { return max(a, b) }

// shareUpdates copies the status updates told in the incident's channel
// into its announcement's thread (and, for an unattended paged incident,
// its reminders and escalation notices into the announce channel), each
// once, in order, after the channel post: SharedSeq is the last event considered for a copy. The announce
// channel is optional: a copy it refuses for good (archived, gone, the bot
// removed, the message refused) is said once in the incident's channel
// and copies stop there, rather than block the incident's channel.
func (c *ChatSync) shareUpdates(ctx context.Context, inc *Incident) (*Incident, error) {
	inc, err := c.settle(ctx, inc, slotShare, func(r *ChatRef, _ string, s Sending) { r.SharedSeq = maxSeq(r.SharedSeq, s.Last) })
	if err != nil {
		return inc, err
	}
	shared := inc.Chat.SharedSeq // set by createChannel, or by Sync for older records
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
			kind, thread := PostUpdateCopy, inc.Chat.AnnounceID
			switch {
			case ev.Quiet:
				continue
			case ev.Kind == EventStatusUpdate:
			case (ev.Kind == EventReminder || ev.Kind == EventEscalated) && unattended(inc):
				// Nobody is in the channel to see it: the announce channel,
				// top level, where people are.
				kind, thread = PostUnattendedCopy, ""
			default:
				continue
			}
			seq := ev.Seq
			key := PostKey{Incident: inc.ID(), Kind: kind, Seq: strconv.FormatInt(seq, 10)}
			out, err := c.postOnce(ctx, inc, slotShare, Sending{Key: key, Channel: inc.Chat.AnnounceCh, Thread: thread, Last: seq},
				Message{Kind: MessageEvents, Incident: inc, Events: []Event{ev}},
				func(r *ChatRef, _ string) { r.SharedSeq = maxSeq(r.SharedSeq, seq) })
			if err != nil {
				err = fmt.Errorf("sharing a status update of %s: %w", inc.ID(), err)
				if !refusedForGood(err) {
					return out, err
				}
				return c.optionalFailed(ctx, out, inc.Chat.AnnounceCh, "share-failed",
					fmt.Sprintf("I could not copy status updates of %s into the announcement's thread in <#%s>: %s. Later updates are told here only.", inc.ID(), inc.Chat.AnnounceCh, ErrorMessage(err)))
			}
			inc = out
		}
	}
	return c.saveChat(ctx, inc.Number, func(r *ChatRef) { r.SharedSeq = maxSeq(r.SharedSeq, upTo) })
}

// unattended reports an incident raised by an outside system (a page, or an
// alert, which names nobody to invite) whose channel has no people in it
// (nobody declared it in chat, holds a role or joined): its reminders and
// escalation notices are also posted in the announce channel.
func unattended(inc *Incident) bool {
	return (inc.Pager.Linked() || inc.Source.External()) && len(inc.People()) == 0
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
	slug := Slug(withoutLinks(title))
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

// withoutLinks drops what makes a channel name long and unreadable: a chat
// link keeps only its label ("<https://x|dashboard>" → "dashboard"), a link
// or mention without one and a bare URL go. Titles pasted from alerts often
// carry them ("High latency https://grafana.example.com/d/abc?...").
func withoutLinks(title string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(title, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(title[open:], '>')
		if end < 0 {
			break
		}
		b.WriteString(title[:open])
		inner := title[open+1 : open+end]
		if _, label, ok := strings.Cut(inner, "|"); ok {
			b.WriteString(" " + label + " ")
		} else {
			b.WriteByte(' ')
		}
		title = title[open+end+1:]
	}
	b.WriteString(title)
	words := strings.Fields(b.String())
	kept := words[:0]
	for _, w := range words {
		lw := strings.ToLower(w)
		if strings.HasPrefix(lw, "http://") || strings.HasPrefix(lw, "https://") || strings.HasPrefix(lw, "www.") {
			continue
		}
		kept = append(kept, w)
	}
	return strings.Join(kept, " ")
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
