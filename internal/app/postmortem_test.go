package app

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/postmortem"
)

// pmClock is a clock the test moves.
type pmClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *pmClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *pmClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// pmChat is a recording chat platform that can share files: it implements
// incident.Chat and incident.Uploader, and tells uploads on a channel.
type pmChat struct {
	mu       sync.Mutex
	channels map[string]string // name -> id
	posts    []incident.Message
	uploads  []pmUpload
	uploaded chan pmUpload
}

type pmUpload struct {
	Channel string
	File    incident.File
}

func newPMChat() *pmChat {
	return &pmChat{channels: map[string]string{}, uploaded: make(chan pmUpload, 100)}
}

func (c *pmChat) CreateChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.channels[name]; ok {
		return incident.ChannelRef{}, incident.ErrNameTaken
	}
	id := fmt.Sprintf("C%03d", len(c.channels)+1)
	c.channels[name] = id
	return incident.ChannelRef{ID: id, Name: name}, nil
}

func (c *pmChat) FindChannel(_ context.Context, name string) (incident.ChannelRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.channels[name]; ok {
		return incident.ChannelRef{ID: id, Name: name}, nil
	}
	return incident.ChannelRef{}, incident.Errorf(incident.ENOTFOUND, "no channel %s", name)
}

func (c *pmChat) SetTopic(context.Context, string, string) error { return nil }
func (c *pmChat) Invite(context.Context, string, []string) error { return nil }
func (c *pmChat) Update(context.Context, string, string, incident.Message) error {
	return nil
}

func (c *pmChat) Post(_ context.Context, _ string, m incident.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts = append(c.posts, m)
	return fmt.Sprintf("%d.000100", len(c.posts)), nil
}

func (c *pmChat) Upload(_ context.Context, channelID string, f incident.File) error {
	u := pmUpload{Channel: channelID, File: f}
	c.mu.Lock()
	c.uploads = append(c.uploads, u)
	c.mu.Unlock()
	c.uploaded <- u
	return nil
}

func (c *pmChat) files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, u := range c.uploads {
		out = append(out, u.Channel+"/"+u.File.Name)
	}
	return out
}

// nextUpload waits for the next shared file.
func (c *pmChat) nextUpload(t *testing.T) pmUpload {
	t.Helper()
	select {
	case u := <-c.uploaded:
		return u
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing was uploaded; files so far: %v", c.files())
		return pmUpload{}
	}
}

// pmConfig is a validated configuration with the database in dir.
func pmConfig(t *testing.T, dir string, env map[string]string) config.Config {
	t.Helper()
	base := map[string]string{"BOT_DB": filepath.Join(dir, "bot.db"), "BOT_ADDR": "127.0.0.1:0", "BOT_TEMPLATES_DIR": filepath.Join(dir, "templates")}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load("", config.Source{
		Getenv:   func(k string) string { return base[k] },
		ReadFile: func(name string) ([]byte, error) { return nil, fs.ErrNotExist },
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pmLogger logs to the test and records entries for waiting on them.
func pmLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)), logs
}

