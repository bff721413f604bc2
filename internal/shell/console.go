// Package shell is the local console: it behaves like Slack for one person.
// Lines typed as `/incident ...` go through the same command language,
// incident use cases, store and job queue as in production; the messages the
// bot would post to channels are printed, prefixed with the channel.
//
// It reads commands from any reader, so it can be scripted: with Echo set
// (stdin is not a terminal) it writes each command after the prompt, and the
// output reads as a transcript.
package shell

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// Config configures a Console.
type Config struct {
	In  io.Reader
	Out io.Writer
	// Dispatcher runs `/incident` commands.
	Dispatcher *command.Dispatcher
	// Service finds incidents (to move into a new incident's channel).
	Service *incident.Service
	// RunJobs runs the jobs that are due (the chat sync that prints channel
	// posts) before the next prompt.
	RunJobs func(ctx context.Context) error
	// Confirm, if set, handles a reply that asks the user to confirm
	// something (a runbook run): it may read answers with ask and returns
	// the text to show.
	Confirm func(ctx context.Context, req command.Request, conf command.Confirmation, ask func(question string) (string, bool)) string
	// Actions, if set, runs the shell's stand-ins for card buttons:
	// `/confirm`, `/cancel`, `/approve` and `/deny` with a run id, as the
	// current user, and returns the text to show.
	Actions func(ctx context.Context, verb, runID string, actor incident.Actor) string
	User    string // the person at the keyboard (a user id)
	Channel string // the starting channel (default "general")
	// Echo writes each command after its prompt, for non-interactive use.
	Echo bool
}

// Console is the interactive loop.
type Console struct {
	cfg     Config
	in      *bufio.Scanner
	user    string
	channel string
}

// New returns a console.
func New(cfg Config) *Console {
	if cfg.Channel == "" {
		cfg.Channel = "general"
	}
	if cfg.User == "" {
		cfg.User = "operator"
	}
	in := bufio.NewScanner(cfg.In)
	in.Buffer(make([]byte, 64*1024), 1024*1024)
	return &Console{cfg: cfg, in: in, user: cfg.User, channel: cfg.Channel}
}

const banner = "incident-bot shell: type `/incident help`, `/join <channel>`, `/user <name>` or `/quit`.\n" +
	"Runbook buttons are `/confirm`, `/cancel`, `/approve` and `/deny` with the run id."

// Run reads and runs lines until the input ends, `/quit`, or ctx ends.
func (c *Console) Run(ctx context.Context) error {
	c.println(banner)
	if err := c.cfg.RunJobs(ctx); err != nil {
		return err
	}
	for ctx.Err() == nil {
		fmt.Fprintf(c.cfg.Out, "#%s> ", c.channel)
		if !c.in.Scan() {
			fmt.Fprintln(c.cfg.Out)
			if err := c.in.Err(); err != nil {
				return err
			}
			return c.cfg.RunJobs(ctx) // what the last command set off
		}
		line := strings.TrimSpace(c.in.Text())
		if c.cfg.Echo {
			fmt.Fprintln(c.cfg.Out, line)
		}
		if quit := c.handle(ctx, line); quit {
			return nil
		}
		if err := c.cfg.RunJobs(ctx); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (c *Console) println(text string) { fmt.Fprintln(c.cfg.Out, text) }

// handle runs one line; it reports whether the user asked to quit.
func (c *Console) handle(ctx context.Context, line string) bool {
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(word) {
	case "":
		return false
	case "/quit", "/exit":
		return true
	case "/help":
		c.println(banner + "\nLines without a leading / are run as `/incident` commands too.\n`/home` shows what Slack's Home tab would show you.")
	case "/home":
		ov, err := c.cfg.Service.Overview(ctx, c.user)
		if err != nil {
			c.reply(incident.ErrorMessage(err))
			return false
		}
		c.reply(c.cfg.Dispatcher.OverviewText(ov, c.user))
	case "/join":
		ch := strings.TrimPrefix(rest, "#")
		if ch == "" || strings.ContainsAny(ch, " \t") {
			c.println("usage: /join <channel>")
			return false
		}
		c.channel = ch
	case "/user":
		u := strings.TrimPrefix(rest, "@")
		if u == "" || strings.ContainsAny(u, " \t<>") {
			c.println("usage: /user <name>")
			return false
		}
		c.user = u
		c.println("(you are now @" + u + ")")
	case "/incident":
		c.command(ctx, rest)
	case "/confirm", "/cancel", "/approve", "/deny":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			c.println("usage: " + word + " <run id>")
			return false
		}
		if c.cfg.Actions == nil {
			c.println("runbooks are not available in this shell")
			return false
		}
		c.reply(c.cfg.Actions(ctx, strings.TrimPrefix(word, "/"), rest, c.actor()))
	default:
		if strings.HasPrefix(word, "/") {
			c.println(fmt.Sprintf("unknown shell command %s; try /help", word))
			return false
		}
		c.command(ctx, line)
	}
	return false
}

func (c *Console) command(ctx context.Context, text string) {
	if strings.TrimSpace(text) == "" {
		// `/incident` alone: the menu Slack shows as buttons, as text.
		c.reply(command.MenuText() + "\n• Your Home tab (open incidents, your follow-ups): `/home`")
		return
	}
	req := command.Request{
		Text:      Markup(text),
		Actor:     c.actor(),
		ChannelID: c.channel,
	}
	reply := c.cfg.Dispatcher.Handle(ctx, req)
	if reply.NeedsTitle {
		reply.Text += "\nUsage: `" + command.Usage(command.VerbDeclare) + "`"
	}
	c.reply(reply.Text)
	if reply.Confirm != nil && c.cfg.Confirm != nil {
		c.reply(c.cfg.Confirm(ctx, req, *reply.Confirm, c.ask))
	}
	if reply.Declared && reply.Incident != nil {
		c.follow(ctx, reply.Incident.Number)
	}
}

func (c *Console) actor() incident.Actor {
	return incident.Actor{ID: c.user, Name: c.user, Source: incident.SourceShell}
}

// ask prints a question and reads the answer from the input.
func (c *Console) ask(question string) (string, bool) {
	fmt.Fprintf(c.cfg.Out, "%s ", Plain(question))
	if !c.in.Scan() {
		return "", false
	}
	answer := strings.TrimSpace(c.in.Text())
	if c.cfg.Echo {
		fmt.Fprintln(c.cfg.Out, answer)
	}
	return answer, true
}

func (c *Console) reply(text string) {
	if text == "" {
		return
	}
	const prefix = "bot (only you): "
	indent := strings.Repeat(" ", len(prefix))
	c.println(prefix + strings.ReplaceAll(Plain(text), "\n", "\n"+indent))
}

// follow moves the user into a newly declared incident's channel once the
// chat sync has created it.
func (c *Console) follow(ctx context.Context, n int64) {
	if err := c.cfg.RunJobs(ctx); err != nil {
		c.println("error: " + err.Error())
		return
	}
	inc, err := c.cfg.Service.Get(ctx, incident.Ref{Number: n})
	if err != nil || inc.Chat.ChannelID == "" {
		return
	}
	c.channel = inc.Chat.ChannelID
	c.println("(you are now in #" + inc.Chat.ChannelName + ")")
}
