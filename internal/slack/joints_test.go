package slack_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// syncWorld is one incident, synced once (channel, summary card,
// announcement) against the fake Slack, with the chat sync a job would run.
type syncWorld struct {
	fake     *slacktest.Server
	store    *boltstore.Store
	svc      *incident.Service
	sync     *incident.ChatSync
	announce string
	inc      *incident.Incident
}

func newSyncWorld(t *testing.T) *syncWorld {
	t.Helper()
	fake := slacktest.NewServer(slacktest.Config{})
	t.Cleanup(fake.Close)
	fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice"})
	// The client waits out Retry-After on a clock the test moves.
	clock := incidenttest.NewClock(time.Now())
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Rates: fastRates(),
		Clock: clock, Sleep: func(_ context.Context, d time.Duration) error { clock.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	w := &syncWorld{fake: fake, store: openStore(t), announce: fake.AddChannel("incidents", false, "U0ALICE", fake.BotUserID())}
	w.svc = incident.NewService(incident.ServiceConfig{Store: w.store})
	w.sync = &incident.ChatSync{Store: w.store, Chat: client, Clock: incident.SystemClock, AnnounceChannel: w.announce}
	w.inc, err = w.svc.Declare(context.Background(), incident.Declaration{Title: "Checkout is down", By: incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sync.Sync(context.Background(), w.inc.Number); err != nil {
		t.Fatal(err)
	}
	w.inc = w.get(t)
	if w.inc.Chat.AnnounceID == "" {
		t.Fatal("the incident was not announced")
	}
	return w
}

func (w *syncWorld) get(t *testing.T) *incident.Incident {
	t.Helper()
	inc, err := w.svc.Get(context.Background(), incident.Ref{Number: w.inc.Number})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// count counts the bot's messages in a channel containing sub: top-level
// ones, or replies in a thread when thread is set.
func (w *syncWorld) count(channel, thread, sub string) int {
	n := 0
	for _, m := range w.fake.Messages(channel) {
		if m.BotID != "" && m.ThreadTS == thread && strings.Contains(m.Text, sub) {
			n++
		}
	}
	return n
}

// runJob runs the chat sync as the queue would: again after a retryable
// error, at most a few times; it returns the last error.
func (w *syncWorld) runJob(t *testing.T) error {
	t.Helper()
	var err error
	for range 5 {
		if err = w.sync.Sync(context.Background(), w.inc.Number); err == nil {
			return nil
		}
		if _, retry := incident.IsRetryable(err); !retry {
			return err
		}
	}
	return err
}

// Issue 10, defect 1: a status update's copy in the announcement's thread
// that has to wait (the announce channel is paced, or Slack answers 429)
// must not make the incident's channel tell the update again.
func TestDeferredThreadCopyDoesNotRepeatTheUpdate(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	if _, err := w.svc.PostStatusUpdate(ctx, incident.Ref{Number: w.inc.Number}, "rolling back the deploy", incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}); err != nil {
		t.Fatal(err)
	}
	w.fake.FailNextIn("chat.postMessage", w.announce, 3, slacktest.RateLimited(1))
	if err := w.runJob(t); err != nil {
		t.Fatalf("sync: %v", err)
	}
	ch := w.inc.Chat.ChannelID
	if n := w.count(ch, "", "rolling back the deploy"); n != 1 {
		t.Errorf("the update is told %d times in the incident's channel, want once", n)
	}
	if n := w.count(w.announce, w.inc.Chat.AnnounceID, "rolling back the deploy"); n != 1 {
		t.Errorf("the update is copied %d times into the announcement's thread, want once", n)
	}
}

// Issue 10, defect 2: an announce channel that refuses the thread copy for
// good (archived) is said once in the incident's channel and skipped; the
// incident's channel keeps going.
func TestArchivedAnnounceChannelDoesNotStallTheIncident(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	ref := incident.Ref{Number: w.inc.Number}
	w.fake.ArchiveChannel(w.announce)
	if _, err := w.svc.PostStatusUpdate(ctx, ref, "first update", alice); err != nil {
		t.Fatal(err)
	}
	if err := w.runJob(t); err != nil {
		t.Fatalf("sync with the announce channel archived: %v (the job would be dead-lettered)", err)
	}
	if _, err := w.svc.AddNote(ctx, ref, "a later note", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.PostStatusUpdate(ctx, ref, "second update", alice); err != nil {
		t.Fatal(err)
	}
	if err := w.runJob(t); err != nil {
		t.Fatalf("a later sync: %v", err)
	}
	ch := w.inc.Chat.ChannelID
	for _, text := range []string{"first update", "a later note", "second update"} {
		if n := w.count(ch, "", text); n != 1 {
			t.Errorf("%q is told %d times in the incident's channel, want once", text, n)
		}
	}
	if n := w.count(ch, "", "I could not copy status updates"); n != 1 {
		t.Errorf("the refusal is said %d times in the incident's channel, want once", n)
	}
	if got := w.get(t); !got.Chat.AnnounceFailed {
		t.Error("AnnounceFailed is not set")
	}
	if n := len(w.fake.Calls("chat.postMessage")); n > 6 {
		t.Errorf("%d chat.postMessage calls: the bot keeps trying the archived channel", n)
	}
}

// failingWrites is the real store whose writes fail (a full disk, a
// shutdown) while reads work.
type failingWrites struct{ *boltstore.Store }

var errDiskFull = errors.New("write /data/bot.db: no space left on device")

func (s failingWrites) Update(context.Context, func(incident.Tx) error) error { return errDiskFull }
func (s failingWrites) Batch(context.Context, func(incident.Tx) error) error  { return errDiskFull }

// Issue 10, defect 3: a store write that fails while the incident's channel
// is being created is an error the job retries, not a panic.
func TestChannelCreationSurvivesAFailedWrite(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Rates: fastRates()})
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	svc := incident.NewService(incident.ServiceConfig{Store: store})
	inc, err := svc.Declare(context.Background(), incident.Declaration{Title: "db down", By: incident.BotActor})
	if err != nil {
		t.Fatal(err)
	}
	sync := &incident.ChatSync{Store: failingWrites{store}, Chat: client, Clock: incident.SystemClock}
	err = sync.Sync(context.Background(), inc.Number)
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("sync = %v, want the store's error", err)
	}
	if !strings.Contains(err.Error(), "INC-1") {
		t.Errorf("error %q does not name the incident", err)
	}
	// Once the disk has room again, the retry creates the channel.
	sync.Store = store
	if err := sync.Sync(context.Background(), inc.Number); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Channels()); n != 1 {
		t.Errorf("%d channels, want 1", n)
	}
}