func pmOpen(t *testing.T, cfg config.Config, clock incident.Clock, chat incident.Chat) *App {
	t.Helper()
	log, _ := pmLogger(t)
	a, err := Open(cfg, log, Options{Clock: clock, Chat: chat, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pmRunJobs(t *testing.T, a *App) {
	t.Helper()
	if _, err := a.runner.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var pmAlice = incident.Actor{ID: "U01ALICE", Name: "alice", Source: incident.SourceSlack}

// TestPostmortemCommandEndToEnd runs `/incident postmortem` through the
// dispatcher, the store, the job queue and the chat ports, twice: the draft
// is stored as versions 1 and 2 and each is posted once.
func TestPostmortemCommandEndToEnd(t *testing.T) {
	clock := &pmClock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	chat := newPMChat()
	cfg := pmConfig(t, t.TempDir(), nil)
	a := pmOpen(t, cfg, clock, chat)
	defer a.Close()
	ctx := context.Background()
	do := func(channel, text string) command.Reply {
		t.Helper()
		r := a.Dispatcher().Handle(ctx, command.Request{Text: text, Actor: pmAlice, ChannelID: channel})
		if r.Error {
			t.Fatalf("%q: %s", text, r.Text)
		}
		clock.Set(clock.Now().Add(5 * time.Minute))
		pmRunJobs(t, a)
		return r
	}
	do("CGENERAL", "declare sev2 Checkout is down")
	inc, err := a.Service().Get(ctx, incident.Ref{Number: 1})
	if err != nil || inc.Chat.ChannelID == "" {
		t.Fatalf("no channel: %+v, %v", inc, err)
	}
	ch := inc.Chat.ChannelID
	do(ch, "note the deploy at 09:00 was human error")
	do(ch, "followup add a canary stage")
	do(ch, "resolve rolled back")

	r := do(ch, "postmortem")
	if !strings.Contains(r.Text, "Postmortem draft v1 of *INC-1* saved") || !strings.Contains(r.Text, "INC-1-postmortem-v1.md") {
		t.Errorf("reply = %q", r.Text)
	}
	u := chat.nextUpload(t)
	if u.Channel != ch || u.File.Name != "INC-1-postmortem-v1.md" || !strings.HasPrefix(u.File.Comment, "Postmortem draft v1 for *INC-1* (SEV2, resolved after 15m 0s)") {
		t.Errorf("upload: %s %s %q", u.Channel, u.File.Name, u.File.Comment)
	}
	body := string(u.File.Content)
	for _, want := range []string{"# Postmortem INC-1: Checkout is down", "version 1", "- [ ] #1 add a canary stage", "**human error** (human error) in Note by alice"} {
		if !strings.Contains(body, want) {
			t.Errorf("draft lacks %q:\n%s", want, body)
		}
	}

	r = do(ch, "pm INC-1")
	if !strings.Contains(r.Text, "v2") {
		t.Errorf("reply = %q", r.Text)
	}
	if u := chat.nextUpload(t); u.File.Name != "INC-1-postmortem-v2.md" || !strings.Contains(string(u.File.Content), "version 2") {
		t.Errorf("second upload %s", u.File.Name)
	}
	pmRunJobs(t, a)
	if got := chat.files(); len(got) != 2 {
		t.Errorf("files shared: %v, want v1 and v2 once each", got)
	}

	err = a.store.View(ctx, func(tx incident.Tx) error {
		_, v, err := tx.Doc(postmortem.DocKind, "INC-1", 0)
		if err != nil || v != 2 {
			return fmt.Errorf("latest stored version %d, %v; want 2", v, err)
		}
		events, err := tx.Timeline(1)
		var versions []string
		for _, ev := range events {
			if ev.Kind == incident.EventPostmortemDrafted {
				versions = append(versions, ev.Data["version"]+" by "+ev.Actor.ID)
			}
		}
		if strings.Join(versions, ",") != "1 by U01ALICE,2 by U01ALICE" {
			return fmt.Errorf("timeline records %v", versions)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// TestPostmortemCLIWhileServingAndAfter prints a draft through the running
// bot's admin socket, then from the file once the bot has stopped.
func TestPostmortemCLIWhileServingAndAfter(t *testing.T) {
	clock := &pmClock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	cfg := pmConfig(t, t.TempDir(), nil)
	a := pmOpen(t, cfg, clock, newPMChat())
	ctx := context.Background()
	if _, err := a.Service().Declare(ctx, incident.Declaration{Title: "Checkout is down", By: pmAlice}); err != nil {
		t.Fatal(err)
	}
	stop := pmServe(t, a)

	d, err := AdminCLI(cfg).Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Incident != "INC-1" || !strings.HasPrefix(d.Draft, "# Postmortem INC-1: Checkout is down") || !strings.Contains(d.Draft, "preview (not stored)") {
		t.Errorf("draft through the admin socket: %+v", d)
	}
	if _, err := AdminCLI(cfg).Postmortem(ctx, 9); err == nil || !strings.Contains(err.Error(), "INC-9 does not exist") {
		t.Errorf("unknown incident: %v", err)
	}
	stop()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := AdminCLI(cfg).Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Only the generation time differs: the bot runs on the test's clock.
	generated := regexp.MustCompile(`generated by incident-bot on [0-9: -]+`)
	if generated.ReplaceAllString(d2.Draft, "") != generated.ReplaceAllString(d.Draft, "") {
		t.Errorf("the draft from the file differs from the one the bot rendered:\n%s", d2.Draft)
	}
}

// pmServe runs a.Serve until the returned stop is called.
func pmServe(t *testing.T, a *App) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the bot did not start serving")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("the bot did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
