package slack_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// warRoom is a new incident declared by Alice with two notes recorded
// before its channel exists, and the chat sync that has not run yet: its
// first run creates the channel, then invites Alice, posts the summary card
// and announces it side by side (issue 14), then tells the notes.
type warRoom struct {
	fake     *slacktest.Server
	client   *slack.Client
	store    *boltstore.Store
	svc      *incident.Service
	announce string
	inc      *incident.Incident
}

var warRoomNotes = []string{"first note: checkout 500s", "second note: rolled back"}

func newWarRoom(t *testing.T) *warRoom {
	t.Helper()
	fake := slacktest.NewServer(slacktest.Config{})
	t.Cleanup(fake.Close)
	fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice"})
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Rates: fastRates()})
	if err != nil {
		t.Fatal(err)
	}
	w := &warRoom{fake: fake, client: client, store: openStore(t), announce: fake.AddChannel("incidents", false, "U0ALICE", fake.BotUserID())}
	w.svc = incident.NewService(incident.ServiceConfig{Store: w.store})
	alice := incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	ctx := context.Background()
	if w.inc, err = w.svc.Declare(ctx, incident.Declaration{Title: "Checkout is down", By: alice}); err != nil {
		t.Fatal(err)
	}
	for _, n := range warRoomNotes {
		if _, err := w.svc.AddNote(ctx, incident.Ref{Number: w.inc.Number}, n, alice); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *warRoom) sync(chat incident.Chat, store incident.Store) *incident.ChatSync {
	return &incident.ChatSync{Store: store, Chat: chat, Clock: incident.SystemClock, AnnounceChannel: w.announce}
}

// settle runs the sync as the queue would, again after a failure, until it
// succeeds (at most a few times).
func (w *warRoom) settle(t *testing.T, s *incident.ChatSync) {
	t.Helper()
	var err error
	for range 6 {
		if err = s.Sync(context.Background(), w.inc.Number); err == nil {
			return
		}
	}
	t.Fatalf("the chat sync did not settle: %v", err)
}

// check asserts what a responder sees once the sync settled: Alice in the
// channel, one summary card, then each note once and in order, one
// announcement, and nothing left under way.
func (w *warRoom) check(t *testing.T) {
	t.Helper()
	inc, err := w.svc.Get(context.Background(), incident.Ref{Number: w.inc.Number})
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := w.fake.ChannelByName(inc.Chat.ChannelName)
	if !ok || inc.Chat.ChannelID == "" || len(w.fake.Channels()) != 2 {
		t.Fatalf("channels %+v, incident's %q: want the announce channel and one incident channel", w.fake.Channels(), inc.Chat.ChannelName)
	}
	if !slices.Contains(ch.Members, "U0ALICE") || !slices.Contains(inc.Chat.Invited, "U0ALICE") {
		t.Errorf("Alice in the channel: %v, recorded as invited: %v", ch.Members, inc.Chat.Invited)
	}
	var told []string
	for _, m := range w.fake.Messages(inc.Chat.ChannelID) {
		if m.BotID == "" || m.ThreadTS != "" {
			continue
		}
		switch {
		case strings.HasPrefix(m.Text, inc.ID()+" SEV"):
			told = append(told, "card")
		default:
			for _, n := range warRoomNotes {
				if strings.Contains(m.Text, n) {
					told = append(told, n)
				}
			}
		}
	}
	if want := append([]string{"card"}, warRoomNotes...); !slices.Equal(told, want) {
		t.Errorf("the channel shows %q, want %q (each once, in order)", told, want)
	}
	anns := 0
	for _, m := range w.fake.Messages(w.announce) {
		if m.BotID != "" && m.ThreadTS == "" && strings.HasPrefix(m.Text, inc.ID()+" ") {
			anns++
		}
	}
	if anns != 1 || inc.Chat.AnnounceID == "" || inc.Chat.SummaryID == "" {
		t.Errorf("%d announcements (recorded %q), summary recorded %q: want one of each", anns, inc.Chat.AnnounceID, inc.Chat.SummaryID)
	}
	if len(inc.Chat.Sending) != 0 {
		t.Errorf("posts left under way: %+v", inc.Chat.Sending)
	}
}

// rendezvous is a chat whose invite and summary post each wait, once the
// channel exists, until the other has begun: it shows that they run side
// by side. One after another, the first would wait for the second in
// vain; the wait is bounded so that such a failure is a clear error, not
// a hung test.
type rendezvous struct {
	*slack.Client
	invite, summary chan struct{}
	once            [2]sync.Once
}

var errNoOverlap = errors.New("the invite and the summary card did not run side by side")

func (r *rendezvous) meet(ctx context.Context, mine, other chan struct{}, once *sync.Once) error {
	once.Do(func() { close(mine) })
	select {
	case <-other:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errNoOverlap
	}
}

