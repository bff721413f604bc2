package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// Issue 10, item 12: a message pinned while the incident's channel waits
// for Slack's pacing is on the timeline at once (so in a postmortem drafted
// seconds later); recording it does not wait behind the paced posts.
func TestPinIsRecordedWhilePostsWait(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	bot.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down")
	var ch slacktest.Channel
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-checkout-is-down")
		ch = c
		return ok && len(summaries(fake, c.ID)) == 1
	}) {
		t.Fatal("no incident channel")
	}
	waitFor(t, 10*time.Second, "the declaration's chat work", bot.idle)

	// Slack makes the channel's posts wait a minute; a note is queued
	// behind that wait.
	fake.FailNextIn("chat.postMessage", ch.ID, 1, slacktest.RateLimited(60))
	bot.command(t, "U0ALICE", ch.ID, "note looking at the load balancer")
	if !fake.Wait(10*time.Second, func() bool {
		calls := fake.Calls("chat.postMessage")
		return len(calls) > 0 && calls[len(calls)-1].Status == http.StatusTooManyRequests
	}) {
		t.Fatal("the note's post was not rate-limited")
	}

	carolTS := fake.UserPost(ch.ID, "U0CAROL", "the error rate dropped at 10:42")
	if r, err := bot.send.Event(context.Background(), fake.PinAdded("Ev0PIN1", "U0CAROL", ch.ID, carolTS), 0); err != nil || r.Status != http.StatusOK {
		t.Fatalf("pin_added: %v %+v", err, r)
	}
	waitFor(t, 10*time.Second, "the pin on the timeline", func() bool {
		return countKind(bot.timeline(t, 1), incident.EventMessagePinned) == 1
	})
	if anyText(fake, ch.ID, "looking at the load balancer") {
		t.Fatal("the note was posted already: the test did not make the pin wait behind it")
	}
}
