package app_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
)

// TestEtcdModeEndToEnd runs the bot with BOT_STORE=etcd on an embedded etcd
// member: a slash command declares an incident, its channel is set up by
// the job queue, and a bot started afresh on the same cluster (another
// machine, no local file) finds everything.
func TestEtcdModeEndToEnd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	fake := w.fake
	env := map[string]string{"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ",")}
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)

	r := bot.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down")
	if !strings.Contains(r.Text(), "Declared *INC-1*") {
		t.Fatalf("declare reply: %s", r.Body)
	}
	if !fake.Wait(10*time.Second, func() bool {
		ch, ok := fake.ChannelByName("inc-1-checkout-is-down")
		return ok && len(summaries(fake, ch.ID)) == 1 && anyText(fake, w.announce, "<#"+ch.ID+">")
	}) {
		t.Fatal("incident channel, summary and announcement not all there")
	}
	ch, _ := fake.ChannelByName("inc-1-checkout-is-down")
	bot.command(t, "U0ALICE", ch.ID, "note rolled back deploy 42")
	waitFor(t, 10*time.Second, "the note in the channel", func() bool { return anyText(fake, ch.ID, "rolled back deploy 42") })
	bot.noDeadJobs(t)
	bot.stop(t)

	other := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)
	if got := other.incident(t, 1); got.Chat.ChannelID != ch.ID || got.Title != "Checkout is down" {
		t.Fatalf("incident seen by a fresh replica: %+v", got)
	}
	if n := countKind(other.timeline(t, 1), "note"); n != 1 {
		t.Errorf("%d notes on the timeline, want 1", n)
	}
	r = other.command(t, "U0BOB", w.general, "declare sev3 Search is slow")
	if !strings.Contains(r.Text(), "Declared *INC-2*") {
		t.Fatalf("second declare (numbers continue across replicas): %s", r.Body)
	}
}

// TestEtcdReplicasElectOneLeader runs two replicas on one etcd cluster:
// both serve commands, one leader runs the job queue (so each channel is
// created once, whichever replica took the command), and when the leader
// stops the other takes over the queue.
func TestEtcdReplicasElectOneLeader(t *testing.T) {
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	fake := w.fake
	env := map[string]string{"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ",")}
	a := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)
	b := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)
	var leader, follower *runningBot
	waitFor(t, 10*time.Second, "a leader", func() bool {
		switch {
		case a.App.Leading() && !b.App.Leading():
			leader, follower = a, b
		case b.App.Leading() && !a.App.Leading():
			leader, follower = b, a
		}
		return leader != nil
	})

	// Operators see which replica leads.
	for bot, want := range map[*runningBot]string{leader: "incidentbot_leader 1", follower: "incidentbot_leader 0"} {
		resp, err := http.Get(bot.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The follower takes the command; the leader's queue sets up the channel.
	if r := follower.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down"); !strings.Contains(r.Text(), "Declared *INC-1*") {
		t.Fatalf("declare on the follower: %s", r.Body)
	}
	waitFor(t, 10*time.Second, "INC-1's channel", func() bool {
		ch, ok := fake.ChannelByName("inc-1-checkout-is-down")
		return ok && len(summaries(fake, ch.ID)) == 1
	})

	// The leader stops (a rolling update): the follower leads at once.
	leader.stop(t)
	waitFor(t, 10*time.Second, "the follower to lead", follower.App.Leading)
	if r := follower.command(t, "U0BOB", w.general, "declare sev3 Search is slow"); !strings.Contains(r.Text(), "Declared *INC-2*") {
		t.Fatalf("declare after the handover: %s", r.Body)
	}
	waitFor(t, 10*time.Second, "INC-2's channel", func() bool {
		ch, ok := fake.ChannelByName("inc-2-search-is-slow")
		return ok && len(summaries(fake, ch.ID)) == 1
	})
	if n := len(fake.Calls("conversations.create")); n != 2 {
		t.Errorf("conversations.create called %d times for 2 incidents", n)
	}
	follower.noDeadJobs(t)
}
