package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// inviteChunk is the most users one conversations.invite names. Slack's
// docs disagree (100 or 1000); 100 is safe.
const inviteChunk = 100

// listPage is the conversations.list page size (Slack's maximum is 1000).
const listPage = 1000

// CreateChannel implements incident.Chat: a public channel with exactly
// this name. A taken name is incident.ErrNameTaken.
func (c *Client) CreateChannel(ctx context.Context, name string) (incident.ChannelRef, error) {
	var ch *slackapi.Channel
	err := c.call(ctx, "conversations.create", "", func(ctx context.Context) error {
		var err error
		ch, err = c.api.CreateConversationContext(ctx, slackapi.CreateConversationParams{ChannelName: name})
		return err
	})
	if err != nil {
		return incident.ChannelRef{}, err
	}
	return incident.ChannelRef{ID: ch.ID, Name: ch.Name}, nil
}

// FindChannel implements incident.Chat: it pages through the public and
// private channels the bot can see for the channel the bot created under
// this name.
//
// The chat sync calls it to adopt a channel an earlier, interrupted attempt
// created. A channel with that name that somebody else created is not
// ours to adopt, and an archived one cannot be used, so either is reported
// as incident.ErrNameTaken, which sends the sync on to the next name:
// adopting the first would put the incident in a stranger's channel, and
// "not found" would stop the sync for good. (So archived channels are
// listed too, unlike the usual exclude_archived.)
func (c *Client) FindChannel(ctx context.Context, name string) (incident.ChannelRef, error) {
	bot := c.BotUserID()
	if bot == "" {
		id, _, err := c.AuthTest(ctx)
		if err != nil {
			return incident.ChannelRef{}, fmt.Errorf("finding channel #%s: %w", name, err)
		}
		bot = id.UserID
	}
	cursor := ""
	for page := 0; page < 1000; page++ {
		var (
			chans []slackapi.Channel
			next  string
		)
		err := c.call(ctx, "conversations.list", "", func(ctx context.Context) error {
			var err error
			chans, next, err = c.api.GetConversationsContext(ctx, &slackapi.GetConversationsParameters{
				Cursor: cursor, Limit: listPage,
				Types: []string{"public_channel", "private_channel"},
			})
			return err
		})
		if err != nil {
			return incident.ChannelRef{}, err
		}
		for _, ch := range chans {
			if ch.Name != name {
				continue
			}
			if ch.Creator != bot {
				return incident.ChannelRef{}, fmt.Errorf("channel #%s belongs to someone else: %w", name, incident.ErrNameTaken)
			}
			if ch.IsArchived {
				return incident.ChannelRef{}, fmt.Errorf("channel #%s is archived: %w", name, incident.ErrNameTaken)
			}
			return incident.ChannelRef{ID: ch.ID, Name: ch.Name}, nil
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return incident.ChannelRef{}, incident.Errorf(incident.ENOTFOUND, "No channel named #%s.", name)
}

// SetTopic implements incident.Chat.
func (c *Client) SetTopic(ctx context.Context, channelID, topic string) error {
	return c.call(ctx, "conversations.setTopic", channelID, func(ctx context.Context) error {
		_, err := c.api.SetTopicOfConversationContext(ctx, channelID, topic)
		return err
	})
}

// Invite implements incident.Chat. Users already in the channel are not an
// error. Slack rejects a whole batch when one user in it cannot be invited
// (already there, or the bot itself), so such a batch is retried one user
// at a time; a user Slack cannot invite at all (deactivated, unknown) is
// logged and skipped rather than holding up the channel for everyone else.
func (c *Client) Invite(ctx context.Context, channelID string, users []string) error {
	for start := 0; start < len(users); start += inviteChunk {
		batch := users[start:min(start+inviteChunk, len(users))]
		err := c.invite(ctx, channelID, batch)
		if err == nil {
			continue
		}
		if !batchRejected(err) {
			return err
		}
		if len(batch) == 1 {
			c.log.Warn("cannot invite user to incident channel; skipping", zap.String("channel", channelID), zap.String("user", batch[0]), zap.String("code", SlackCode(err)))
			continue
		}
		for _, u := range batch {
			if err := c.invite(ctx, channelID, []string{u}); err != nil {
				if !batchRejected(err) {
					return err
				}
				c.log.Warn("cannot invite user to incident channel; skipping", zap.String("channel", channelID), zap.String("user", u), zap.String("code", SlackCode(err)))
			}
		}
	}
	return nil
}

// invite invites users. For one user, already_in_channel and
// cant_invite_self are success; for a batch they mean Slack invited nobody.
func (c *Client) invite(ctx context.Context, channelID string, users []string) error {
	var raw error
	err := c.call(ctx, "conversations.invite", channelID, func(ctx context.Context) error {
		_, raw = c.api.InviteUsersToConversationContext(ctx, channelID, users...)
		return raw
	})
	if err == nil && raw != nil && len(users) > 1 {
		// already_in_channel for a batch: somebody else may not be in.
		return &APIError{Method: "conversations.invite", Code: raw.Error()}
	}
	return err
}

// batchRejected reports whether an invite failed because of a particular
// user rather than the channel or Slack.
func batchRejected(err error) bool {
	switch SlackCode(err) {
	case "already_in_channel", "cant_invite_self", "user_not_found", "cant_invite", "user_is_restricted",
		"user_is_ultra_restricted", "ura_max_channels", "user_disabled", "users_not_found", "invalid_users":
		return true
	}
	return false
}

func msgOptions(r Rendered, threadTS string, key incident.PostKey) []slackapi.MsgOption {
	opts := []slackapi.MsgOption{
		slackapi.MsgOptionText(r.Text, false),
		slackapi.MsgOptionBlocks(r.Blocks...),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
	if threadTS != "" {
		opts = append(opts, slackapi.MsgOptionTS(threadTS))
	}
	if !key.IsZero() {
		opts = append(opts, slackapi.MsgOptionMetadata(postMetadata(key)))
	}
	return opts
}

// MetadataEventType is the event_type of the message metadata the bot
// attaches to what it posts. Slack's guide for metadata event types
// (https://api.slack.com/reference/metadata, "Payload structure") asks for
// lowercase letters, digits and underscores, named <resource>_<past tense>.
const MetadataEventType = "incident_bot_message_posted"

// postMetadata is a post's message metadata (chat.postMessage "metadata":
// {"event_type", "event_payload"}, https://docs.slack.dev/messaging/message-metadata).
// The payload names the message: incident, kind, sequence or period. It
// is a few short strings, far from any size limit, and not shown to
// people. Posting it needs no scope beyond chat:write; reading it back
// (conversations.history/.replies with include_all_metadata) needs
// channels:history, which the bot has; private channels (a private
// announce channel) would need groups:history, which it does not ask for,
// so there a look-up fails and the bot posts again (see FindPost).
func postMetadata(k incident.PostKey) slackapi.SlackMetadata {
	p := map[string]any{"kind": k.Kind}
	for name, v := range map[string]string{"incident": k.Incident, "seq": k.Seq, "period": k.Period} {
		if v != "" {
			p[name] = v
		}
	}
	return slackapi.SlackMetadata{EventType: MetadataEventType, EventPayload: p}
}

// keyOf reads back the key of a message's metadata, if it is ours.
func keyOf(md slackapi.SlackMetadata) (incident.PostKey, bool) {
	if md.EventType != MetadataEventType {
		return incident.PostKey{}, false
	}
	str := func(name string) string { v, _ := md.EventPayload[name].(string); return v }
	k := incident.PostKey{Incident: str("incident"), Kind: str("kind"), Seq: str("seq"), Period: str("period")}
	return k, k.Kind != ""
}

// Post implements incident.Chat: it renders m as Block Kit and posts it,
// with m.Key as message metadata. If the bot is not in a public channel
// (the announce channel, say) it joins and tries once more.
func (c *Client) Post(ctx context.Context, channelID string, m incident.Message) (string, error) {
	return c.post(ctx, channelID, Render(m), m.ThreadID, m.Key)
}

func (c *Client) post(ctx context.Context, channelID string, r Rendered, threadTS string, key incident.PostKey) (string, error) {
	ts, err := c.postOnce(ctx, channelID, r, threadTS, key)
	if SlackCode(err) == "not_in_channel" {
		if jerr := c.join(ctx, channelID); jerr != nil {
			c.log.Warn("cannot join channel to post", zap.String("channel", channelID), zap.Error(jerr))
			return "", fmt.Errorf("%w: %w", incident.Errorf(incident.EINVALID, "The bot is not in <#%s>; invite it with `/invite @incident-bot`.", channelID), err)
		}
		return c.postOnce(ctx, channelID, r, threadTS, key)
	}
	return ts, err
}

func (c *Client) postOnce(ctx context.Context, channelID string, r Rendered, threadTS string, key incident.PostKey) (string, error) {
	var ts string
	err := c.call(ctx, "chat.postMessage", channelID, func(ctx context.Context) error {
		var err error
		_, ts, err = c.api.PostMessageContext(ctx, channelID, msgOptions(r, threadTS, key)...)
		return err
	})
	return ts, err
}

// findPages bounds a look-up: at most this many pages of findPage
// messages posted since the post began. A channel where more than that
// was posted in the window is searched only as far as that.
const (
	findPages = 10
	findPage  = 200
)

// FindPost implements incident.Finder: it pages through the channel's
// history (or the thread's replies) posted since, with
// include_all_metadata, for the bot's own message whose metadata carries
// key. A look-up Slack refuses for a reason other than a rate limit or an
// outage (no access to a private channel's history, say) is logged and
// reported as not found: the caller then posts again, a possible repeat
// rather than a message lost.
func (c *Client) FindPost(ctx context.Context, channelID, threadID string, key incident.PostKey, since time.Time) (string, error) {
	ts := ""
	err := c.scan(ctx, channelID, threadID, since, func(m slackapi.Message) bool {
		if k, ok := keyOf(m.Metadata); ok && k == key && c.ours(m) {
			ts = m.Timestamp
			return true
		}
		return false
	})
	return ts, c.lookupErr(err, channelID, key.String())
}

// FindFile implements incident.Finder: the bot's own message sharing a
// file with this title, posted since. (files.completeUploadExternal takes
// no metadata, so an upload is found by its title.)
func (c *Client) FindFile(ctx context.Context, channelID, threadID, title string, since time.Time) (bool, error) {
	found := false
	err := c.scan(ctx, channelID, threadID, since, func(m slackapi.Message) bool {
		for _, f := range m.Files {
			if f.Title == title && c.ours(m) {
				found = true
			}
		}
		return found
	})
	return found, c.lookupErr(err, channelID, title)
}

// ours reports whether the bot posted m (when auth.test has told who the
// bot is; otherwise any bot's message with our metadata or title).
func (c *Client) ours(m slackapi.Message) bool {
	bot := c.BotUserID()
	return m.BotID != "" && (bot == "" || m.User == "" || m.User == bot)
}

func (c *Client) lookupErr(err error, channelID, what string) error {
	if err == nil {
		return nil
	}
	if _, retry := incident.IsRetryable(err); retry && SlackCode(err) != "missing_scope" {
		return err
	}
	c.log.Warn("cannot look for an interrupted post; posting it again", zap.String("channel", channelID), zap.String("post", what), zap.Error(err))
	return nil
}

// scan calls match on the messages posted in channelID (or among the
// replies to threadID) since, newest first for a channel, until match
// says it found what it looked for.
func (c *Client) scan(ctx context.Context, channelID, threadID string, since time.Time, match func(slackapi.Message) bool) error {
	oldest := fmt.Sprintf("%d.%06d", since.Unix(), since.Nanosecond()/1000)
	if since.IsZero() || since.Unix() < 0 {
		oldest = ""
	}
	cursor := ""
	for range findPages {
		var (
			msgs []slackapi.Message
			next string
		)
		var err error
		if threadID == "" {
			err = c.call(ctx, "conversations.history", channelID, func(ctx context.Context) error {
				resp, err := c.api.GetConversationHistoryContext(ctx, &slackapi.GetConversationHistoryParameters{
					ChannelID: channelID, Oldest: oldest, Inclusive: true, Limit: findPage, Cursor: cursor, IncludeAllMetadata: true,
				})
				if err != nil {
					return err
				}
				msgs, next = resp.Messages, resp.ResponseMetaData.NextCursor
				return nil
			})
		} else {
			err = c.call(ctx, "conversations.replies", channelID, func(ctx context.Context) error {
				var err error
				msgs, _, next, err = c.api.GetConversationRepliesContext(ctx, &slackapi.GetConversationRepliesParameters{
					ChannelID: channelID, Timestamp: threadID, Oldest: oldest, Inclusive: true, Limit: findPage, Cursor: cursor, IncludeAllMetadata: true,
				})
				return err
			})
		}
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if match(m) {
				return nil
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
	return nil
}

func (c *Client) join(ctx context.Context, channelID string) error {
	return c.call(ctx, "conversations.join", channelID, func(ctx context.Context) error {
		_, _, _, err := c.api.JoinConversationContext(ctx, channelID)
		return err
	})
}

// Update implements incident.Chat: chat.update on the same ts.
func (c *Client) Update(ctx context.Context, channelID, messageID string, m incident.Message) error {
	return c.update(ctx, channelID, messageID, Render(m))
}

func (c *Client) update(ctx context.Context, channelID, ts string, r Rendered) error {
	err := c.updateOnce(ctx, channelID, ts, r)
	if SlackCode(err) == "not_in_channel" && c.join(ctx, channelID) == nil {
		// Somebody removed the bot from a public channel (the announce
		// channel); it joins again rather than give up on the message.
		err = c.updateOnce(ctx, channelID, ts, r)
	}
	if SlackCode(err) == "channel_not_found" {
		// ENOTFOUND from Update means the message is gone and the sync
		// posts a new one; a channel that is gone is a refusal for good.
		return fmt.Errorf("%w: %w", incident.Errorf(incident.EINVALID, "Slack cannot find the channel <#%s> (deleted, or the bot cannot see it).", channelID), err)
	}
	return err
}

func (c *Client) updateOnce(ctx context.Context, channelID, ts string, r Rendered) error {
	return c.call(ctx, "chat.update", channelID, func(ctx context.Context) error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, channelID, ts,
			slackapi.MsgOptionText(r.Text, false), slackapi.MsgOptionBlocks(r.Blocks...))
		return err
	})
}

// Bookmark implements incident.Bookmarker.
func (c *Client) Bookmark(ctx context.Context, channelID, title, link string) error {
	return c.call(ctx, "bookmarks.add", channelID, func(ctx context.Context) error {
		_, err := c.api.AddBookmarkContext(ctx, channelID, slackapi.AddBookmarkParameters{Title: title, Type: "link", Link: link})
		return err
	})
}

// Upload implements incident.Uploader with Slack's three steps:
// files.getUploadURLExternal, the upload, files.completeUploadExternal.
// A failure before the last step leaves nothing visible, so a retry starts
// over cleanly.
func (c *Client) Upload(ctx context.Context, channelID string, f incident.File) error {
	if len(f.Content) == 0 {
		return incident.Errorf(incident.EINVALID, "Cannot share the empty file %s.", f.Name)
	}
	var u *slackapi.GetUploadURLExternalResponse
	err := c.call(ctx, "files.getUploadURLExternal", "", func(ctx context.Context) error {
		var err error
		u, err = c.api.GetUploadURLExternalContext(ctx, slackapi.GetUploadURLExternalParameters{FileName: f.Name, FileSize: len(f.Content)})
		return err
	})
	if err != nil {
		return err
	}
	err = c.call(ctx, "files.upload", "", func(ctx context.Context) error {
		return c.api.UploadToURL(ctx, slackapi.UploadToURLParameters{UploadURL: u.UploadURL, Reader: bytes.NewReader(f.Content), Filename: f.Name})
	})
	if err != nil {
		return err
	}
	title := f.Title
	if title == "" {
		title = f.Name
	}
	return c.call(ctx, "files.completeUploadExternal", channelID, func(ctx context.Context) error {
		_, err := c.api.CompleteUploadExternalContext(ctx, slackapi.CompleteUploadExternalParameters{
			Files: []slackapi.FileSummary{{ID: u.FileID, Title: title}}, Channel: channelID,
			InitialComment: SafeText(f.Comment), ThreadTimestamp: f.ThreadID,
		})
		return err
	})
}

// PostEphemeral shows text to one user in a channel. The text goes through
// SafeText.
func (c *Client) PostEphemeral(ctx context.Context, channelID, user, text string) error {
	return c.postEphemeral(ctx, channelID, user, renderText(text))
}

// PostThread posts text (through SafeText) as a reply in a thread (or in
// the channel when threadTS is empty) and returns its ts.
func (c *Client) PostThread(ctx context.Context, channelID, threadTS, text string) (string, error) {
	return c.post(ctx, channelID, renderText(text), threadTS, incident.PostKey{})
}

// PostCard posts a runbook card (in a thread when threadTS is set) and
// returns its ts. Its text is posted as it is; see Card.
func (c *Client) PostCard(ctx context.Context, channelID, threadTS string, card Card) (string, error) {
	return c.post(ctx, channelID, RenderCard(card), threadTS, incident.PostKey{})
}

// PostApprovalRequest posts a runbook's approval request (mrkdwn text) in
// a thread with Approve and Deny buttons carrying only runID, once: the
// request carries message metadata naming its run, and a request already
// in the thread (posted by an attempt a kill or a lost answer interrupted;
// a click is retried from the queue) is not posted again. Approval
// requests are rare, so the look-up is made every time rather than
// recorded.
func (c *Client) PostApprovalRequest(ctx context.Context, channelID, threadTS, runID, text string) error {
	key := incident.PostKey{Kind: PostKindApprovalRequest, Seq: runID}
	if ts, err := c.FindPost(ctx, channelID, threadTS, key, time.Time{}); err != nil || ts != "" {
		return err
	}
	_, err := c.post(ctx, channelID, RenderCard(Card{Text: text, RunID: runID, Buttons: ApproveButtons}), threadTS, key)
	return err
}

// PostKindApprovalRequest is the PostKey kind of a runbook's approval request.
const PostKindApprovalRequest = "approval_request"

// UpdateCard replaces a card posted earlier, e.g. with its final state and
// no buttons, so stale buttons do nothing.
func (c *Client) UpdateCard(ctx context.Context, channelID, ts string, card Card) error {
	return c.update(ctx, channelID, ts, RenderCard(card))
}

// userEntry is a cached users.lookupByEmail answer.
type userEntry struct {
	id      string // "" when Slack has no such user
	expires time.Time
}

const maxCachedUsers = 10000

// LookupUserByEmail returns the Slack user id for an email address
// (users.lookupByEmail), or an ENOTFOUND error. Answers are cached (found:
// UserTTL, not found: UserMissTTL).
func (c *Client) LookupUserByEmail(ctx context.Context, email string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if key == "" {
		return "", incident.Errorf(incident.EINVALID, "No email address to look up.")
	}
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.users[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.id == "" {
			return "", incident.Errorf(incident.ENOTFOUND, "No Slack user has the email address %s.", email)
		}
		return e.id, nil
	}
	var u *slackapi.User
	err := c.call(ctx, "users.lookupByEmail", "", func(ctx context.Context) error {
		var err error
		u, err = c.api.GetUserByEmailContext(ctx, key)
		return err
	})
	switch {
	case incident.ErrorCode(err) == incident.ENOTFOUND:
		c.remember(key, userEntry{expires: now.Add(c.cfg.UserMissTTL)})
		return "", incident.Errorf(incident.ENOTFOUND, "No Slack user has the email address %s.", email)
	case err != nil:
		return "", err
	}
	c.remember(key, userEntry{id: u.ID, expires: now.Add(c.cfg.UserTTL)})
	return u.ID, nil
}

func (c *Client) remember(key string, e userEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.users) >= maxCachedUsers {
		now := c.clock.Now()
		for k, v := range c.users {
			if !now.Before(v.expires) {
				delete(c.users, k)
			}
		}
		for k := range c.users {
			if len(c.users) < maxCachedUsers {
				break
			}
			delete(c.users, k)
		}
	}
	c.users[key] = e
}

// UserGroupMembers returns the user ids in a user group
// (usergroups.users.list). An unknown group is ENOTFOUND. It does not
// cache; callers that authorize with it cache briefly themselves.
func (c *Client) UserGroupMembers(ctx context.Context, groupID string) ([]string, error) {
	var users []string
	err := c.call(ctx, "usergroups.users.list", "", func(ctx context.Context) error {
		var err error
		users, err = c.api.GetUserGroupMembersContext(ctx, groupID)
		return err
	})
	return users, err
}

// Identity is who the bot is in its workspace (auth.test).
type Identity struct {
	URL    string
	Team   string
	TeamID string
	User   string
	UserID string
	BotID  string
}

// AuthTest calls auth.test and returns the bot's identity and the scopes
// its token was granted (from the X-OAuth-Scopes header).
func (c *Client) AuthTest(ctx context.Context) (Identity, []string, error) {
	var r *slackapi.AuthTestResponse
	err := c.call(ctx, "auth.test", "", func(ctx context.Context) error {
		var err error
		r, err = c.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		return Identity{}, nil, err
	}
	id := Identity{URL: r.URL, Team: r.Team, TeamID: r.TeamID, User: r.User, UserID: r.UserID, BotID: r.BotID}
	c.mu.Lock()
	c.identity = &id
	scopes := append([]string(nil), c.scopes...)
	c.mu.Unlock()
	return id, scopes, nil
}

// BotUserID returns the bot's user id if auth.test has told it, or "".
func (c *Client) BotUserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.identity == nil {
		return ""
	}
	return c.identity.UserID
}

// ChannelInfo is what conversations.info tells about a channel.
type ChannelInfo struct {
	ID, Name  string
	IsMember  bool
	IsPrivate bool
	Archived  bool
}

// ChannelInfo calls conversations.info.
func (c *Client) ChannelInfo(ctx context.Context, channelID string) (ChannelInfo, error) {
	var ch *slackapi.Channel
	err := c.call(ctx, "conversations.info", channelID, func(ctx context.Context) error {
		var err error
		ch, err = c.api.GetConversationInfoContext(ctx, &slackapi.GetConversationInfoInput{ChannelID: channelID})
		return err
	})
	if err != nil {
		return ChannelInfo{}, err
	}
	return ChannelInfo{ID: ch.ID, Name: ch.Name, IsMember: ch.IsMember, IsPrivate: ch.IsPrivate, Archived: ch.IsArchived}, nil
}

// Msg is a message as conversations.history or .replies returns it.
type Msg struct {
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts,omitempty"`
	User     string `json:"user,omitempty"`
	BotID    string `json:"bot_id,omitempty"`
	SubType  string `json:"subtype,omitempty"`
	Text     string `json:"text,omitempty"`
}

// FromBot reports whether a bot (this one or another) wrote the message,
// or it is a system message (joins, topic changes) rather than a person's.
func (m Msg) FromBot() bool {
	if m.BotID != "" || m.User == "" {
		return true
	}
	switch m.SubType {
	case "", "thread_broadcast", "file_share", "me_message":
		return false
	}
	return true
}

// Time is the message's own time, from its ts.
func (m Msg) Time() time.Time { return TSTime(m.TS) }

// TSTime converts a Slack ts ("1531420618.000200") to a time; the zero time
// if it is malformed.
func TSTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	var us int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		us, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, us*1000).UTC()
}

