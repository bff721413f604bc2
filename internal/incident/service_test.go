package incident_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/boltstore/bolttest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
)

var (
	start = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)
	alice = incident.Actor{ID: "U0ALICE", Name: "alice", Source: incident.SourceSlack}
	bob   = incident.Actor{ID: "U0BOB", Name: "bob", Source: incident.SourceSlack}
)

func newService(t *testing.T) (*incident.Service, *boltstore.Store, *incidenttest.Clock) {
	t.Helper()
	store := bolttest.Open(t)
	clock := incidenttest.NewClock(start)
	return incident.NewService(incident.ServiceConfig{Store: store, Clock: clock}), store, clock
}

func TestDeclareNumbersAreSequentialAndChatDeclarerAcknowledges(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	a, err := svc.Declare(ctx, incident.Declaration{Title: "db down", Severity: incident.SEV2, By: alice})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Declare(ctx, incident.Declaration{Title: "api slow", By: incident.Actor{ID: "PD", Source: incident.SourcePagerDuty}, Triggered: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != "INC-1" || b.ID() != "INC-2" {
		t.Fatalf("ids %s %s, want INC-1 INC-2", a.ID(), b.ID())
	}
	if a.Status != incident.StatusAcknowledged || a.AcknowledgedBy.ID != alice.ID || a.Commander() != alice.ID {
		t.Errorf("declared in chat: status %s acked by %q commander %q", a.Status, a.AcknowledgedBy.ID, a.Commander())
	}
	if b.Status != incident.StatusTriggered || !b.AcknowledgedAt.IsZero() || b.Severity != incident.DefaultSeverity || b.Commander() != "" {
		t.Errorf("raised by a pager: %+v", b)
	}
	if _, err := svc.Declare(ctx, incident.Declaration{Title: "  ", By: alice}); incident.ErrorCode(err) != incident.EINVALID {
		t.Errorf("empty title: %v", err)
	}
	if _, err := svc.Declare(ctx, incident.Declaration{Title: strings.Repeat("x", 201), By: alice}); incident.ErrorCode(err) != incident.EINVALID {
		t.Errorf("long title: %v", err)
	}
	c, _ := svc.Declare(ctx, incident.Declaration{Title: "third", By: alice})
	if c.ID() != "INC-3" {
		t.Errorf("failed declarations consumed numbers: got %s", c.ID())
	}
}

func TestDeclareIsIdempotentByKeyAndPagerIncident(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	d := incident.Declaration{Title: "db down", By: alice, Key: "slack-view:V1"}
	a, _ := svc.Declare(ctx, d)
	b, err := svc.Declare(ctx, d)
	if err != nil || a.Number != b.Number {
		t.Fatalf("same key declared twice: %v, %d vs %d", err, a.Number, b.Number)
	}
	p := incident.Declaration{Title: "pager", Triggered: true, By: incident.Actor{Source: incident.SourcePagerDuty}, Pager: incident.PagerRef{IncidentID: "PGR0VU2"}}
	x, _ := svc.Declare(ctx, p)
	y, _ := svc.Declare(ctx, p)
	if x.Number != y.Number {
		t.Fatalf("one PagerDuty incident opened two incidents: %d, %d", x.Number, y.Number)
	}
	list, _ := svc.List(ctx, incident.Filter{})
	if len(list) != 2 {
		t.Fatalf("%d incidents, want 2", len(list))
	}
}

func TestLifecycleTimelineAndLookups(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := context.Background()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", Severity: incident.SEV2, By: alice})
	ref := incident.Ref{Number: inc.Number}
	step := func(f func() (*incident.Incident, error)) {
		t.Helper()
		clock.Advance(time.Minute)
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	step(func() (*incident.Incident, error) { return svc.AddNote(ctx, ref, "looking at the primary", alice) })
	step(func() (*incident.Incident, error) { return svc.SetSeverity(ctx, ref, incident.SEV1, bob) })
	step(func() (*incident.Incident, error) { return svc.AssignRole(ctx, ref, incident.RoleComms, bob.ID, alice) })
	step(func() (*incident.Incident, error) { return svc.PostStatusUpdate(ctx, ref, "we are failing over", bob) })
	step(func() (*incident.Incident, error) { return svc.Mitigate(ctx, ref, alice, "failed over") })
	step(func() (*incident.Incident, error) {
		return svc.AddFollowup(ctx, ref, "alert on replication lag", alice)
	})
	step(func() (*incident.Incident, error) { return svc.Resolve(ctx, ref, alice, "primary replaced") })
	if _, err := svc.Resolve(ctx, ref, alice, ""); incident.ErrorCode(err) != incident.ECONFLICT {
		t.Fatalf("resolving twice: %v", err)
	}

	got, events, err := svc.Timeline(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, string(ev.Kind))
	}
	want := "declared note severity_changed role_assigned status_update status_changed followup_added status_changed"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("timeline kinds:\n got %s\nwant %s", strings.Join(kinds, " "), want)
	}
	if got.Status != incident.StatusResolved || got.Severity != incident.SEV1 || got.Roles[incident.RoleComms] != bob.ID ||
		len(got.Followups) != 1 || got.LastUpdateAt != start.Add(4*time.Minute) {
		t.Fatalf("incident after lifecycle: %+v", got)
	}
	if !strings.Contains(strings.Join(got.Members, ","), bob.ID) {
		t.Errorf("bob acted but is not a participant: %v", got.Members)
	}
	open, _ := svc.List(ctx, incident.Filter{OpenOnly: true})
	if len(open) != 0 {
		t.Errorf("resolved incident still listed open")
	}
	inRange, _ := svc.List(ctx, incident.Filter{DeclaredFrom: start, DeclaredTo: start.Add(time.Second)})
	outRange, _ := svc.List(ctx, incident.Filter{DeclaredFrom: start.Add(time.Second)})
	if len(inRange) != 1 || len(outRange) != 0 {
		t.Errorf("time range look-up: %d in, %d out", len(inRange), len(outRange))
	}
	// Channel look-up works once the chat sync recorded the channel.
	chat := incidenttest.NewChat()
	sync := &incident.ChatSync{Store: store, Chat: chat, Clock: clock}
	if err := sync.Sync(ctx, inc.Number); err != nil {
		t.Fatal(err)
	}
	byChannel, err := svc.Get(ctx, incident.Ref{ChannelID: "C1"})
	if err != nil || byChannel.Number != inc.Number {
		t.Fatalf("look-up by channel: %v", err)
	}
	if _, err := svc.Get(ctx, incident.Ref{ChannelID: "CNOPE"}); incident.ErrorCode(err) != incident.EINVALID ||
		!strings.Contains(incident.ErrorMessage(err), "not an incident channel") {
		t.Errorf("unknown channel: %v", err)
	}
	if _, err := svc.Get(ctx, incident.Ref{Number: 99}); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("unknown incident: %v", err)
	}
}

