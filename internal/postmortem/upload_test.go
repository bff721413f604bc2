package postmortem_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/postmortem"
	"github.com/incidentbot/incident-bot/internal/queue"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Issue 17: a postmortem draft whose upload Slack completed but whose
// answer was lost (a kill or a broken connection before the bot recorded
// it) is found in the incident's channel by its title and recorded, not
// uploaded again.
func TestInterruptedDraftUploadIsFound(t *testing.T) {
	ctx := context.Background()
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "bot.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := incidenttest.NewClock(time.Now())
	svc := incident.NewService(incident.ServiceConfig{Store: store, Clock: clock})
	sync := &incident.ChatSync{Store: store, Chat: client, Clock: clock}
	pm := postmortem.New(postmortem.Config{Incidents: svc, Uploader: client, Logger: zaptest.NewLogger(t)})
	runner := queue.New(queue.Config{Store: store, Clock: clock, Logger: zaptest.NewLogger(t)})
	runner.Handle(incident.JobChatSync, sync.Handle)
	runner.Handle(postmortem.JobPost, pm.HandlePost)
	inc, err := svc.Declare(ctx, incident.Declaration{Title: "Checkout is down", By: incident.BotActor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pm.Draft(ctx, incident.Ref{Number: inc.Number}, incident.BotActor); err != nil {
		t.Fatal(err)
	}
	fake.FailNext("files.completeUploadExternal", 1, slacktest.LostAnswer())
	for range 4 { // the first upload, its answer lost, then the retries
		if _, err := runner.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
	}
	var drafts []slacktest.File
	for _, f := range fake.Files() {
		if f.Channel != "" && strings.Contains(f.Title, "postmortem draft v1") {
			drafts = append(drafts, f)
		}
	}
	if len(drafts) != 1 {
		t.Fatalf("the draft is in the channel %d times, want once", len(drafts))
	}
	if strings.Contains(drafts[0].Comment, "Sent again") {
		t.Errorf("comment = %q", drafts[0].Comment)
	}
}