// Message fetches one message by ts: from the channel's history, or, for
// a reply in a thread, from the thread (threadTS, if known, saves a call).
// A message that is gone is ENOTFOUND.
func (c *Client) Message(ctx context.Context, channelID, ts, threadTS string) (Msg, error) {
	if threadTS == "" || threadTS == ts {
		var resp *slackapi.GetConversationHistoryResponse
		err := c.call(ctx, "conversations.history", channelID, func(ctx context.Context) error {
			var err error
			resp, err = c.api.GetConversationHistoryContext(ctx, &slackapi.GetConversationHistoryParameters{
				ChannelID: channelID, Latest: ts, Oldest: ts, Inclusive: true, Limit: 1,
			})
			return err
		})
		if err != nil {
			return Msg{}, err
		}
		for _, m := range resp.Messages {
			if m.Timestamp == ts {
				return toMsg(m), nil
			}
		}
		if threadTS == ts {
			return Msg{}, incident.Errorf(incident.ENOTFOUND, "The message is gone.")
		}
		// Not in the channel's history: a reply inside a thread. Its
		// own ts finds its thread.
		threadTS = ts
	}
	var msgs []slackapi.Message
	err := c.call(ctx, "conversations.replies", channelID, func(ctx context.Context) error {
		var err error
		msgs, _, _, err = c.api.GetConversationRepliesContext(ctx, &slackapi.GetConversationRepliesParameters{
			ChannelID: channelID, Timestamp: threadTS, Latest: ts, Oldest: ts, Inclusive: true, Limit: 2,
		})
		return err
	})
	if err != nil {
		return Msg{}, err
	}
	for _, m := range msgs {
		if m.Timestamp == ts {
			return toMsg(m), nil
		}
	}
	return Msg{}, incident.Errorf(incident.ENOTFOUND, "The message is gone.")
}