// Issue 17: when Slack carried out a post but its answer was lost (a kill
// or a broken connection between the call and recording the message), the
// retry finds the message by its metadata instead of posting it again:
// every summary card, announcement, timeline message and status-update
// copy is in Slack once.
func TestLostAnswerIsNotPostedAgain(t *testing.T) {
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	cases := []struct {
		name string
		// lose arranges for the answer to the post under test to be lost,
		// and makes the incident change that needs it.
		lose func(t *testing.T, w *syncWorld)
		// in is the channel and thread to count in, sub the text.
		in  func(w *syncWorld) (channel, thread string)
		sub string
	}{
		{name: "timeline message", sub: "checking the load balancer",
			lose: func(t *testing.T, w *syncWorld) {
				w.fake.FailNextIn("chat.postMessage", w.inc.Chat.ChannelID, 1, slacktest.LostAnswer())
				if _, err := w.svc.AddNote(context.Background(), incident.Ref{Number: w.inc.Number}, "checking the load balancer", alice); err != nil {
					t.Fatal(err)
				}
			},
			in: func(w *syncWorld) (string, string) { return w.inc.Chat.ChannelID, "" }},
		{name: "status update copy", sub: "rolled back",
			lose: func(t *testing.T, w *syncWorld) {
				w.fake.FailNextIn("chat.postMessage", w.announce, 1, slacktest.LostAnswer())
				if _, err := w.svc.PostStatusUpdate(context.Background(), incident.Ref{Number: w.inc.Number}, "rolled back", alice); err != nil {
					t.Fatal(err)
				}
			},
			in: func(w *syncWorld) (string, string) { return w.announce, w.inc.Chat.AnnounceID }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newSyncWorld(t)
			tc.lose(t, w)
			err := w.sync.Sync(context.Background(), w.inc.Number)
			if _, retry := incident.IsRetryable(err); !retry {
				t.Fatalf("sync with the answer lost = %v, want a retryable error", err)
			}
			if err := w.runJob(t); err != nil {
				t.Fatalf("retry: %v", err)
			}
			ch, thread := tc.in(w)
			if n := w.count(ch, thread, tc.sub); n != 1 {
				t.Errorf("%q is in Slack %d times, want once", tc.sub, n)
			}
			if got := w.get(t); len(got.Chat.Sending) != 0 {
				t.Errorf("posts still recorded as under way: %+v", got.Chat.Sending)
			}
		})
	}
	// The first posts: the summary card and the announcement.
	for _, first := range []string{"summary", "announcement"} {
		t.Run(first, func(t *testing.T) {
			fake := slacktest.NewServer(slacktest.Config{})
			defer fake.Close()
			client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Rates: fastRates()})
			if err != nil {
				t.Fatal(err)
			}
			announce := fake.AddChannel("incidents", false, fake.BotUserID())
			store := openStore(t)
			svc := incident.NewService(incident.ServiceConfig{Store: store})
			sync := &incident.ChatSync{Store: store, Chat: client, Clock: incident.SystemClock, AnnounceChannel: announce}
			inc, err := svc.Declare(context.Background(), incident.Declaration{Title: "Checkout is down", By: incident.BotActor})
			if err != nil {
				t.Fatal(err)
			}
			if first == "summary" {
				fake.FailNext("chat.postMessage", 1, slacktest.LostAnswer())
			} else {
				fake.FailNextIn("chat.postMessage", announce, 1, slacktest.LostAnswer())
			}
			for range 3 {
				if err = sync.Sync(context.Background(), inc.Number); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := svc.Get(context.Background(), incident.Ref{Number: inc.Number})
			cards, anns := 0, 0
			for _, m := range fake.Messages(got.Chat.ChannelID) {
				if strings.HasPrefix(m.Text, "INC-1 SEV") {
					cards++
				}
			}
			for _, m := range fake.Messages(announce) {
				if strings.HasPrefix(m.Text, "INC-1 ") && m.ThreadTS == "" {
					anns++
				}
			}
			if cards != 1 || anns != 1 {
				t.Errorf("%d summary cards and %d announcements, want one each", cards, anns)
			}
			if got.Chat.SummaryID == "" || got.Chat.AnnounceID == "" {
				t.Errorf("summary %q and announcement %q not recorded", got.Chat.SummaryID, got.Chat.AnnounceID)
			}
		})
	}
}

