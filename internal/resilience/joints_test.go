package resilience_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// jointRuns is how many seeds TestChatJoints tries: a short set by
// default, many in a long run (`go test ./internal/resilience -run
// TestChatJoints -resilience.joints=500`). -resilience.seed runs one seed.
var jointRuns = flag.Int("resilience.joints", 3, "seeds TestChatJoints tries")

// jointSteps is how many incident changes, faults and restarts one run
// makes.
const jointSteps = 40

// TestChatJoints is a property-style test of the chat sync and the job
// queue together (issue 10, "Test the joints"): random sequences of
// incident changes (declare, notes, status updates, role changes, status
// moves, severity changes, pins) against the fake Slack injecting, per
// method and per channel, 429 with Retry-After, 5xx, slow answers, lost
// answers (Slack acted, the answer never came: what a kill looks like from
// outside), permanent refusals (is_archived, channel_not_found,
// not_in_channel, msg_too_long) and restarts of the bot. After each run:
//
//   - every timeline event that is told is told exactly once in its
//     channel, in order (an entry Slack refused for good in the incident's
//     own channel is skipped and its refusal told instead: the documented
//     exception);
//   - every incident has one summary card and at most one announcement,
//     exactly one unless the announce channel refused it for good;
//   - a status update's copy in the announcement's thread appears at most
//     once (exactly once while the announce channel takes them);
//   - an announce channel that refused for good is reported once on the
//     incident's timeline, and then skipped;
//   - no job is stuck or dead-lettered, and no post is left under way.
//
// Each run is seeded; a failure names its seed (-resilience.seed=N
// reproduces it).
func TestChatJoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bot against faults")
	}
	seeds := make([]uint64, 0, *jointRuns)
	if *seedFlag != 0 {
		seeds = append(seeds, *seedFlag)
	} else {
		base := uint64(time.Now().UnixNano())
		for i := range *jointRuns {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			j := newJointRun(t, seed)
			defer func() {
				if t.Failed() {
					t.Logf("seed %d failed (rerun with -run TestChatJoints -resilience.seed=%d); steps: %s", seed, seed, strings.Join(j.steps, "; "))
				}
			}()
			j.run()
		})
	}
}

// jointRun is one seeded run.
type jointRun struct {
	t     *testing.T
	rng   *rand.Rand
	w     *world
	cfg   config.Config
	bot   *liveBot
	send  *slacktest.Sender
	incs  []int64
	pins  int
	steps []string
	// refusedTwice: a message was refused for good twice in one incident
	// channel, so a refusal's report may have been refused too.
	refusedTwice bool
	tooLong      map[int64]int
}

func newJointRun(t *testing.T, seed uint64) *jointRun {
	w := newWorld(t, slacktest.Config{})
	db := filepath.Join(t.TempDir(), "bot.db")
	j := &jointRun{t: t, rng: rand.New(rand.NewPCG(seed, 10)), w: w, cfg: loadConfig(t, w.env(db, nil))}
	j.start()
	return j
}

func (j *jointRun) start() {
	j.bot = startBot(j.t, j.cfg, app.Options{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		SlackRates: scaledSlackRates(60),
	}, zaptest.NewLogger(j.t, zaptest.Level(zap.ErrorLevel)))
	j.send = &slacktest.Sender{BaseURL: j.bot.url(), Secret: slackSecret, Fake: j.w.slack, Client: httpClient(j.t)}
}

func (j *jointRun) svc() *incident.Service { return j.bot.App.Service() }

func (j *jointRun) log(format string, args ...any) {
	j.steps = append(j.steps, fmt.Sprintf(format, args...))
}

var jointPeople = []string{"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"}

func (j *jointRun) person() incident.Actor {
	return incident.Actor{ID: jointPeople[j.rng.IntN(len(jointPeople))], Source: incident.SourceSlack}
}