func TestRecordIsIdempotentByKey(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := context.Background()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	pinnedAt := start.Add(-10 * time.Minute) // the message is older than the incident
	ev := incident.Event{Kind: incident.EventMessagePinned, At: pinnedAt, Actor: bob, Text: "primary is at 100% disk", Key: "pin:C1:1700000000.000100"}
	for i := range 3 {
		clock.Advance(time.Second)
		ok, err := svc.Record(ctx, incident.Ref{Number: inc.Number}, ev)
		if err != nil || ok != (i == 0) {
			t.Fatalf("record #%d: ok=%v err=%v", i+1, ok, err)
		}
	}
	_, events, _ := svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	if len(events) != 2 || events[0].Kind != incident.EventMessagePinned || !events[0].At.Equal(pinnedAt) {
		t.Fatalf("timeline should hold the pin once, first in time order: %+v", events)
	}
}

func TestConcurrentChangesAreAllKept(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	const writers, notes = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range notes {
				if _, err := svc.AddNote(ctx, incident.Ref{Number: inc.Number}, fmt.Sprintf("w%d n%d", w, i), alice); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, events, _ := svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	if len(events) != 1+writers*notes {
		t.Fatalf("%d events, want %d", len(events), 1+writers*notes)
	}
	seen := map[int64]bool{}
	for _, ev := range events {
		if seen[ev.Seq] {
			t.Fatalf("sequence %d used twice", ev.Seq)
		}
		seen[ev.Seq] = true
	}
	if got.Revision != 1+writers*notes {
		t.Errorf("revision %d, want %d (a lost update?)", got.Revision, 1+writers*notes)
	}
}

func runSync(t *testing.T, store *boltstore.Store, chat incident.Chat, clock incident.Clock, n int64) error {
	t.Helper()
	s := &incident.ChatSync{Store: store, Chat: chat, Clock: clock, AnnounceChannel: "CANNOUNCE"}
	return s.Sync(context.Background(), n)
}

func TestChatSyncCreatesOneChannelAndConverges(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "Database is down", Severity: incident.SEV2, By: alice})
	if err := runSync(t, store, chat, clock, inc.Number); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
	if got.Chat.ChannelName != "inc-1-database-is-down" || got.Chat.ChannelID == "" {
		t.Fatalf("channel %q %q", got.Chat.ChannelName, got.Chat.ChannelID)
	}
	ch := got.Chat.ChannelID
	if posts := chat.PostsIn(ch); len(posts) != 1 || posts[0].Message.Kind != incident.MessageSummary {
		t.Fatalf("channel posts after declare: %+v", posts)
	}
	if posts := chat.PostsIn("CANNOUNCE"); len(posts) != 1 || posts[0].Message.Kind != incident.MessageAnnouncement {
		t.Fatalf("announcements: %+v", posts)
	}
	if m := chat.Members[ch]; len(m) != 1 || m[0] != alice.ID {
		t.Fatalf("members %v", m)
	}
	if !strings.Contains(chat.Topics[ch], "SEV2") {
		t.Errorf("topic %q", chat.Topics[ch])
	}

	// Changes: the summary and announcement are updated in place, events are
	// told, the new role holder is invited, and nothing is created twice.
	ref := incident.Ref{Number: inc.Number}
	_, _ = svc.AddNote(ctx, ref, "looking", alice)
	_, _ = svc.AssignRole(ctx, ref, incident.RoleScribe, bob.ID, alice)
	_, _ = svc.SetSeverity(ctx, ref, incident.SEV1, alice)
	for range 2 { // a second sync with nothing new changes nothing
		if err := runSync(t, store, chat, clock, inc.Number); err != nil {
			t.Fatal(err)
		}
	}
	if len(chat.Channels) != 1 {
		t.Fatalf("%d channels, want 1", len(chat.Channels))
	}
	posts := chat.PostsIn(ch)
	if len(posts) != 2 || len(posts[1].Message.Events) != 3 {
		t.Fatalf("want the summary plus one batch of 3 events, got %d posts", len(posts))
	}
	var summaryUpdates, announceUpdates int
	for _, p := range chat.All() {
		if p.Update && p.ID == got.Chat.SummaryID {
			summaryUpdates++
			if p.Message.Incident.Severity != incident.SEV1 {
				t.Errorf("summary updated with stale severity %s", p.Message.Incident.Severity)
			}
		}
		if p.Update && p.Channel == "CANNOUNCE" {
			announceUpdates++
		}
	}
	if summaryUpdates != 1 || announceUpdates != 1 {
		t.Errorf("summary updated %d times, announcement %d times; want once each", summaryUpdates, announceUpdates)
	}
	if m := chat.Members[ch]; len(m) != 2 || m[1] != bob.ID {
		t.Errorf("members %v, want alice then bob", m)
	}
	if !strings.Contains(chat.Topics[ch], "SEV1") {
		t.Errorf("topic not updated: %q", chat.Topics[ch])
	}
}

