package app_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// TestLateJoinerIsOfferedTheCatchupOnce: someone joining an incident's
// channel more than 10 minutes after it was declared gets the catch-up as
// one ephemeral message, once: not again when Slack retries the event,
// not when they join again, not after a restart. Nobody joining in the
// first 10 minutes gets it, nor the people the bot invited with the
// channel, nor the bot. Time is a manual clock shared by the bot and the
// fake Slack (its event_ts); nothing sleeps for it.
func TestLateJoinerIsOfferedTheCatchupOnce(t *testing.T) {
	clock := incidenttest.NewClock(time.Now().UTC().Truncate(time.Second))
	fake := slacktest.NewServer(slacktest.Config{Now: clock.Now})
	t.Cleanup(fake.Close)
	for _, u := range []slacktest.User{{ID: "U0ALICE", Name: "alice"}, {ID: "U0BOB", Name: "bob"}, {ID: "U0CAROL", Name: "carol"}} {
		fake.AddUser(u)
	}
	w := &slackWorld{fake: fake,
		general:  fake.AddChannel("general", false, "U0ALICE", "U0BOB", "U0CAROL", fake.BotUserID()),
		announce: fake.AddChannel("incidents", false, "U0ALICE", fake.BotUserID())}
	db := filepath.Join(t.TempDir(), "bot.db")
	start := func() *runningBot {
		env := w.env(db, nil)
		cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
		if err != nil {
			t.Fatal(err)
		}
		ab := apptest.Start(t, cfg, zaptest.NewLogger(t), app.Options{Clock: clock, MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond}, 10*time.Second)
		return &runningBot{Bot: ab, send: &slacktest.Sender{BaseURL: "http://" + ab.Addr, Secret: signingSecret, Fake: fake, Now: clock.Now}}
	}
	// settled: no job due by the manual clock (timers due later wait).
	settled := func(b *runningBot) func() bool {
		return func() bool {
			next, ok, err := b.App.Service().Store().(jobStore).NextDue()
			return err == nil && (!ok || next.After(clock.Now()))
		}
	}
	join := func(b *runningBot, eventID, user, channel string, retries int) {
		t.Helper()
		ev := fake.MemberJoined(eventID, user, channel)
		for retry := range retries + 1 { // the delivery and Slack's retries (X-Slack-Retry-Num)
			if r, err := b.send.Event(context.Background(), ev, retry); err != nil || r.Status != http.StatusOK {
				t.Fatalf("member_joined_channel %s (retry %d): %v %+v", eventID, retry, err, r)
			}
		}
	}
	offers := func(user string) []slacktest.Ephemeral {
		var out []slacktest.Ephemeral
		for _, e := range fake.Ephemerals() {
			if e.User == user && strings.Contains(e.Text, "Catch-up on INC-1") {
				out = append(out, e)
			}
		}
		return out
	}

	bot := start()
	bot.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down")
	var ch slacktest.Channel
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-checkout-is-down")
		ch = c
		return ok && len(summaries(fake, c.ID)) == 1
	}) {
		t.Fatal("no incident channel")
	}
	waitFor(t, 10*time.Second, "the declaration's chat work", settled(bot))

	// 5 minutes in: bob joins, and is not late.
	clock.Advance(5 * time.Minute)
	join(bot, "Ev0BOB1", "U0BOB", ch.ID, 0)
	// 10 minutes in, to the second: not late either.
	clock.Advance(5 * time.Minute)
	join(bot, "Ev0ALICEEARLY", "U0ALICE", ch.ID, 0)
	waitFor(t, 10*time.Second, "the early joins", func() bool {
		return countKind(bot.timeline(t, 1), incident.EventMemberJoined) == 2 && settled(bot)()
	})
	if n := len(fake.Ephemerals()); n != 0 {
		t.Fatalf("%d ephemeral messages for joins in the first 10 minutes", n)
	}

	// 16 minutes in: carol joins (Slack delivers the event three times);
	// alice, whom the bot invited with the channel, joins again; the bot
	// itself joins.
	clock.Advance(6 * time.Minute)
	bot.command(t, "U0ALICE", ch.ID, "update Rolling back the 10:05 deploy <!channel>")
	join(bot, "Ev0CAROL1", "U0CAROL", ch.ID, 2)
	join(bot, "Ev0ALICE2", "U0ALICE", ch.ID, 0)
	join(bot, "Ev0SELF", fake.BotUserID(), ch.ID, 0)
	waitFor(t, 10*time.Second, "the catch-up offer", func() bool { return len(offers("U0CAROL")) > 0 && settled(bot)() })
	got := offers("U0CAROL")
	if len(got) != 1 {
		t.Fatalf("carol was offered the catch-up %d times", len(got))
	}
	blocks := string(got[0].Blocks)
	for _, want := range []string{"you joined *INC-1* 16m after it was declared", "Catch-up: INC-1", "SEV2", "Rolling back the 10:05 deploy @\u200bchannel", "*Commander*"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("the offer lacks %q: %s", want, blocks)
		}
	}
	if strings.Contains(blocks, "<!channel>") {
		t.Errorf("a broadcast survives in the offer: %s", blocks)
	}
	if n := len(fake.Ephemerals()); n != 1 {
		t.Fatalf("%d ephemeral messages, want only carol's: %+v", n, fake.Ephemerals())
	}

	// A restart; then Slack redelivers carol's event, and she leaves and
	// joins again: still one offer. Bob rejoining late gets his, once.
	bot.stop(t)
	clock.Advance(4 * time.Minute)
	bot = start()
	join(bot, "Ev0CAROL1", "U0CAROL", ch.ID, 1)
	join(bot, "Ev0CAROL2", "U0CAROL", ch.ID, 0)
	join(bot, "Ev0BOB2", "U0BOB", ch.ID, 0)
	join(bot, "Ev0BOB3", "U0BOB", ch.ID, 0)
	waitFor(t, 10*time.Second, "the joins after the restart", func() bool {
		return countKind(bot.timeline(t, 1), incident.EventMemberJoined) == 7 && len(offers("U0BOB")) > 0 && settled(bot)()
	})
	if n, m := len(offers("U0CAROL")), len(offers("U0BOB")); n != 1 || m != 1 {
		t.Fatalf("after a restart: carol offered %d times, bob %d times; want once each", n, m)
	}
	if len(offers("U0ALICE")) != 0 {
		t.Fatal("the declarer, invited with the channel, was offered the catch-up")
	}
	bot.noDeadJobs(t)
}