// A timeline entry Slack refuses for good in the incident's own channel
// (msg_too_long) is skipped and the refusal told once; the channel goes on
// with later entries instead of the job dying and stalling it.
func TestRefusedEntryDoesNotStallTheChannel(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	ref := incident.Ref{Number: w.inc.Number}
	ch := w.inc.Chat.ChannelID
	for _, n := range []string{"first note", "second note"} {
		if _, err := w.svc.AddNote(ctx, ref, n, alice); err != nil {
			t.Fatal(err)
		}
	}
	// The batch of both is refused, then the first alone.
	w.fake.FailNextIn("chat.postMessage", ch, 2, slacktest.SlackError("msg_too_long"))
	if err := w.runJob(t); err != nil {
		t.Fatalf("sync: %v (the job would be dead-lettered)", err)
	}
	if _, err := w.svc.AddNote(ctx, ref, "third note", alice); err != nil {
		t.Fatal(err)
	}
	if err := w.runJob(t); err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]int{"first note": 0, "second note": 1, "third note": 1, "I could not tell a timeline entry": 1} {
		if n := w.count(ch, "", text); n != want {
			t.Errorf("%q told %d times, want %d", text, n, want)
		}
	}
}

// Issue 17: a post outside the chat sync (a runbook's result) made with
// incident.PostOnce is in Slack once when its answer was lost.
func TestPostOnceAfterALostAnswer(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	ch := w.inc.Chat.ChannelID
	key := incident.PostKey{Incident: w.inc.ID(), Kind: incident.PostRunbookResult, Seq: "42"}
	m := incident.Message{Kind: incident.MessageText, Text: "restart-api finished: ok", ThreadID: w.inc.Chat.SummaryID}
	w.fake.FailNextIn("chat.postMessage", ch, 1, slacktest.LostAnswer())
	if _, err := incident.PostOnce(ctx, w.store, w.sync.Chat, incident.SystemClock, key, ch, m); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	id, err := incident.PostOnce(ctx, w.store, w.sync.Chat, incident.SystemClock, key, ch, m) // the job's retry
	if err != nil || id == "" {
		t.Fatalf("retry: %q %v", id, err)
	}
	again, err := incident.PostOnce(ctx, w.store, w.sync.Chat, incident.SystemClock, key, ch, m) // a retry after the record
	if err != nil || again != id {
		t.Fatalf("second retry: %q %v, want %q", again, err, id)
	}
	if n := w.count(ch, w.inc.Chat.SummaryID, "restart-api finished"); n != 1 {
		t.Errorf("the result is in the thread %d times, want once", n)
	}
}