func toMsg(m slackapi.Message) Msg {
	return Msg{TS: m.Timestamp, ThreadTS: m.ThreadTimestamp, User: m.User, BotID: m.BotID, SubType: m.SubType, Text: m.Text}
}

// openView opens a modal (views.open) with a trigger id.
func (c *Client) openView(ctx context.Context, triggerID string, view slackapi.ModalViewRequest) error {
	return c.call(ctx, "views.open", "", func(ctx context.Context) error {
		_, err := c.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
}

// Response is a reply sent to a response_url.
type Response struct {
	Text            string
	Blocks          []slackapi.Block
	InChannel       bool // visible to the channel; default: only to the user
	ReplaceOriginal bool
}

// errResponseURL marks a response_url that is not an http(s) URL.
var errResponseURL = errors.New("response_url is not an http(s) URL")

// Respond posts a reply to a response_url (a slash command's or a
// button's). Slack accepts up to 5 of these within 30 minutes.
func (c *Client) Respond(ctx context.Context, responseURL string, r Response) error {
	if !strings.HasPrefix(responseURL, "https://") && !strings.HasPrefix(responseURL, "http://") {
		return errResponseURL
	}
	msg := &slackapi.WebhookMessage{Text: cut(r.Text, MaxText), ResponseType: slackapi.ResponseTypeEphemeral, ReplaceOriginal: r.ReplaceOriginal}
	if r.InChannel {
		msg.ResponseType = slackapi.ResponseTypeInChannel
	}
	if len(r.Blocks) > 0 {
		msg.Blocks = &slackapi.Blocks{BlockSet: r.Blocks}
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	start := c.clock.Now()
	err := slackapi.PostWebhookCustomHTTPContext(cctx, responseURL, c.http, msg)
	outcome, mapped := c.classify("response_url", err)
	c.metrics.observe("response_url", outcome, c.clock.Now().Sub(start))
	return mapped
}