func (j *jointRun) run() {
	t := j.t
	ctx := context.Background()
	archived := false
	for step := range jointSteps {
		if len(j.incs) == 0 || (len(j.incs) < 4 && j.rng.IntN(6) == 0) {
			inc, err := j.svc().Declare(ctx, incident.Declaration{Title: fmt.Sprintf("joint %d", step), Severity: incident.SEV2, By: j.person()})
			if err != nil {
				t.Fatalf("declare: %v", err)
			}
			j.incs = append(j.incs, inc.Number)
			j.log("declare INC-%d", inc.Number)
			continue
		}
		n := j.incs[j.rng.IntN(len(j.incs))]
		ref := incident.Ref{Number: n}
		by := j.person()
		var err error
		switch k := j.rng.IntN(100); {
		case k < 20:
			_, err = j.svc().AddNote(ctx, ref, fmt.Sprintf("note %d on INC-%d", step, n), by)
			j.log("note INC-%d", n)
		case k < 35:
			_, err = j.svc().PostStatusUpdate(ctx, ref, fmt.Sprintf("update %d on INC-%d", step, n), by)
			j.log("update INC-%d", n)
		case k < 42:
			_, err = j.svc().AssignRole(ctx, ref, incident.Roles[j.rng.IntN(len(incident.Roles))], jointPeople[j.rng.IntN(len(jointPeople))], by)
			j.log("role INC-%d", n)
		case k < 50:
			_, err = j.svc().SetSeverity(ctx, ref, incident.Severities[j.rng.IntN(len(incident.Severities))], by)
			j.log("severity INC-%d", n)
		case k < 58:
			switch j.rng.IntN(4) {
			case 0:
				_, err = j.svc().Acknowledge(ctx, ref, by)
			case 1:
				_, err = j.svc().Mitigate(ctx, ref, by, fmt.Sprintf("mitigated %d", step))
			case 2:
				_, err = j.svc().Resolve(ctx, ref, by, fmt.Sprintf("resolved %d", step))
			default:
				_, err = j.svc().Reopen(ctx, ref, by, fmt.Sprintf("reopened %d", step))
			}
			j.log("status INC-%d", n)
		case k < 66:
			j.pin(n, step)
		case k < 72:
			j.log("restart")
			j.bot.stop(t)
			j.start()
		case k < 74 && !archived:
			archived = true
			j.w.slack.ArchiveChannel(j.w.announce)
			j.log("archive the announce channel")
		default:
			j.fault(n)
		}
		if incident.ErrorCode(err) == incident.EINTERNAL {
			t.Fatalf("step %d on INC-%d: %v", step, n, err)
		}
		// A refused change (not a legal move from where the incident is,
		// the severity it has already) changes nothing.
	}
	// Faults stop (an archived channel stays archived); everything must
	// settle.
	j.w.slack.ClearFaults()
	if !eventually(60*time.Second, func() bool { return settled(j.bot.store, time.Minute) }) {
		t.Errorf("the queue did not settle within a minute of the faults ending")
	}
	noDeadJobs(t, j.bot.store)
	j.check()
}

// pin posts a message in the incident's channel as a person and pins it.
func (j *jointRun) pin(n int64, step int) {
	inc, err := j.svc().Get(context.Background(), incident.Ref{Number: n})
	if err != nil || inc.Chat.ChannelID == "" {
		return
	}
	j.pins++
	ts := j.w.slack.UserPost(inc.Chat.ChannelID, "U0CAROL", fmt.Sprintf("pinned message %d", step))
	r, err := j.send.Event(context.Background(), j.w.slack.PinAdded(fmt.Sprintf("Ev%d", step), "U0BOB", inc.Chat.ChannelID, ts), 0)
	if err != nil || r.Status != 200 {
		j.t.Errorf("pin_added: %v %+v", err, r)
	}
	j.log("pin in INC-%d", n)
}

// fault injects one failure for the next calls of a method, in an
// incident's channel, the announce channel, or anywhere.
func (j *jointRun) fault(n int64) {
	inc, err := j.svc().Get(context.Background(), incident.Ref{Number: n})
	if err != nil {
		j.t.Fatal(err)
	}
	transient := []struct {
		name string
		f    slacktest.Fault
	}{
		{"429", slacktest.RateLimited(1)},
		{"500", slacktest.ServerError()},
		{"slow", slacktest.Slow(300 * time.Millisecond)},
		{"answer lost", slacktest.LostAnswer()},
		{"answer lost", slacktest.LostAnswer()},
	}
	methods := []string{"chat.postMessage", "chat.postMessage", "chat.update", "conversations.history", "conversations.replies", "conversations.invite", "conversations.setTopic"}
	// Every choice is drawn up front, whatever the incident's state (which
	// depends on timing), so a seed makes the same steps on every run.
	var (
		method    = methods[j.rng.IntN(len(methods))]
		count     = 1 + j.rng.IntN(2)
		where     = j.rng.IntN(8)
		code      = []string{"is_archived", "channel_not_found", "not_in_channel", "msg_too_long"}[j.rng.IntN(4)]
		refused   = []string{"chat.postMessage", "chat.update"}[j.rng.IntN(2)]
		tf        = transient[j.rng.IntN(len(transient))]
		inChannel = j.rng.IntN(3)
	)
	switch {
	case where == 2:
		// Faults hitting the steps that run side by side once a channel
		// exists (the invite and the summary card) at the same time.
		j.w.slack.FailNext("conversations.invite", count, tf.f)
		j.w.slack.FailNext("chat.postMessage", count, tf.f)
		j.log("conversations.invite and chat.postMessage %s ×%d at once", tf.name, count)
	case where == 0:
		// A permanent refusal in the optional announce channel.
		j.w.slack.FailNextIn(refused, j.w.announce, count, slacktest.SlackError(code))
		j.log("%s %s ×%d in the announce channel", refused, code, count)
	case where == 1 && inc.Chat.ChannelID != "":
		// A message the incident's own channel refuses for good.
		j.w.slack.FailNextIn("chat.postMessage", inc.Chat.ChannelID, 1, slacktest.SlackError("msg_too_long"))
		if j.tooLong == nil {
			j.tooLong = map[int64]int{}
		}
		if j.tooLong[n]++; j.tooLong[n] > 1 {
			j.refusedTwice = true
		}
		j.log("chat.postMessage msg_too_long in INC-%d", n)
	default:
		ch := ""
		switch inChannel {
		case 0:
			ch = inc.Chat.ChannelID // "" (anywhere) while it has none
		case 1:
			ch = j.w.announce
		}
		if ch == "" {
			j.w.slack.FailNext(method, count, tf.f)
		} else {
			j.w.slack.FailNextIn(method, ch, count, tf.f)
		}
		j.log("%s %s ×%d in %q", method, tf.name, count, ch)
	}
}

