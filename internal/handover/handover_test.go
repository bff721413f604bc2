package handover_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/handover"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	berlin = mustZone("Europe/Berlin")
	alice  = incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}
	bob    = incident.Actor{ID: "U0BOB", Source: incident.SourceSlack}
	carol  = incident.Actor{ID: "U0CAROL", Source: incident.SourceSlack}
	dave   = incident.Actor{ID: "U0DAVE", Source: incident.SourceSlack}
	pager  = incident.Actor{ID: "PD1", Name: "PagerDuty", Source: incident.SourcePagerDuty}
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// daily is the schedule of the tests: a shift ends every day at 09:00 in
// Berlin.
const daily = "CRON_TZ=Europe/Berlin 0 9 * * *"

func schedule(t *testing.T) *digest.Schedule {
	t.Helper()
	s, err := digest.ParseSchedule(daily, berlin)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	store, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// world is a store with a week of incident history, as seen during the
// shift from Tue 1 Dec 09:00 to Wed 2 Dec 09:00 (Berlin).
type world struct {
	t     *testing.T
	path  string
	clock *incidenttest.Clock
	store *boltstore.Store
	svc   *incident.Service
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, path: filepath.Join(t.TempDir(), "bot.db"), clock: incidenttest.NewClock(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))}
	w.store = openStore(t, w.path)
	t.Cleanup(func() { _ = w.store.Close() })
	w.svc = incident.NewService(incident.ServiceConfig{Store: w.store, Clock: w.clock})
	return w
}

func (w *world) at(t time.Time) *world { w.clock.Set(t); return w }

func (w *world) declare(d incident.Declaration) *incident.Incident {
	w.t.Helper()
	inc, err := w.svc.Declare(context.Background(), d)
	if err != nil {
		w.t.Fatal(err)
	}
	return inc
}

func (w *world) must(_ *incident.Incident, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) record(n int64, ev incident.Event) {
	w.t.Helper()
	if _, err := w.svc.Record(context.Background(), incident.Ref{Number: n}, ev); err != nil {
		w.t.Fatal(err)
	}
}

// runbook records one runbook decision as the runbook flow does.
func (w *world) runbook(n int64, by incident.Actor, runID, book, decision, outcome string) {
	kind := incident.EventRunbookRequested
	data := map[string]string{"run_id": runID, "runbook": book, "decision": decision, "dry_run": "false"}
	text := fmt.Sprintf("Runbook `%s` (run %s): %s", book, runID, decision)
	if outcome != "" {
		kind, data["outcome"], data["exit_code"] = incident.EventRunbookRan, outcome, "3"
		text = fmt.Sprintf("Runbook `%s` (run %s) %s with exit code 3", book, runID, outcome)
	}
	w.record(n, incident.Event{Kind: kind, Actor: by, Text: text, Data: data, Quiet: true})
}

