// Package apptest runs the whole bot in tests: app.Open on the given
// configuration, then Serve on its address (use 127.0.0.1:0), stopped and
// its database closed when the test ends.
package apptest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/config"
)

// Bot is a running app.
type Bot struct {
	App  *app.App
	Addr string // the bound HTTP address, host:port

	cancel context.CancelFunc
	done   chan error
	closed bool
	stopIn time.Duration
}

// Start opens the app and serves it until the test ends or Stop is called.
// It fails the test if the app does not start within startIn.
func Start(t testing.TB, cfg config.Config, log *zap.Logger, opts app.Options, startIn time.Duration) *Bot {
	t.Helper()
	a, err := app.Open(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	b := &Bot{App: a, cancel: cancel, done: make(chan error, 1), stopIn: 60 * time.Second}
	go func() { b.done <- a.Serve(ctx, func(addr string) { ready <- addr }) }()
	select {
	case b.Addr = <-ready:
	case err := <-b.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(startIn):
		t.Fatal("the bot did not start")
	}
	t.Cleanup(func() { b.Stop(t) })
	return b
}

// URL is the bot's base URL.
func (b *Bot) URL() string { return "http://" + b.Addr }

// Stop shuts the bot down as SIGTERM would and closes its database. It is
// safe to call more than once.
func (b *Bot) Stop(t testing.TB) {
	t.Helper()
	if b.closed {
		return
	}
	b.closed = true
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(b.stopIn):
		t.Fatal("the bot did not stop")
	}
	if err := b.App.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
