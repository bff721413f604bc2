package app_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// TestEtcdSocketModeReplicas runs three `bot serve` processes in Socket
// Mode on one etcd: each opens its own connection, and Slack (the fake)
// delivers each envelope to one of them. Every command and interaction is
// handled exactly once whichever replica gets it, also when the replica
// that handled it dies before its acknowledgement reaches Slack (Slack
// delivers it again on another connection: the command is recognised as
// already received) and when the replica that got it hangs and dies
// without handling it (another one handles it).
func TestEtcdSocketModeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three bot processes")
	}
	t.Parallel() // mostly waiting on acknowledgement timeouts: overlaps the other process tests
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	fake := w.fake
	bin := botBinary(t)
	procs := make([]*apptest.Process, 3)
	byConn := map[int]int{} // connection id -> replica
	start := func(i int) {
		t.Helper()
		before := fake.SocketConnectionIDs()
		env := w.env(filepath.Join(t.TempDir(), "bot.db"), map[string]string{
			"SLACK_APP_TOKEN": fake.AppToken(), "SLACK_SIGNING_SECRET": "",
			"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ","), "BOT_ETCD_LEADER_TTL": "2s",
			"BOT_RUNBOOKS_DIR": t.TempDir(), "BOT_LOG_FORMAT": "json",
		})
		p, err := apptest.StartProcess(bin, apptest.ProcessEnv(env), nil)
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
		waitFor(t, 15*time.Second, fmt.Sprintf("replica %d's Socket Mode connection", i), func() bool {
			for _, id := range fake.SocketConnectionIDs() {
				if !slices.Contains(before, id) {
					byConn[id] = i
					return true
				}
			}
			return false
		})
	}
	for i := range 3 {
		start(i)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil && p.Cmd.ProcessState == nil {
				_ = p.Kill()
			}
		}
	})
	connOf := func(i int) int {
		for _, id := range fake.SocketConnectionIDs() {
			if byConn[id] == i {
				return id
			}
		}
		t.Fatalf("replica %d has no connection", i)
		return 0
	}
	sender := &slacktest.Sender{Fake: fake}
	// command sends a slash command envelope and returns the ack and the
	// command's answer: the ack's text, or, when the replica answered
	// "working on it" (a slow store), what it posted to the response_url.
	command := func(text string, conn int, loseAck bool, want string) (slacktest.Ack, string) {
		t.Helper()
		resp := fake.NewResponseURL()
		form := commandPayload(sender, "U0ALICE", w.general, text)
		form["response_url"] = resp
		a, err := fake.SendEnvelope(slacktest.Envelope{Type: "slash_commands", AcceptsResponsePayload: true,
			Payload: form, Conn: conn, LoseAck: loseAck}, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		answer := ackText(t, a)
		fake.Wait(15*time.Second, func() bool {
			answer = ackText(t, a)
			for _, p := range fake.Responses(resp) {
				answer += "\n" + p.Text
			}
			return strings.Contains(answer, want)
		})
		return a, answer
	}

	// Commands spread over the replicas; each is run once.
	var titles []string
	handled := map[int]int{} // replica -> acknowledgements
	for k := range 6 {
		title := fmt.Sprintf("Socket storm %d", k)
		titles = append(titles, title)
		a, answer := command("declare sev2 "+title, 0, false, "Declared *INC-")
		if !strings.Contains(answer, "Declared *INC-") {
			t.Fatalf("declare %q: %q", title, answer)
		}
		if r, ok := byConn[a.Conn]; ok {
			handled[r]++
		}
	}
	for i := range 3 {
		if handled[i] == 0 {
			t.Errorf("replica %d got none of the envelopes (%v): Slack spreads them over the connections", i, handled)
		}
	}

	// A replica handles a command and dies before its acknowledgement
	// reaches Slack, which delivers it again to another replica.
	victim := 1
	a, answer := command("declare sev2 Acknowledgement lost", connOf(victim), true, slack.DuplicateCommandText)
	if err := procs[victim].Kill(); err != nil {
		t.Fatal(err)
	}
	if r, ok := byConn[a.Conn]; !ok || r == victim || a.Attempt < 1 {
		t.Fatalf("the lost acknowledgement's envelope came back on connection %d, attempt %d", a.Conn, a.Attempt)
	}
	if !strings.Contains(answer, slack.DuplicateCommandText) {
		t.Errorf("the redelivered command answered %q, want it recognised as already received", answer)
	}
	titles = append(titles, "Acknowledgement lost")
	start(victim)

	// A replica gets a command, hangs (SIGSTOP) and dies without handling
	// it: Slack delivers it again after 3 seconds without an answer.
	victim = 2
	if err := procs[victim].Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	a, answer = command("declare sev2 Replica hung", connOf(victim), false, "Declared *INC-")
	if err := procs[victim].Kill(); err != nil {
		t.Fatal(err)
	}
	if r, ok := byConn[a.Conn]; !ok || r == victim || !strings.Contains(answer, "Declared *INC-") {
		t.Fatalf("the hung replica's command: answered on connection %d: %q", a.Conn, answer)
	}
	titles = append(titles, "Replica hung")
	start(victim)

	// Each declared incident: one channel with one summary.
	chanOf := map[string]slacktest.Channel{}
	waitFor(t, 60*time.Second, "every incident's channel and summary", func() bool {
		for _, title := range titles {
			slug := strings.ReplaceAll(strings.ToLower(title), " ", "-")
			found := false
			for _, ch := range fake.Channels() {
				if strings.HasSuffix(ch.Name, "-"+slug) && len(summaries(fake, ch.ID)) > 0 {
					chanOf[title], found = ch, true
				}
			}
			if !found {
				return false
			}
		}
		return true
	})

	// A button click whose acknowledgement is lost is applied once.
	ch := chanOf["Socket storm 0"]
	resp := fake.NewResponseURL()
	if _, err := fake.SendEnvelope(slacktest.Envelope{Type: "interactive", Conn: connOf(0), LoseAck: true,
		Payload: fake.BlockAction("U0BOB", ch.ID, summaries(fake, ch.ID)[0].TS, "incident_mitigate", "INC-"+strings.Split(ch.Name, "-")[1], resp)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = procs[0].Kill()
	procs[0] = nil
	var r haRecord
	waitFor(t, 30*time.Second, "the click to be applied", func() bool {
		r = readEtcd(t, c)
		for _, inc := range r.incidents {
			if inc.Chat.ChannelID == ch.ID {
				return inc.Status == incident.StatusMitigated
			}
		}
		return false
	})
	incs, timelines := r.incidents, r.timelines
	byTitle := map[string]int{}
	for _, inc := range incs {
		byTitle[inc.Title]++
		if inc.Chat.ChannelID == ch.ID {
			n := 0
			for _, ev := range timelines[inc.Number] {
				if ev.Kind == incident.EventStatusChanged && ev.Data["to"] == string(incident.StatusMitigated) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("the click redelivered to another replica mitigated %s %d times", inc.ID(), n)
			}
		}
	}
	for _, title := range titles {
		if byTitle[title] != 1 {
			t.Errorf("%q declared %d incidents", title, byTitle[title])
		}
		if n := len(summaries(fake, chanOf[title].ID)); n != 1 {
			t.Errorf("%q's channel has %d summaries", title, n)
		}
	}
	if n := len(fake.Calls("conversations.create")); n != len(titles) {
		t.Errorf("conversations.create called %d times for %d incidents", n, len(titles))
	}
}