// history fills the store:
//
//	INC-1 SEV2, declared Sat, still open; an overdue follow-up
//	INC-2 SEV4, declared and resolved Sun (before the shift); an undated follow-up
//	INC-3 SEV3, declared before the shift, resolved in it
//	INC-4 SEV1, declared in the shift with a broadcast in its title; paged,
//	      escalated, a failed runbook run and one awaiting approval; resolved
//	      in the shift; a follow-up due Friday
//	INC-5 SEV3, triggered by PagerDuty in the shift, nobody acknowledged it
func (w *world) history() {
	ctx := context.Background()
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, time.UTC) }
	nov := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }

	inc1 := w.at(nov(28, 10)).declare(incident.Declaration{Title: "Payments API latency", Severity: incident.SEV2, By: alice})
	w.must(w.svc.AddFollowup(ctx, incident.Ref{Number: inc1.Number}, "Add a latency alert", alice))
	w.must(w.svc.ChangeFollowup(ctx, incident.Ref{Number: inc1.Number}, incident.FollowupChange{ID: 1, Op: incident.FollowupAssign, Owner: bob.ID}, alice))
	w.must(w.svc.ChangeFollowup(ctx, incident.Ref{Number: inc1.Number}, incident.FollowupChange{ID: 1, Op: incident.FollowupDue, Due: "2026-11-30"}, alice))

	inc2 := w.at(nov(29, 12)).declare(incident.Declaration{Title: "Old disk alert", Severity: incident.SEV4, By: bob})
	w.must(w.svc.AddFollowup(ctx, incident.Ref{Number: inc2.Number}, "Rotate the disks", bob))
	w.must(w.at(nov(29, 13)).svc.Resolve(ctx, incident.Ref{Number: inc2.Number}, bob, "replaced"))

	inc3 := w.at(day(1, 6, 0)).declare(incident.Declaration{Title: "Search is slow", Severity: incident.SEV3, By: dave})

	inc4 := w.at(day(1, 10, 0)).declare(incident.Declaration{Title: "Checkout <!channel> errors <!here>", Severity: incident.SEV1, By: carol})
	w.at(day(1, 10, 5)).record(inc4.Number, incident.Event{Kind: incident.EventPageSent, Actor: carol, Text: "<@U0CAROL> paged payments-oncall",
		Data: map[string]string{"target": "payments-oncall", "pager_incident": "Q1"}})
	w.at(day(1, 10, 20)).record(inc4.Number, incident.Event{Kind: incident.EventEscalated, Actor: incident.Actor{ID: "bot", Source: incident.SourceBot},
		Text: "Escalated to level 2: nobody acknowledged within 15m", Data: map[string]string{"level": "2", "reason": "ack_timeout"}})
	w.at(day(1, 10, 30)).runbook(inc4.Number, carol, "r1", "restart-api", "confirm_requested", "")
	w.at(day(1, 10, 31)).runbook(inc4.Number, carol, "r1", "restart-api", "confirmed", "")
	w.at(day(1, 10, 32)).runbook(inc4.Number, carol, "r1", "restart-api", "approval_requested", "")
	w.at(day(1, 10, 33)).runbook(inc4.Number, dave, "r1", "restart-api", "approved", "")
	w.at(day(1, 10, 35)).runbook(inc4.Number, carol, "r1", "restart-api", "finished", "failed")
	w.at(day(1, 11, 0)).runbook(inc4.Number, carol, "r2", "flush-cache", "approval_requested", "")
	w.must(w.svc.AddFollowup(ctx, incident.Ref{Number: inc4.Number}, "Add a canary stage\nfor checkout", carol))
	w.must(w.svc.ChangeFollowup(ctx, incident.Ref{Number: inc4.Number}, incident.FollowupChange{ID: 1, Op: incident.FollowupDue, Due: "2026-12-04"}, carol))
	w.must(w.at(day(1, 12, 0)).svc.Resolve(ctx, incident.Ref{Number: inc4.Number}, carol, "rolled back"))

	w.must(w.at(day(1, 13, 0)).svc.Resolve(ctx, incident.Ref{Number: inc3.Number}, dave, "index rebuilt"))

	w.at(day(1, 15, 0)).declare(incident.Declaration{Title: "Disk full on db-3", Severity: incident.SEV3, By: pager, Triggered: true})

	// Runbook requests as the store keeps them: one waits for its
	// requester outside any incident; one expired unnoticed; one the
	// timeline shows awaiting approval ended (the store knows better).
	w.at(day(1, 16, 0)).runbook(inc1.Number, bob, "r5", "drain-node", "approval_requested", "")
	err := w.store.Update(ctx, func(tx incident.Tx) error {
		for _, r := range []incident.RunbookRequest{
			{ID: "r3", Runbook: "scale-up", State: incident.RunbookAwaitingConfirmation, Requester: bob.ID, ChannelID: "C0OPS", Created: day(2, 7, 40), Deadline: day(2, 8, 10)},
			{ID: "r4", Runbook: "scale-up", State: incident.RunbookAwaitingApproval, Requester: bob.ID, ChannelID: "C0OPS", Created: day(2, 6, 0), Deadline: day(2, 7, 0)},
			{ID: "r5", Runbook: "drain-node", State: "denied", Requester: bob.ID, ChannelID: "C0OPS", Incident: "INC-1", Created: day(1, 16, 0), Deadline: day(1, 17, 0), Ended: day(1, 16, 5)},
		} {
			if err := tx.PutRunbookRequest(&r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.at(day(2, 7, 55)) // Wed 08:55 in Berlin: the shift ends at 09:00
}

func (w *world) handovers(chat incident.Chat) *handover.Handovers {
	return handover.New(handover.Config{Service: w.svc, Store: w.store, Shifts: handover.Shifts{Schedule: schedule(w.t)}, Location: berlin, Chat: chat, Logger: zaptest.NewLogger(w.t)})
}

// TestHandoverText: the handover of a busy shift lists what was opened,
// what is still open and what was resolved with their commanders, the
// pages and escalations, the failed runbook run, the follow-ups due soon
// and what waits on someone; history from before the shift stays out.
func TestHandoverText(t *testing.T) {
	w := newWorld(t)
	w.history()
	text, err := w.handovers(nil).Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	incidenttest.Golden(t, "handover.golden", []byte(text+"\n"), *update)
	if strings.Contains(text, "Old disk alert") {
		t.Errorf("an incident resolved before the shift is in the handover:\n%s", text)
	}
	for _, run := range []string{"r1", "r4", "r5"} {
		if strings.Contains(text, "(run "+run+") awaits") {
			t.Errorf("run %s, which does not wait any more, is listed as waiting:\n%s", run, text)
		}
	}
}

// TestQuietHandover: a shift where nothing happened says so in a line.
func TestQuietHandover(t *testing.T) {
	w := newWorld(t)
	w.at(time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC))
	text, err := w.handovers(nil).Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "*On-call handover* for the shift Tue 01 Dec 09:00 to Wed 02 Dec 08:00 (Europe/Berlin)\nA quiet shift"
	if !strings.HasPrefix(text, want) {
		t.Errorf("got\n%s\nwant it to start\n%s", text, want)
	}
}

// fakeSlack is the in-repo fake Slack with the bot's real client pointed at
// it, both on the test's clock.
func fakeSlack(t *testing.T, clock *incidenttest.Clock) (*slacktest.Server, *slack.Client) {
	t.Helper()
	fake := slacktest.NewServer(slacktest.Config{Now: clock.Now})
	t.Cleanup(fake.Close)
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Clock: clock,
		Sleep: func(_ context.Context, d time.Duration) error { clock.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return fake, client
}

// TestHandoverInSlack: `/incident handover` posts the handover in the
// channel it was typed in, rendered for Slack (golden: the message as
// chat.postMessage received it), with the broadcast in a title made inert.
func TestHandoverInSlack(t *testing.T) {
	w := newWorld(t)
	w.history()
	fake, client := fakeSlack(t, w.clock)
	ch := fake.AddChannel("oncall", false, fake.BotUserID())
	disp := command.NewDispatcher(command.Config{Service: w.svc, Location: berlin, Handovers: w.handovers(client)})
	r := disp.Handle(context.Background(), command.Request{Text: "handover", Actor: alice, ChannelID: ch})
	if r.Error || r.Text != "Handover posted." {
		t.Fatalf("reply: %+v", r)
	}
	msgs := fake.Messages(ch)
	if len(msgs) != 1 {
		t.Fatalf("%d messages in the channel, want 1", len(msgs))
	}
	var blocks any
	if err := json.Unmarshal(msgs[0].Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(map[string]any{"text": msgs[0].Text, "blocks": blocks}, "", "  ")
	incidenttest.Golden(t, "handover_slack.golden", append(out, '\n'), *update)
	for _, bad := range []string{"<!channel>", "<!here>"} {
		if strings.Contains(msgs[0].Text, bad) || strings.Contains(string(msgs[0].Blocks), bad) {
			t.Errorf("the post can notify the channel: it holds %q", bad)
		}
	}
}

// TestHandoverWhereTheBotCannotPost: the person who asked still gets the
// handover, in the reply, with the reason it was not posted.
func TestHandoverWhereTheBotCannotPost(t *testing.T) {
	w := newWorld(t)
	w.history()
	_, client := fakeSlack(t, w.clock)
	ch := "C0GONE" // archived or deleted: Slack answers channel_not_found
	disp := command.NewDispatcher(command.Config{Service: w.svc, Location: berlin, Handovers: w.handovers(client)})
	r := disp.Handle(context.Background(), command.Request{Text: "handover", Actor: alice, ChannelID: ch})
	if r.Error || !strings.HasPrefix(r.Text, "I could not post the handover in this channel") || !strings.Contains(r.Text, "*On-call handover*") {
		t.Fatalf("reply: %+v", r)
	}
}

// TestLongHandoverIsTrimmed: a shift with a hundred open incidents lists
// the first ones of each section, says how many more there are and where
// to see them, and stays within the message limit.
func TestLongHandoverIsTrimmed(t *testing.T) {
	w := newWorld(t)
	w.at(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	long := strings.Repeat("very long title ", 12)
	for i := range 100 {
		inc := w.declare(incident.Declaration{Title: fmt.Sprintf("%d %s", i, long), Severity: incident.SEV2, By: alice})
		w.record(inc.Number, incident.Event{Kind: incident.EventPageSent, Actor: alice, Text: "paged " + strings.Repeat(long, 5)})
	}
	w.at(time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC))
	text, err := w.handovers(nil).Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(text); n > command.MaxHandoverText {
		t.Errorf("the handover has %d characters, more than %d", n, command.MaxHandoverText)
	}
	for _, want := range []string{"*Still open (100)*", "…and 85 more: `list` shows them all.", "*Pages and escalations (100)*", "\n…the handover is longer than a message; `bot handover` prints all of it."} {
		if !strings.Contains(text, want) {
			t.Errorf("the handover lacks %q:\n%s", want, text)
		}
	}
}

// TestShifts: the current shift begins at the schedule's last activation
// (in its zone, across the DST change); without a schedule it is the last
// 24 hours.
func TestShifts(t *testing.T) {
	s := handover.Shifts{Schedule: schedule(t)}
	for _, tc := range []struct {
		now, from time.Time
	}{
		{time.Date(2026, 12, 2, 7, 59, 0, 0, time.UTC), time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)},
		// Sun 29 Mar 2026: Berlin moves to CEST; 09:00 is 07:00 UTC.
		{time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 29, 6, 30, 0, 0, time.UTC), time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)},
	} {
		if got := s.Current(tc.now); !got.From.Equal(tc.from) || !got.To.Equal(tc.now) {
			t.Errorf("Current(%s) = %s to %s, want from %s", tc.now, got.From, got.To, tc.from)
		}
	}
	end := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if got := s.Ending(end); !got.From.Equal(end.AddDate(0, 0, -1)) || !got.To.Equal(end) {
		t.Errorf("Ending(%s) = %+v", end, got)
	}
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if got := (handover.Shifts{}).Current(now); !got.From.Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("without a schedule: %+v", got)
	}
}
