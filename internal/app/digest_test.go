package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// dgStart opens the app on cfg and serves it until the test ends or stop is
// called; it returns once the digest scheduler has caught up and started.
func dgStart(t *testing.T, cfg config.Config, clock incident.Clock, chat incident.Chat) (a *App, stop func()) {
	t.Helper()
	log, logs := pmLogger(t)
	a, err := Open(cfg, log, Options{Clock: clock, Chat: chat, Workers: 1, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serveStop := pmServe(t, a)
	dgWaitLog(t, logs, "digest scheduled")
	stop = func() {
		serveStop()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}
	return a, stop
}

func dgWaitLog(t *testing.T, logs *observer.ObservedLogs, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage(msg).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log", msg)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

func dgConfig(t *testing.T) config.Config {
	return pmConfig(t, t.TempDir(), map[string]string{"BOT_ANNOUNCE_CHANNEL": "C0ANNOUNCE", "BOT_TIMEZONE": "Europe/Berlin", "BOT_DIGEST_CHANNEL": "C0DIGEST"})
}

// TestDigestMissedWhileDownPostedOnceByServe: the bot runs on Friday, is
// down over Monday 09:00 UTC, and posts week 47's digest once when it is
// back on Tuesday; another restart posts nothing more.
func TestDigestMissedWhileDownPostedOnceByServe(t *testing.T) {
	cfg := dgConfig(t)
	clock := &pmClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	chat := newPMChat()

	a, stop := dgStart(t, cfg, clock, chat)
	ctx := context.Background()
	inc, err := a.Service().Declare(ctx, incident.Declaration{Title: "Checkout is down", Severity: incident.SEV1, By: pmAlice})
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(clock.Now().Add(40 * time.Minute))
	if _, err := a.Service().Resolve(ctx, incident.Ref{Number: inc.Number}, pmAlice, "fixed"); err != nil {
		t.Fatal(err)
	}
	stop()

	clock.Set(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	_, stop = dgStart(t, cfg, clock, chat)
	u := chat.nextUpload(t)
	if u.Channel != "C0DIGEST" || u.File.Name != "incident-digest-2026-W47.md" {
		t.Fatalf("posted %s to %s", u.File.Name, u.Channel)
	}
	// The chart follows the digest as a PNG.
	if c := chat.nextUpload(t); c.File.Name != "incident-digest-2026-W47-chart.png" || !bytes.HasPrefix(c.File.Content, []byte("\x89PNG")) {
		t.Errorf("after the digest: %s (%d bytes)", c.File.Name, len(c.File.Content))
	}
	body := string(u.File.Content)
	for _, want := range []string{"# Incident digest 2026-W47", "(Europe/Berlin)", "**1 opened · 1 resolved", "**INC-1** SEV1: Checkout is down. Draft it with `/incident postmortem INC-1`."} {
		if !strings.Contains(body, want) {
			t.Errorf("digest lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasPrefix(u.File.Comment, "*Incident digest 2026-W47*") {
		t.Errorf("comment = %q", u.File.Comment)
	}

	// The CLI reads it through the admin socket while the bot runs...
	reply, err := AdminCLI(cfg).Digest(ctx, admin.DigestRequest{Week: "2026-W47"}, clock.Now())
	if err != nil || !strings.HasPrefix(reply.Text, "# Incident digest 2026-W47") {
		t.Fatalf("DigestText: %.80q, %v", reply.Text, err)
	}
	// ...and asks it to post another week.
	reply, err = AdminCLI(cfg).PostDigest(ctx, admin.DigestRequest{From: "2026-11-16", To: "2026-11-18"}, clock.Now())
	if err != nil || !reply.Queued || reply.Channel != "C0DIGEST" {
		t.Fatalf("PostDigest: %+v, %v", reply, err)
	}
	if u := chat.nextUpload(t); u.File.Name != "incident-digest-2026-11-16_to_2026-11-18.md" {
		t.Errorf("requested post: %s", u.File.Name)
	}
	chat.nextUpload(t) // its chart
	if _, err := AdminCLI(cfg).PostDigest(ctx, admin.DigestRequest{Week: "2026-W99"}, clock.Now()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("bad week: %v", err)
	}
	stop()

	clock.Set(time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC))
	a, stop = dgStart(t, cfg, clock, chat)
	defer stop()
	if n := dgPending(t, a); n != 0 {
		t.Errorf("%d jobs queued after the restart", n)
	}
	if got := chat.files(); len(got) != 4 {
		t.Errorf("files posted: %v, want week 47 and the requested days once each, each with its chart", got)
	}
}

func dgPending(t *testing.T, a *App) int {
	t.Helper()
	var n int
	err := a.store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		n, err = tx.PendingJobs()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDigestOffAndBadSchedule(t *testing.T) {
	cfg := dgConfig(t)
	cfg.Digest.Schedule = "off"
	log, logs := pmLogger(t)
	a, err := Open(cfg, log, Options{Chat: newPMChat()})
	if err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("weekly digest is off").Len() != 1 {
		t.Errorf("logs %v", logs.All())
	}
	a.Close()

	cfg.Digest.Schedule = "CRON_TZ=UTC" // config.Load refuses it; Open must too
	if _, err := Open(cfg, log, Options{Chat: newPMChat()}); err == nil || !strings.Contains(err.Error(), "BOT_DIGEST_SCHEDULE") {
		t.Errorf("Open with a bad schedule: %v", err)
	}
	if _, err := AdminCLI(cfg).PostDigest(context.Background(), admin.DigestRequest{}, time.Now()); err == nil || !strings.Contains(err.Error(), "needs the running bot") {
		t.Errorf("PostDigest without a bot: %v", err)
	}
	if _, err := AdminCLI(cfg).Digest(context.Background(), admin.DigestRequest{From: "2026-11-01"}, time.Now()); incident.ErrorCode(err) != incident.EINVALID {
		t.Errorf("bad flags: %v", err)
	}
}