func TestChatSyncNameTakenAndCrashRecovery(t *testing.T) {
	ctx := context.Background()
	t.Run("a name taken by someone else gets a suffix", func(t *testing.T) {
		svc, store, clock := newService(t)
		chat := incidenttest.NewChat()
		chat.Channels["inc-1-db-down"] = "COTHER"
		inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
		if err := runSync(t, store, chat, clock, inc.Number); err != nil {
			t.Fatal(err)
		}
		got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
		if got.Chat.ChannelName != "inc-1-db-down-2" || got.Chat.ChannelID == "COTHER" {
			t.Fatalf("adopted someone else's channel or no suffix: %+v", got.Chat)
		}
	})
	t.Run("a channel created just before a crash is adopted, not duplicated", func(t *testing.T) {
		svc, store, clock := newService(t)
		chat := incidenttest.NewChat()
		inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
		// The platform creates the channel but the answer is lost (the bot
		// crashed, or the connection dropped after the request was served).
		crashed := false
		chat.Fail = func(op string) error {
			if op == "create" && !crashed {
				crashed = true
				chat.Channels["inc-1-db-down"] = "CFIRST" // created remotely
				return incident.Retryable(errors.New("connection reset"), 0)
			}
			return nil
		}
		if err := runSync(t, store, chat, clock, inc.Number); err == nil {
			t.Fatal("sync succeeded despite the lost answer")
		}
		// Restart: reopen the store file, as after a crash.
		path := store.Path()
		_ = store.Close()
		store2 := bolttest.OpenAt(t, path)
		if err := runSync(t, store2, chat, clock, inc.Number); err != nil {
			t.Fatal(err)
		}
		var got *incident.Incident
		_ = store2.View(ctx, func(tx incident.Tx) error { got, _ = tx.Incident(inc.Number); return nil })
		if got.Chat.ChannelID != "CFIRST" || len(chat.Channels) != 1 {
			t.Fatalf("channel %q, %d channels; want the first one adopted", got.Chat.ChannelID, len(chat.Channels))
		}
	})
}

