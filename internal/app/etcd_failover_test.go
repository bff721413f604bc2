package app_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// TestEtcdFailover builds the bot and runs real processes for half a
// minute, so the default suite skips it (its short, in-process version is
// TestEtcdReplicasElectOneLeader, with the fencing tests in etcdstore). Run
// it, and measure failover, with:
//
//	go test ./internal/app -run TestEtcdFailover -etcd.kills=10 -v
var (
	etcdKills = flag.Int("etcd.kills", 0, "leader SIGKILLs in TestEtcdFailover (0: skip it)")
	etcdTTL   = flag.Duration("etcd.ttl", 2*time.Second, "BOT_ETCD_LEADER_TTL in TestEtcdFailover")
)

// replicaSet is `bot serve` replicas (real processes) on one etcd cluster,
// replica i talking to member i only, so stopping a member cuts its
// replica off from etcd.
type replicaSet struct {
	t       *testing.T
	bin     string
	w       *slackWorld
	cluster *etcdtest.Cluster
	procs   []*apptest.Process
	senders []*slacktest.Sender

	mu     sync.Mutex
	leader int       // the replica that logged "elected leader" last
	since  time.Time // when it did
}

func (rs *replicaSet) start(i int) {
	rs.t.Helper()
	env := rs.w.env(filepath.Join(rs.t.TempDir(), "bot.db"), map[string]string{
		"BOT_STORE":           "etcd",
		"BOT_ETCD_ENDPOINTS":  rs.cluster.Members[i].ClientURL,
		"BOT_ETCD_LEADER_TTL": etcdTTL.String(),
		"BOT_LOG_FORMAT":      "json",
	})
	p, err := apptest.StartProcess(rs.bin, apptest.ProcessEnv(env), func(line string) {
		var e struct{ Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "elected leader" {
			rs.mu.Lock()
			rs.leader, rs.since = i, time.Now()
			rs.mu.Unlock()
		}
	})
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.procs[i] = p
	rs.senders[i] = &slacktest.Sender{BaseURL: "http://" + p.Addr, Secret: signingSecret, Fake: rs.w.fake}
}

func (rs *replicaSet) currentLeader() (int, time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.leader, rs.since
}

// declare sends /incident declare to replica i and returns the incident's
// channel name prefix ("inc-N-") from the reply.
func (rs *replicaSet) declare(i int, title string) string {
	rs.t.Helper()
	r, err := rs.senders[i].Command(context.Background(), slacktest.Command{User: "U0ALICE", Channel: rs.w.general, Text: "declare sev2 " + title})
	if err != nil || r.Status != http.StatusOK {
		rs.t.Fatalf("declare on replica %d: %v %d %s", i, err, r.Status, r.Body)
	}
	var n int
	if _, err := fmt.Sscanf(r.Text()[strings.Index(r.Text(), "INC-"):], "INC-%d", &n); err != nil {
		rs.t.Fatalf("declare reply: %s", r.Body)
	}
	return fmt.Sprintf("inc-%d-", n)
}

// channelReady reports whether the incident's channel exists with its
// summary posted: the leader's queue ran its set-up job.
func (rs *replicaSet) channelReady(prefix string) bool {
	for _, ch := range rs.w.fake.Channels() {
		if strings.HasPrefix(ch.Name, prefix) && len(summaries(rs.w.fake, ch.ID)) == 1 {
			return true
		}
	}
	return false
}

// TestEtcdFailover runs three `bot serve` processes on a 3-member embedded
// etcd. It SIGKILLs the leader (-etcd.kills times) while commands keep
// arriving on the other replicas, and cuts a replica off from etcd by
// stopping its member. Every command answered 2xx is set up exactly once
// (one channel, one summary), and a new leader resumes the queue within the
// lease TTL (-etcd.ttl) plus a few seconds; the failover times are logged.
func TestEtcdFailover(t *testing.T) {
	if *etcdKills <= 0 {
		t.Skip("a long failure run: set -etcd.kills=N")
	}
	c := etcdtest.Start(t, 3)
	w := newSlackWorld(t)
	rs := &replicaSet{t: t, bin: apptest.BuildBot(t), w: w, cluster: c, procs: make([]*apptest.Process, 3), senders: make([]*slacktest.Sender, 3), leader: -1}
	for i := range 3 {
		rs.start(i)
	}
	t.Cleanup(func() {
		for _, p := range rs.procs {
			if p != nil && p.Cmd.ProcessState == nil {
				_ = p.Kill()
			}
		}
	})
	waitFor(t, 15*time.Second, "a leader", func() bool { l, _ := rs.currentLeader(); return l >= 0 })

	var declared []string
	var failovers []time.Duration
	for k := range *etcdKills {
		leader, elected := rs.currentLeader()
		other := (leader + 1) % 3
		first := rs.declare(other, fmt.Sprintf("before kill %d", k))
		declared = append(declared, first)
		waitFor(t, 15*time.Second, "the leader to set up "+first, func() bool { return rs.channelReady(first) })

		killed := time.Now()
		if err := rs.procs[leader].Kill(); err != nil {
			t.Fatal(err)
		}
		// Commands keep landing on the survivors while nobody leads.
		during := rs.declare(other, fmt.Sprintf("during failover %d", k))
		declared = append(declared, during)
		waitFor(t, *etcdTTL+20*time.Second, "a new leader to set up "+during, func() bool { return rs.channelReady(during) })
		failovers = append(failovers, time.Since(killed))
		if l, at := rs.currentLeader(); l == leader || !at.After(elected) {
			t.Fatalf("no new leader after killing replica %d", leader)
		}
		rs.start(leader) // the Deployment replaces the pod
	}

	// Cut a follower off from etcd: stop its member. The others keep a
	// quorum, keep serving and keep running jobs.
	leader, _ := rs.currentLeader()
	cut := (leader + 1) % 3
	up := (leader + 2) % 3
	c.Members[cut].Stop()
	p := rs.declare(up, "with one etcd member down")
	declared = append(declared, p)
	waitFor(t, 20*time.Second, "work with one etcd member down", func() bool { return rs.channelReady(p) })
	ready := func(i int) bool {
		resp, err := http.Get("http://" + rs.procs[i].Addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitFor(t, 20*time.Second, "the cut-off replica to report not ready", func() bool { return !ready(cut) })
	if !ready(up) {
		t.Error("a replica with a quorum reports not ready")
	}
	c.Restart(c.Members[cut])
	waitFor(t, 20*time.Second, "the replica to be ready again", func() bool { return ready(cut) })

	// Exactly once: one channel per declared incident, one summary in it,
	// one announcement.
	for _, prefix := range declared {
		var chans []slacktest.Channel
		for _, ch := range w.fake.Channels() {
			if strings.HasPrefix(ch.Name, prefix) {
				chans = append(chans, ch)
			}
		}
		if len(chans) != 1 {
			t.Errorf("%d channels for %s", len(chans), prefix)
			continue
		}
		if n := len(summaries(w.fake, chans[0].ID)); n != 1 {
			t.Errorf("%d summaries in %s", n, chans[0].Name)
		}
		if n := len(slices.DeleteFunc(botMessages(w.fake, w.announce), func(m slacktest.Message) bool { return !strings.Contains(blocksText(m)+m.Text, "<#"+chans[0].ID+">") })); n != 1 {
			t.Errorf("%d announcements of %s", n, chans[0].Name)
		}
	}
	slices.Sort(failovers)
	t.Logf("failover from leader SIGKILL to the new leader's first completed job, %d kills, lease TTL %s: median %s, max %s", len(failovers), *etcdTTL, failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
	if max := failovers[len(failovers)-1]; max > *etcdTTL+8*time.Second {
		t.Errorf("a failover took %s, more than the lease TTL plus a few seconds", max)
	}
}
