package shell

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Chat is the shell's chat platform: channels are names, and posting prints
// the message as the channel would show it. It implements incident.Chat.
type Chat struct {
	mu     sync.Mutex
	out    io.Writer
	nextID atomic.Int64
}

var _ incident.Chat = (*Chat)(nil)

// NewChat returns a chat that prints to out.
func NewChat(out io.Writer) *Chat { return &Chat{out: out} }

func (c *Chat) printf(channel, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := Plain(fmt.Sprintf(format, args...))
	prefix := fmt.Sprintf("[#%s] bot: ", channel)
	indent := strings.Repeat(" ", len(prefix))
	fmt.Fprintln(c.out, prefix+strings.ReplaceAll(text, "\n", "\n"+indent))
}

// CreateChannel "creates" a channel: its id is its name.
func (c *Chat) CreateChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	return incident.ChannelRef{ID: name, Name: name}, nil
}

// FindChannel finds a channel by name; in the shell every name exists.
func (c *Chat) FindChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	return incident.ChannelRef{ID: name, Name: name}, nil
}

// SetTopic prints nothing: the topic repeats the summary.
func (c *Chat) SetTopic(context.Context, string, string) error { return nil }

// Invite prints who joins the channel.
func (c *Chat) Invite(_ context.Context, channelID string, users []string) error {
	mentions := make([]string, len(users))
	for i, u := range users {
		mentions[i] = "@" + u
	}
	c.printf(channelID, "invited %s", strings.Join(mentions, ", "))
	return nil
}

// Post prints a message and returns a made-up id.
func (c *Chat) Post(_ context.Context, channelID string, m incident.Message) (string, error) {
	c.printf(channelID, "%s", Render(m))
	return strconv.FormatInt(c.nextID.Add(1), 10), nil
}

// PostApprovalRequest prints a runbook's approval request with the shell's
// stand-ins for its Approve and Deny buttons.
func (c *Chat) PostApprovalRequest(_ context.Context, channelID, _, runID, text string) error {
	c.printf(channelID, "%s\n(Another person approves with `/approve %s` or denies with `/deny %s`.)", text, runID, runID)
	return nil
}

// PostEphemeral prints text shown to one user only.
func (c *Chat) PostEphemeral(_ context.Context, channelID, user, text string) error {
	c.printf(channelID, "(only @%s sees this) %s", user, text)
	return nil
}

// Update prints nothing: the summary and announcement are living messages,
// and reprinting them after every change would drown the transcript.
func (c *Chat) Update(context.Context, string, string, incident.Message) error { return nil }

// Render renders a message as plain text.
func Render(m incident.Message) string {
	inc := m.Incident
	switch m.Kind {
	case incident.MessageSummary:
		var roles []string
		for _, r := range incident.Roles {
			holder := "none"
			if u := inc.Roles[r]; u != "" {
				holder = "@" + u
			}
			roles = append(roles, fmt.Sprintf("%s %s", r, holder))
		}
		return fmt.Sprintf("%s %s, %s: %s\n%s", inc.ID(), inc.Severity, inc.Status, inc.Title, strings.Join(roles, ", "))
	case incident.MessageAnnouncement:
		return fmt.Sprintf("New incident %s %s: %s, in #%s", inc.ID(), inc.Severity, inc.Title, inc.Chat.ChannelName)
	case incident.MessageEvents:
		lines := make([]string, len(m.Events))
		for i, ev := range m.Events {
			lines[i] = ev.Describe()
		}
		return strings.Join(lines, "\n")
	}
	return m.Text
}

var _ incident.Uploader = (*Chat)(nil)

// Upload prints the file's comment and then the file itself, verbatim,
// between markers.
func (c *Chat) Upload(_ context.Context, channelID string, f incident.File) error {
	if f.Comment != "" {
		c.printf(channelID, "%s", f.Comment)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	content := strings.TrimRight(string(f.Content), "\n")
	fmt.Fprintf(c.out, "----- file %s (%d bytes) -----\n%s\n----- end of %s -----\n", f.Name, len(f.Content), content, f.Name)
	return nil
}