func (r *rendezvous) Invite(ctx context.Context, channelID string, users []string) error {
	if err := r.meet(ctx, r.invite, r.summary, &r.once[0]); err != nil {
		return err
	}
	return r.Client.Invite(ctx, channelID, users)
}

func (r *rendezvous) Post(ctx context.Context, channelID string, m incident.Message) (string, error) {
	if m.Kind == incident.MessageSummary {
		if err := r.meet(ctx, r.summary, r.invite, &r.once[1]); err != nil {
			return "", err
		}
	}
	return r.Client.Post(ctx, channelID, m)
}

// Issue 14: once the channel exists, inviting the on-call people and
// posting the summary card do not wait for each other, so the war room is
// two Slack round trips (create, then both), not three.
func TestWarRoomInvitesAndPostsTheSummarySideBySide(t *testing.T) {
	w := newWarRoom(t)
	chat := &rendezvous{Client: w.client, invite: make(chan struct{}), summary: make(chan struct{})}
	if err := w.sync(chat, w.store).Sync(context.Background(), w.inc.Number); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	w.check(t)
}

// Issue 14: faults hitting the invite, the summary card and the
// announcement at the same time (Slack acted but the answers were lost,
// or it answered 5xx or 429) lose nothing and repeat nothing: the retry
// finds the card and the announcement instead of posting them again, and
// the notes follow the card, once each, in order.
func TestWarRoomFaultsOnTheParallelSteps(t *testing.T) {
	faults := []struct {
		name string
		f    slacktest.Fault
	}{
		{"answers lost", slacktest.LostAnswer()},
		{"5xx", slacktest.ServerError()},
		{"429", slacktest.RateLimited(1)},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			w := newWarRoom(t)
			w.fake.FailNext("conversations.invite", 1, f.f)
			w.fake.FailNext("chat.postMessage", 2, f.f) // the card and the announcement
			s := w.sync(&rendezvous{Client: w.client, invite: make(chan struct{}), summary: make(chan struct{})}, w.store)
			if err := s.Sync(context.Background(), w.inc.Number); err == nil {
				t.Fatal("the first sync succeeded through three faults")
			}
			s.Chat = w.client
			w.settle(t, s)
			w.check(t)
		})
	}
}

// killable is the real store until the simulated process dies: from then
// on its writes fail, as nothing written after a SIGKILL reaches the file.
type killable struct {
	*boltstore.Store
	dead atomic.Bool
}

var errKilled = errors.New("killed")

func (k *killable) Update(ctx context.Context, fn func(incident.Tx) error) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Store.Update(ctx, fn)
}

func (k *killable) Batch(ctx context.Context, fn func(incident.Tx) error) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Store.Batch(ctx, fn)
}

// killAfter is a chat on which the process dies right after Slack carried
// out one of the parallel steps' calls (the invite, the summary card or
// the announcement) and before the bot recorded it, while the other steps
// are under way or done.
type killAfter struct {
	*slack.Client
	store *killable
	call  string // "invite", "summary" or "announcement"
}

func (k *killAfter) Invite(ctx context.Context, channelID string, users []string) error {
	err := k.Client.Invite(ctx, channelID, users)
	if k.call == "invite" {
		k.store.dead.Store(true)
	}
	return err
}

func (k *killAfter) Post(ctx context.Context, channelID string, m incident.Message) (string, error) {
	id, err := k.Client.Post(ctx, channelID, m)
	if (k.call == "summary" && m.Kind == incident.MessageSummary) || (k.call == "announcement" && m.Kind == incident.MessageAnnouncement) {
		k.store.dead.Store(true)
	}
	return id, err
}

// Issue 14: a kill between the parallel steps (one of them carried out by
// Slack and not recorded, the others under way) is resumed by the next
// run: every message once, in order, nobody left out of the channel.
func TestWarRoomKillBetweenTheParallelSteps(t *testing.T) {
	for _, call := range []string{"invite", "summary", "announcement"} {
		t.Run("after the "+call, func(t *testing.T) {
			w := newWarRoom(t)
			store := &killable{Store: w.store}
			err := w.sync(&killAfter{Client: w.client, store: store, call: call}, store).Sync(context.Background(), w.inc.Number)
			if !errors.Is(err, errKilled) {
				t.Fatalf("the killed run returned %v, want the store's failure", err)
			}
			// The restarted process: the same file, a new sync.
			w.settle(t, w.sync(w.client, w.store))
			w.check(t)
			if n := len(w.fake.Calls("conversations.create")); n != 1 {
				t.Errorf("%d conversations.create calls, want 1", n)
			}
		})
	}
}