func TestChatSyncOutageLosesNothing(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	_ = runSync(t, store, chat, clock, inc.Number)
	down := true
	chat.Fail = func(op string) error {
		if down {
			return incident.Retryable(errors.New("slack is down"), time.Second)
		}
		return nil
	}
	ref := incident.Ref{Number: inc.Number}
	for i := range 5 {
		_, _ = svc.AddNote(ctx, ref, fmt.Sprintf("note %d", i), alice)
		if err := runSync(t, store, chat, clock, inc.Number); err == nil {
			t.Fatal("sync succeeded during the outage")
		}
	}
	down = false
	if err := runSync(t, store, chat, clock, inc.Number); err != nil {
		t.Fatal(err)
	}
	var told []string
	for _, p := range chat.PostsIn("C1") {
		for _, ev := range p.Message.Events {
			told = append(told, ev.Text)
		}
	}
	if strings.Join(told, ",") != "note 0,note 1,note 2,note 3,note 4" {
		t.Fatalf("told %v", told)
	}
}

func TestIncidentNumbersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bot.db")
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		svc := incident.NewService(incident.ServiceConfig{Store: s})
		inc, err := svc.Declare(ctx, incident.Declaration{Title: "x", By: alice})
		if err != nil || inc.Number != want {
			t.Fatalf("after reopen: %v, number %d, want %d", err, inc.Number, want)
		}
		_ = s.Close()
	}
}

func TestChatSyncNeverAdoptsAStrangersChannelAfterACrash(t *testing.T) {
	// inc-1-db-down is someone else's. Our second name is created remotely
	// but the answer is lost; on the retry the first name must not be
	// adopted although we tried it, and the second (ours) must be.
	svc, store, clock := newService(t)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	chat.Channels["inc-1-db-down"] = "CSTRANGER"
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	creates := 0
	chat.Fail = func(op string) error {
		if op != "create" {
			return nil
		}
		creates++
		if creates == 2 { // inc-1-db-down-2: created, answer lost
			chat.Channels["inc-1-db-down-2"] = "COURS"
			return incident.Retryable(errors.New("connection reset"), 0)
		}
		return nil
	}
	if err := runSync(t, store, chat, clock, inc.Number); err == nil {
		t.Fatal("the lost answer went unnoticed")
	}
	if err := runSync(t, store, chat, clock, inc.Number); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
	if got.Chat.ChannelID != "COURS" || len(chat.Channels) != 2 {
		t.Fatalf("channel %+v, channels %v; want ours adopted, no third", got.Chat, chat.Channels)
	}
	if len(got.Chat.NamesTaken) != 1 || got.Chat.NamesTaken[0] != "inc-1-db-down" {
		t.Fatalf("the stranger's name was not remembered: %v", got.Chat.NamesTaken)
	}
}

