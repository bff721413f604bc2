package app_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// writeApprovalRunbook writes "scale": alice's group (S0SRE) may request
// it in an incident channel, bob's (S0LEADS) must approve it; it appends a
// line to the marker file it returns each time it runs.
func writeApprovalRunbook(t *testing.T) (dir, marker string) {
	t.Helper()
	dir = t.TempDir()
	marker = filepath.Join(t.TempDir(), "ran")
	body := "apiVersion: incidentbot/v1\nkind: Runbook\nid: scale\ntitle: Scale out\ndescription: test\nowner: team-test\nenabled: true\n" +
		"risk: low\nconfirm: false\nlimits:\n  timeout: 30s\nenv:\n  MARKER: '" + marker + "'\n" +
		"access:\n  requesters:\n    user_groups: ['S0SRE']\n  channels:\n    incident_channels_only: true\n    allow_direct_message: false\n" +
		"approval:\n  approvers:\n    user_groups: ['S0LEADS']\n  count: 1\n  expires_after: 30m\n" +
		"steps:\n  - name: mark\n    argv: ['/bin/sh', '-c', 'echo ran >> \"$MARKER\"; echo scaled']\n    timeout: 10s\n"
	if err := os.WriteFile(filepath.Join(dir, "scale.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, marker
}

var approvalRunID = regexp.MustCompile(`Run ([0-9A-Z]{26}) of scale needs approval`)

// requestApproval has alice ask for "scale" and returns the run id once
// the approval request is in the incident's thread.
func requestApproval(t *testing.T, w *slackWorld, bot *runningBot, channel string) string {
	t.Helper()
	r := bot.command(t, "U0ALICE", channel, "run scale")
	m := approvalRunID.FindStringSubmatch(r.Text())
	if m == nil {
		t.Fatalf("no approval request: %s", r.Body)
	}
	waitFor(t, 10*time.Second, "the approval request in the thread", func() bool { return anyText(w.fake, channel, "Approval needed") })
	return m[1]
}

// approveAtOnce has bob click Approve on runID several times at once,
// spread over bots, and returns the answers each click got.
func approveAtOnce(t *testing.T, w *slackWorld, channel, runID string, bots ...*runningBot) []string {
	t.Helper()
	urls := make([]string, 2*len(bots))
	var wg sync.WaitGroup
	for i := range urls {
		urls[i] = w.fake.NewResponseURL()
		bot := bots[i%len(bots)]
		click := w.fake.BlockAction("U0BOB", channel, "1.1", "runbook_approve", runID, urls[i])
		wg.Go(func() {
			if r, err := bot.send.Interaction(context.Background(), click); err != nil || r.Status != http.StatusOK {
				t.Errorf("approve: %v %d", err, r.Status)
			}
		})
	}
	wg.Wait()
	answers := make([]string, len(urls))
	for i, url := range urls {
		waitFor(t, 15*time.Second, "an answer to every click", func() bool {
			rs := w.fake.Responses(url)
			if len(rs) > 0 {
				answers[i] = rs[0].Text
			}
			return len(rs) > 0
		})
	}
	return answers
}

// ranOnce checks that exactly one click started the run, the others were
// told it was handled, the runbook's process ran once and its result is
// in the channel.
func ranOnce(t *testing.T, w *slackWorld, channel, marker string, answers []string) {
	t.Helper()
	started := 0
	for _, a := range answers {
		switch {
		case strings.Contains(a, "Running scale"):
			started++
		case strings.Contains(a, "this click was ignored"), strings.Contains(a, "You already approved"):
		default:
			t.Errorf("unexpected answer to a click: %q", a)
		}
	}
	if started != 1 {
		t.Fatalf("%d clicks started the run, want 1: %q", started, answers)
	}
	waitFor(t, 15*time.Second, "the result in the channel", func() bool { return anyText(w.fake, channel, "(scale): *succeeded*") })
	if got := fileLines(marker); len(got) != 1 {
		t.Fatalf("the runbook ran %d times, want once", len(got))
	}
}

// TestPendingApprovalSurvivesRestart: a runbook request waiting for
// approval is kept in the bbolt file; after the bot restarts, the
// approver's click (and a double click) runs it exactly once.
func TestPendingApprovalSurvivesRestart(t *testing.T) {
	w := newSlackWorld(t)
	w.fake.AddUserGroup("S0SRE", "U0ALICE")
	w.fake.AddUserGroup("S0LEADS", "U0BOB")
	dir, marker := writeApprovalRunbook(t)
	db := filepath.Join(t.TempDir(), "bot.db")
	env := map[string]string{"BOT_RUNBOOKS_DIR": dir}
	bot := w.start(t, db, env)
	channel := declareFirst(t, w, bot, "Checkout down", "inc-1-checkout-down")
	runID := requestApproval(t, w, bot, channel)
	bot.stop(t)

	bot = w.start(t, db, env)
	pending, err := incident.ListPendingRunbookRequests(context.Background(), bot.App.Service().Store(), time.Now())
	if err != nil || len(pending) != 1 || pending[0].ID != runID || pending[0].Requester != "U0ALICE" || pending[0].Incident != "INC-1" {
		t.Fatalf("pending after the restart: %+v %v", pending, err)
	}
	ranOnce(t, w, channel, marker, approveAtOnce(t, w, channel, runID, bot))
	if pending, _ := incident.ListPendingRunbookRequests(context.Background(), bot.App.Service().Store(), time.Now()); len(pending) != 0 {
		t.Errorf("still pending after the run: %+v", pending)
	}
}

// TestPendingApprovalAcrossEtcdReplicas: with two replicas on one etcd,
// a request made on one survives that replica's restart and is approved
// through the other; clicks landing on both at once run it exactly once.
func TestPendingApprovalAcrossEtcdReplicas(t *testing.T) {
	c := etcdtest.Start(t, 1)
	w := newSlackWorld(t)
	w.fake.AddUserGroup("S0SRE", "U0ALICE")
	w.fake.AddUserGroup("S0LEADS", "U0BOB")
	dir, marker := writeApprovalRunbook(t)
	env := map[string]string{"BOT_STORE": "etcd", "BOT_ETCD_ENDPOINTS": strings.Join(c.Endpoints(), ","), "BOT_RUNBOOKS_DIR": dir}
	a := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)
	b := w.start(t, filepath.Join(t.TempDir(), "bot.db"), env)
	channel := declareFirst(t, w, a, "Checkout down", "inc-1-checkout-down")
	runID := requestApproval(t, w, a, channel)
	a.stop(t)
	a = w.start(t, filepath.Join(t.TempDir(), "bot.db"), env) // the restarted replica
	ranOnce(t, w, channel, marker, approveAtOnce(t, w, channel, runID, b, a))
}