// check asserts the run's properties on what the store holds and what
// the fake Slack shows.
func (j *jointRun) check() {
	t := j.t
	snap := readStore(t, j.bot.store)
	ann := announcements(j.w.slack, j.w.announce)
	copies := threadCopies(j.w.slack, j.w.announce)
	pinned := 0
	for _, inc := range snap.incidents {
		events := snap.timelines[inc.Number]
		untold := map[int64]bool{}
		refusals := 0
		cardRefused := false
		for _, ev := range events {
			if seq, ok := strings.CutPrefix(ev.Key, "untold:"); ok {
				s, _ := strconv.ParseInt(seq, 10, 64)
				untold[s] = true
				// A report that Slack refused too is not reported again
				// (no loop of reports): it may be missing, never repeated.
				untold[ev.Seq] = j.refusedTwice
			}
			if ev.Key == "announce-failed" || ev.Key == "share-failed" {
				refusals++
			}
			if ev.Key == "summary-failed" {
				cardRefused = true
			}
			if ev.Kind == incident.EventMessagePinned {
				pinned++
			}
		}
		rep := toldExcept(j.w.slack, inc, events, untold)
		if rep.missing != "" || rep.extra != 0 || rep.cards > 1 || (rep.cards == 0 && !cardRefused) {
			t.Errorf("%s in #%s: %s", inc.ID(), inc.Chat.ChannelName, rep)
		}
		if len(inc.Chat.Sending) != 0 {
			t.Errorf("%s has posts left under way: %+v", inc.ID(), inc.Chat.Sending)
		}
		if ch, ok := j.w.slack.ChannelByName(inc.Chat.ChannelName); ok {
			for _, p := range inc.People() {
				if !slices.Contains(ch.Members, p) {
					t.Errorf("%s: %s is one of its people but not in #%s", inc.ID(), p, ch.Name)
				}
			}
		}
		switch {
		case inc.Chat.AnnounceFailed && refusals != 1:
			t.Errorf("%s gave the announce channel up, and says so %d times on its timeline (want once)", inc.ID(), refusals)
		case !inc.Chat.AnnounceFailed && refusals != 0:
			t.Errorf("%s reports %d announce refusals but did not give the channel up", inc.ID(), refusals)
		case inc.Chat.AnnounceFailed && ann[inc.ID()] > 1, !inc.Chat.AnnounceFailed && ann[inc.ID()] != 1:
			t.Errorf("%s announced %d times (announce channel given up: %v)", inc.ID(), ann[inc.ID()], inc.Chat.AnnounceFailed)
		}
		for _, ev := range events {
			if ev.Kind != incident.EventStatusUpdate || ev.Quiet || untold[ev.Seq] || inc.Chat.AnnounceID == "" {
				continue
			}
			c := copies[copyKey(inc, ev)]
			if c > 1 || (c == 0 && !inc.Chat.AnnounceFailed) {
				t.Errorf("%s: status update %q is in the announcement's thread %d times (announce channel given up: %v)", inc.ID(), ev.Text, c, inc.Chat.AnnounceFailed)
			}
		}
	}
	if pinned != j.pins {
		t.Errorf("%d messages pinned, %d on timelines", j.pins, pinned)
	}
}