func TestChatSyncRepostsADeletedSummaryAndSurvivesAWrongAnnounceChannel(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	if err := runSync(t, store, chat, clock, inc.Number); err != nil {
		t.Fatal(err)
	}
	first, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
	// Someone deletes the summary; the announce channel is archived.
	chat.Fail = func(op string) error {
		switch op {
		case "update":
			return incident.Errorf(incident.ENOTFOUND, "message_not_found")
		}
		return nil
	}
	_, _ = svc.AddNote(ctx, incident.Ref{Number: inc.Number}, "still here", alice)
	_, _ = svc.SetSeverity(ctx, incident.Ref{Number: inc.Number}, incident.SEV1, alice)
	if err := runSync(t, store, chat, clock, inc.Number); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
	if got.Chat.SummaryID == first.Chat.SummaryID || got.Chat.SummaryShows != incident.SummaryFingerprint(got) {
		t.Fatalf("deleted summary not reposted: %+v", got.Chat)
	}
	// An announcement refused for good is given up, told in the channel,
	// and does not block the incident's own messages.
	chat.Fail = nil
	failing := &refusingAnnounce{Chat: chat}
	_, _ = svc.AddNote(ctx, incident.Ref{Number: inc.Number}, "after the announce channel broke", alice)
	_, _ = svc.Mitigate(ctx, incident.Ref{Number: inc.Number}, alice, "") // changes what the announcement shows
	s := &incident.ChatSync{Store: store, Chat: failing, Clock: clock, AnnounceChannel: "CANNOUNCE"}
	if err := s.Sync(ctx, inc.Number); err != nil {
		t.Fatalf("a refused announcement failed the sync: %v", err)
	}
	if err := s.Sync(ctx, inc.Number); err != nil {
		t.Fatal(err)
	}
	got, events, _ := svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	var errorsTold int
	for _, ev := range events {
		if ev.Kind == incident.EventError {
			errorsTold++
		}
	}
	if !got.Chat.AnnounceFailed || errorsTold != 1 {
		t.Fatalf("announce failed %v, %d error events; want given up and told once", got.Chat.AnnounceFailed, errorsTold)
	}
	var told []string
	for _, p := range chat.PostsIn(got.Chat.ChannelID) {
		for _, ev := range p.Message.Events {
			told = append(told, string(ev.Kind))
		}
	}
	if strings.Join(told, ",") != "note,severity_changed,note,status_changed,error" {
		t.Fatalf("told in the channel: %v; want both notes and the refusal", told)
	}
}

// refusingAnnounce refuses every post and update in CANNOUNCE for good.
type refusingAnnounce struct{ *incidenttest.Chat }

func (r *refusingAnnounce) Post(ctx context.Context, ch string, m incident.Message) (string, error) {
	if ch == "CANNOUNCE" {
		return "", incident.Errorf(incident.EINVALID, "is_archived")
	}
	return r.Chat.Post(ctx, ch, m)
}

func (r *refusingAnnounce) Update(ctx context.Context, ch, id string, m incident.Message) error {
	if ch == "CANNOUNCE" {
		return incident.Errorf(incident.EINVALID, "is_archived")
	}
	return r.Chat.Update(ctx, ch, id, m)
}

// TestNotesDoNotRewriteTheSummaryOrTheAnnouncement: a busy incident's notes
// are told in its channel, but the summary card and the announcement in the
// shared announce channel are edited only when what they show changes.
func TestNotesDoNotRewriteTheSummaryOrTheAnnouncement(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := context.Background()
	chat := incidenttest.NewChat()
	inc, _ := svc.Declare(ctx, incident.Declaration{Title: "db down", By: alice})
	ref := incident.Ref{Number: inc.Number}
	_ = runSync(t, store, chat, clock, inc.Number)
	for i := range 10 {
		_, _ = svc.AddNote(ctx, ref, fmt.Sprintf("note %d", i), alice)
		if err := runSync(t, store, chat, clock, inc.Number); err != nil {
			t.Fatal(err)
		}
	}
	updates := func() int {
		n := 0
		for _, p := range chat.All() {
			if p.Update {
				n++
			}
		}
		return n
	}
	if n := updates(); n != 0 {
		t.Fatalf("%d edits for 10 notes, want none", n)
	}
	_, _ = svc.SetSeverity(ctx, ref, incident.SEV1, alice)
	_ = runSync(t, store, chat, clock, inc.Number)
	if n := updates(); n != 2 {
		t.Fatalf("%d edits after a severity change, want 2 (summary and announcement)", n)
	}
}
