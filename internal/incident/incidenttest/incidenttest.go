// Package incidenttest has test helpers for the incident domain: a clock
// that tests move by hand, and a recording chat platform.
package incidenttest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Clock is a manual clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ incident.Clock = (*Clock)(nil)

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Post is one message a Chat recorded.
type Post struct {
	Channel string
	ID      string // message id it was given (or updated)
	Update  bool
	Message incident.Message
}

// Chat is a recording incident.Chat: channels get ids C1, C2...; every post
// and update is kept in order. Fail, when set, is consulted before each call
// and its error returned (to simulate outages).
type Chat struct {
	mu       sync.Mutex
	Channels map[string]string // name -> id
	Topics   map[string]string // id -> topic
	Members  map[string][]string
	Posts    []Post
	Files    []incident.File
	Fail     func(op string) error
	seq      int
}

var (
	_ incident.Chat     = (*Chat)(nil)
	_ incident.Uploader = (*Chat)(nil)
)

// NewChat returns an empty recording chat.
func NewChat() *Chat {
	return &Chat{Channels: map[string]string{}, Topics: map[string]string{}, Members: map[string][]string{}}
}

func (c *Chat) fail(op string) error {
	if c.Fail != nil {
		return c.Fail(op)
	}
	return nil
}

// CreateChannel implements incident.Chat.
func (c *Chat) CreateChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("create"); err != nil {
		return incident.ChannelRef{}, err
	}
	if _, ok := c.Channels[name]; ok {
		return incident.ChannelRef{}, incident.ErrNameTaken
	}
	c.seq++
	id := fmt.Sprintf("C%d", c.seq)
	c.Channels[name] = id
	return incident.ChannelRef{ID: id, Name: name}, nil
}

// FindChannel implements incident.Chat.
func (c *Chat) FindChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("find"); err != nil {
		return incident.ChannelRef{}, err
	}
	id, ok := c.Channels[name]
	if !ok {
		return incident.ChannelRef{}, incident.Errorf(incident.ENOTFOUND, "no channel %s", name)
	}
	return incident.ChannelRef{ID: id, Name: name}, nil
}

// SetTopic implements incident.Chat.
func (c *Chat) SetTopic(_ context.Context, channelID, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("topic"); err != nil {
		return err
	}
	c.Topics[channelID] = topic
	return nil
}

// Invite implements incident.Chat.
func (c *Chat) Invite(_ context.Context, channelID string, users []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("invite"); err != nil {
		return err
	}
	c.Members[channelID] = append(c.Members[channelID], users...)
	return nil
}

// Post implements incident.Chat.
func (c *Chat) Post(_ context.Context, channelID string, m incident.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("post"); err != nil {
		return "", err
	}
	c.seq++
	id := fmt.Sprintf("m%d", c.seq)
	c.Posts = append(c.Posts, Post{Channel: channelID, ID: id, Message: snapshot(m)})
	return id, nil
}

// Update implements incident.Chat.
func (c *Chat) Update(_ context.Context, channelID, messageID string, m incident.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("update"); err != nil {
		return err
	}
	c.Posts = append(c.Posts, Post{Channel: channelID, ID: messageID, Update: true, Message: snapshot(m)})
	return nil
}

// Upload implements incident.Uploader.
func (c *Chat) Upload(_ context.Context, channelID string, f incident.File) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail("upload"); err != nil {
		return err
	}
	c.Files = append(c.Files, f)
	return nil
}

// snapshot copies the incident so later changes do not alter the record.
func snapshot(m incident.Message) incident.Message {
	if m.Incident != nil {
		cp := *m.Incident
		m.Incident = &cp
	}
	return m
}

// PostsIn returns the posts (not updates) made in a channel, in order.
func (c *Chat) PostsIn(channelID string) []Post {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Post
	for _, p := range c.Posts {
		if p.Channel == channelID && !p.Update {
			out = append(out, p)
		}
	}
	return out
}

// All returns a copy of every post and update so far.
func (c *Chat) All() []Post {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Post(nil), c.Posts...)
}