// The serial mode (the local shell, whose transcript must read in a fixed
// order) makes the same calls one after another: create, invite, card,
// announcement, then the notes.
func TestWarRoomSerial(t *testing.T) {
	w := newWarRoom(t)
	s := w.sync(w.client, w.store)
	s.Serial = true
	w.settle(t, s)
	w.check(t)
	var order []string
	for _, c := range w.fake.Calls("") {
		if c.Method != "conversations.setTopic" {
			order = append(order, c.Method+" "+c.Form.Get("channel"))
		}
	}
	inc, _ := w.svc.Get(context.Background(), incident.Ref{Number: w.inc.Number})
	ch := inc.Chat.ChannelID
	want := []string{"conversations.create ", "conversations.invite " + ch, "chat.postMessage " + ch, "chat.postMessage " + w.announce,
		"chat.postMessage " + ch}
	if !slices.Equal(order, want) {
		t.Errorf("calls %q, want %q", order, want)
	}
}

// Issue 14: in an alert storm, channels for incidents nobody is waiting on
// (raised by an alert, nobody paged: incident.WithBackground) leave the
// last call of conversations.create's burst free, so a page's channel is
// created at once instead of waiting behind the storm's; and while both
// wait, the page's turn comes first.
func TestBackgroundCallsLeaveRoomForAPage(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	// Calls that would wait at all are deferred, with the wait, as a
	// queued job's are.
	ctx := incident.WithWaitBudget(context.Background(), 0)
	storm := incident.WithBackground(ctx)
	created := 0
	for i := range 10 {
		if _, err := env.client.CreateChannel(storm, fmt.Sprintf("inc-%d-alert", i)); err == nil {
			created++
		} else if _, deferred := incident.IsDeferred(err); !deferred {
			t.Fatalf("alert channel %d: %v, want a deferral", i, err)
		}
	}
	if created != slack.Tier2.Burst-1 {
		t.Errorf("%d alert channels created back to back, want %d (the burst less one kept for a page)", created, slack.Tier2.Burst-1)
	}
	if _, err := env.client.CreateChannel(ctx, "inc-99-paged"); err != nil {
		t.Fatalf("the page's channel waits behind the storm: %v", err)
	}
	// Both wait now; the next page's wait is shorter than the storm's.
	_, errPage := env.client.CreateChannel(ctx, "inc-100-paged")
	_, errAlert := env.client.CreateChannel(storm, "inc-11-alert")
	page, _ := incident.IsDeferred(errPage)
	alert, _ := incident.IsDeferred(errAlert)
	if page <= 0 || alert <= page {
		t.Errorf("the next page waits %s, the next alert %s: want the page first", page, alert)
	}
}

// recordBackground is a chat that notes whether each channel was created
// in the background.
type recordBackground struct {
	*slack.Client
	background map[string]bool
}

func (r *recordBackground) CreateChannel(ctx context.Context, name string) (incident.ChannelRef, error) {
	r.background[name] = incident.Background(ctx)
	return r.Client.CreateChannel(ctx, name)
}

// Issue 14: the chat sync of an incident an alert raised, nobody paged, runs
// in the background; a declared or paged incident's does not.
func TestAlertRaisedIncidentsSyncInTheBackground(t *testing.T) {
	w := newWarRoom(t) // INC-1, declared by Alice
	ctx := context.Background()
	alert, err := w.svc.ApplyAlerts(ctx, incident.AlertNotification{Source: "alertmanager", SourceName: "Alertmanager", GroupKey: "{}:{alertname=\"HighLatency\"}",
		Alerts: []incident.Alert{{Fingerprint: "f1", Firing: true, Labels: map[string]string{"alertname": "HighLatency"}}}}, incident.AlertPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	paged, err := w.svc.ApplyPagerEvent(ctx, incident.PagerEvent{Source: incident.SourcePagerDuty, SourceName: "PagerDuty", ID: "ev1", Type: incident.PagerTriggered,
		OccurredAt: time.Now(), Incident: incident.PagerIncident{ID: "PABC", Title: "Disk full", Status: "triggered", Full: true}})
	if err != nil {
		t.Fatal(err)
	}
	chat := &recordBackground{Client: w.client, background: map[string]bool{}}
	s := w.sync(chat, w.store)
	want := map[string]bool{}
	for _, inc := range []*incident.Incident{w.inc, alert, paged} {
		if err := s.Sync(ctx, inc.Number); err != nil {
			t.Fatal(err)
		}
		got, _ := w.svc.Get(ctx, incident.Ref{Number: inc.Number})
		want[got.Chat.ChannelName] = inc == alert
	}
	if !maps.Equal(chat.background, want) {
		t.Errorf("channels created in the background: %v, want %v", chat.background, want)
	}
}