// An incident recorded by the version that copied status updates along
// with the channel post (no SharedSeq) has had every told update copied
// already: after an upgrade only new updates are copied.
func TestUpgradeDoesNotCopyOldUpdatesAgain(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	ref := incident.Ref{Number: w.inc.Number}
	if _, err := w.svc.PostStatusUpdate(ctx, ref, "old update", alice); err != nil {
		t.Fatal(err)
	}
	if err := w.runJob(t); err != nil {
		t.Fatal(err)
	}
	// As the previous version left it.
	err := w.store.Update(ctx, func(tx incident.Tx) error {
		inc, err := tx.Incident(w.inc.Number)
		if err != nil {
			return err
		}
		inc.Chat.SharedSeq = 0
		return tx.PutIncident(inc)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.PostStatusUpdate(ctx, ref, "new update", alice); err != nil {
		t.Fatal(err)
	}
	if err := w.runJob(t); err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]int{"old update": 1, "new update": 1} {
		if n := w.count(w.announce, w.inc.Chat.AnnounceID, text); n != want {
			t.Errorf("%q copied %d times, want %d", text, n, want)
		}
	}
}

// A runbook's approval request whose answer was lost, posted again by the
// retried click, is in the thread once.
func TestApprovalRequestIsPostedOnce(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	client := w.sync.Chat.(*slack.Client)
	ch, thread := w.inc.Chat.ChannelID, w.inc.Chat.SummaryID
	w.fake.FailNextIn("chat.postMessage", ch, 1, slacktest.LostAnswer())
	if err := client.PostApprovalRequest(ctx, ch, thread, "run-7", "restart-api needs approval"); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	for range 2 { // the click's retries
		if err := client.PostApprovalRequest(ctx, ch, thread, "run-7", "restart-api needs approval"); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.count(ch, thread, "restart-api needs approval"); n != 1 {
		t.Errorf("the approval request is in the thread %d times, want once", n)
	}
}
