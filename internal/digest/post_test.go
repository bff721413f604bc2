package digest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Issue 17: a digest whose upload Slack completed but whose answer was
// lost (a kill or a broken connection before "posted" was recorded) is
// found in the digest channel by its title and recorded, not posted again:
// the channel has it once, and not flagged "Sent again".
func TestInterruptedDigestUploadIsFound(t *testing.T) {
	ctx := context.Background()
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	ch := fake.AddChannel("incident-digest", false, fake.BotUserID())
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bot.db")
	clock := incidenttest.NewClock(time.Now())
	run := func() {
		// One run of the bot: open the file, run what is due, close it.
		t.Helper()
		store, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		runner := queue.New(queue.Config{Store: store, Clock: clock, Logger: zaptest.NewLogger(t)})
		runner.Handle(digest.JobPost, digest.NewPoster(digest.PosterConfig{Store: store, Clock: clock, Chat: client, Logger: zaptest.NewLogger(t)}).Handle)
		if _, err := runner.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour) // past any retry backoff
	}
	store, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	week := digest.Week{Year: 2026, Week: 47}
	if _, err := digest.EnqueueWeek(ctx, store, week, ch, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	fake.FailNext("files.completeUploadExternal", 1, slacktest.LostAnswer())
	run() // shares the file; the answer is lost
	run() // the restart's retry
	run()
	var shared []slacktest.File
	for _, f := range fake.Files() {
		if f.Channel == ch {
			shared = append(shared, f)
		}
	}
	if len(shared) != 1 {
		t.Fatalf("the digest is in the channel %d times, want once", len(shared))
	}
	if got := shared[0].Comment; got == "" || strings.Contains(got, "Sent again") {
		t.Errorf("comment = %q", got)
	}
	store, err = boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_ = store.View(ctx, func(tx incident.Tx) error {
		rec, _, err := digest.Posted(tx, digest.WeekKey(week))
		if err != nil || rec.State != digest.StatePosted {
			t.Errorf("record = %+v %v, want posted", rec, err)
		}
		return nil
	})
}
