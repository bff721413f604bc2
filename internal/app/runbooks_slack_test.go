package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// writeTestRunbooks writes "mark" (medium risk: the requester confirms)
// and "hang" (starts a process that ignores SIGTERM and never ends) into a
// directory, with the marker files they write to.
func writeTestRunbooks(t *testing.T) (dir, markFile, hangFile string) {
	t.Helper()
	dir, tmp := t.TempDir(), t.TempDir()
	markFile, hangFile = filepath.Join(tmp, "mark"), filepath.Join(tmp, "hang")
	head := func(id, risk string, confirm bool) string {
		return "apiVersion: incidentbot/v1\nkind: Runbook\nid: " + id + "\ntitle: " + id + "\ndescription: test\nowner: team-test\nenabled: true\n" +
			"risk: " + risk + "\nconfirm: " + strconv.FormatBool(confirm) + "\n" +
			"access:\n  requesters:\n    user_groups: ['S0SRE']\n  channels:\n    incident_channels_only: true\n    allow_direct_message: false\n"
	}
	files := map[string]string{
		"mark.yaml": head("mark", "medium", true) + "limits:\n  timeout: 30s\nenv:\n  MARKER: '" + markFile + "'\n" +
			"steps:\n  - name: mark\n    argv: ['/bin/sh', '-c', 'echo ran >> \"$MARKER\"; echo marked']\n    timeout: 10s\n",
		"hang.yaml": head("hang", "low", false) + "limits:\n  timeout: 10m\nenv:\n  MARKER: '" + hangFile + "'\n" +
			"steps:\n  - name: hang\n    argv: ['/bin/sh', '-c', 'trap \"\" TERM; echo $$ >> \"$MARKER\"; sleep 1000']\n    timeout: 10m\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, markFile, hangFile
}

func fileLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// declareFirst declares incident 1 as alice from #general and returns its
// channel once it is set up.
func declareFirst(t *testing.T, w *slackWorld, bot *runningBot, title, channelName string) string {
	t.Helper()
	bot.command(t, "U0ALICE", w.general, "declare sev2 "+title)
	var channel string
	waitFor(t, 10*time.Second, "the incident channel", func() bool {
		ch, ok := w.fake.ChannelByName(channelName)
		channel = ch.ID
		return ok && bot.incident(t, 1).Chat.SummaryID != ""
	})
	return channel
}

// requestCard sends a runbook command that must answer with a
// confirmation card, and returns the reply and the card's run id.
func requestCard(t *testing.T, bot *runningBot, user, channel, text string) (slacktest.Reply, string) {
	t.Helper()
	card := bot.command(t, user, channel, text)
	m := cardRunID.FindStringSubmatch(string(card.Body))
	if m == nil {
		t.Fatalf("no confirmation card for %q: %s", text, card.Body)
	}
	return card, m[1] + m[2]
}

var cardRunID = regexp.MustCompile(`"action_id":"runbook_confirm"[^}]*"value":"([0-9A-Z]+)"|"value":"([0-9A-Z]+)"[^}]*"action_id":"runbook_confirm"`)

// TestRunbooksFromSlack runs runbooks through the real Slack handler:
// the confirmation card's button runs once however often it is clicked or
// replayed, the result lands in the incident's thread, a hanging runbook
// does not keep other commands from being acknowledged within Slack's 3 s,
// and shutdown kills it although it ignores SIGTERM.
func TestRunbooksFromSlack(t *testing.T) {
	w := newSlackWorld(t)
	w.fake.AddUserGroup("S0SRE", "U0ALICE")
	dir, markFile, hangFile := writeTestRunbooks(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"BOT_RUNBOOKS_DIR": dir})
	channel := declareFirst(t, w, bot, "Runbook trouble", "inc-1-runbook-trouble")

	// The card: Confirm carries only the run id.
	_, runID := requestCard(t, bot, "U0ALICE", channel, "run mark")
	ctx := context.Background()
	click := w.fake.BlockAction("U0ALICE", channel, "1.1", "runbook_confirm", runID, w.fake.NewResponseURL())
	second := w.fake.BlockAction("U0ALICE", channel, "1.1", "runbook_confirm", runID, w.fake.NewResponseURL())
	for _, c := range []map[string]any{click, click, second} { // a replay and a double click
		if r, err := bot.send.Interaction(ctx, c); err != nil || r.Status != http.StatusOK {
			t.Fatalf("click: %v %d", err, r.Status)
		}
	}
	summary := bot.incident(t, 1).Chat.SummaryID
	waitFor(t, 15*time.Second, "the result in the incident's thread", func() bool {
		for _, msg := range w.fake.Messages(channel) {
			if msg.ThreadTS == summary && strings.Contains(msg.Text, "succeeded") {
				return true
			}
		}
		return false
	})
	if got := fileLines(markFile); len(got) != 1 {
		t.Fatalf("mark ran %d times, want once", len(got))
	}

	// A runbook that hangs does not block anything else.
	bot.command(t, "U0ALICE", channel, "run hang")
	waitFor(t, 10*time.Second, "the hanging runbook to start", func() bool { return len(fileLines(hangFile)) == 1 })
	pid, _ := strconv.Atoi(fileLines(hangFile)[0])
	var slowest time.Duration
	for i := range 20 {
		text := "status"
		if i%2 == 1 {
			text = "note still hanging " + strconv.Itoa(i)
		}
		began := time.Now()
		bot.command(t, "U0ALICE", channel, text)
		slowest = max(slowest, time.Since(began))
	}
	if slowest >= 3*time.Second {
		t.Fatalf("a command took %s to be acknowledged while a runbook hung", slowest)
	}
	t.Logf("slowest acknowledgement while a runbook hung: %s", slowest)

	// Shutdown stops the child although it ignores SIGTERM.
	bot.stop(t)
	// The shell led its own process group: nothing of it may be left
	// running, its sleep included. (Killed orphans can linger a moment as
	// zombies until init reaps them; those are dead.)
	if alive := liveGroupMembers(pid); len(alive) > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		t.Fatalf("the hanging runbook's processes %v (group %d) survived shutdown", alive, pid)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// liveGroupMembers lists the processes of a process group that are not
// zombies, from /proc.
func liveGroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var alive []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			alive = append(alive, pid)
		}
	}
	return alive
}

// TestIncidentRolesGrantNothingFromSlack is the attack from issue 11
// through the real Slack path: carol, in no configured user group, takes
// the commander role with `/incident lead` in alice's incident. She cannot
// run a runbook, cannot approve alice's high-risk request, and a runbook
// file that grants by role alone is not loaded at all. bob, a configured
// approver, can approve; the approval request says who may.
func TestIncidentRolesGrantNothingFromSlack(t *testing.T) {
	w := newSlackWorld(t)
	w.fake.AddUserGroup("S0SRE", "U0ALICE")
	w.fake.AddUserGroup("S0LEADS", "U0BOB")
	dir, tmp := t.TempDir(), t.TempDir()
	marker := filepath.Join(tmp, "ran")
	head := func(id, risk string) string {
		return "apiVersion: incidentbot/v1\nkind: Runbook\nid: " + id + "\ntitle: " + id + "\ndescription: test\nowner: team-test\nenabled: true\n" +
			"risk: " + risk + "\nconfirm: true\nlimits:\n  timeout: 30s\nenv:\n  MARKER: '" + marker + "'\n" +
			"steps:\n  - name: mark\n    argv: ['/bin/sh', '-c', 'echo " + id + " >> \"$MARKER\"']\n    timeout: 10s\n"
	}
	files := map[string]string{
		// SRE members, narrowed to the commander; SRE leads approve.
		"scale.yaml": head("scale", "high") +
			"access:\n  requesters:\n    user_groups: ['S0SRE']\n    incident_roles: ['commander']\n" +
			"approval:\n  approvers:\n    user_groups: ['S0LEADS']\n  count: 1\n  expires_after: 10m\n" +
			"dry_run:\n  steps:\n    - name: probe\n      argv: ['/bin/true']\n      timeout: 5s\n",
		// The old, unsafe form: any commander may run and approve.
		"by-role.yaml": head("by-role", "medium") +
			"access:\n  requesters:\n    incident_roles: ['commander']\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"BOT_RUNBOOKS_DIR": dir})
	channel := declareFirst(t, w, bot, "Checkout down", "inc-1-checkout-down")

	// alice asks while she is still commander, and confirms.
	card, runID := requestCard(t, bot, "U0ALICE", channel, "run scale")
	if !strings.Contains(card.Text(), "Can approve: members of <!subteam^S0LEADS|@S0LEADS> (not you)") {
		t.Fatalf("the card does not say who can approve: %s", card.Body)
	}
	ctx := context.Background()
	if r, err := bot.send.Interaction(ctx, w.fake.BlockAction("U0ALICE", channel, "1.1", "runbook_confirm", runID, w.fake.NewResponseURL())); err != nil || r.Status != http.StatusOK {
		t.Fatalf("confirm: %v %d", err, r.Status)
	}
	summary := bot.incident(t, 1).Chat.SummaryID
	waitFor(t, 10*time.Second, "the approval request in the thread", func() bool {
		for _, msg := range w.fake.Messages(channel) {
			if msg.ThreadTS == summary && strings.Contains(msg.Text, "Approval needed") {
				if !strings.Contains(msg.Text, "Can approve: members of <!subteam^S0LEADS|@S0LEADS> (not <@U0ALICE>)") {
					t.Fatalf("approval request: %s", msg.Text)
				}
				return true
			}
		}
		return false
	})

	// carol takes command. It gives her nothing to run or approve with.
	if r := bot.command(t, "U0CAROL", channel, "lead"); bot.incident(t, 1).Commander() != "U0CAROL" {
		t.Fatalf("carol did not become commander: %s", r.Text())
	}
	for _, text := range []string{"run scale", "run by-role"} {
		r := bot.command(t, "U0CAROL", channel, text)
		if !strings.Contains(r.Text(), "Nothing was run") || strings.Contains(string(r.Body), "runbook_confirm") {
			t.Fatalf("%q as the new commander: %s", text, r.Body)
		}
	}
	if r := bot.command(t, "U0CAROL", channel, "run scale"); !strings.Contains(r.Text(), "you are not among the people allowed to run it (members of @\u200bS0SRE, and only while they are this incident's commander)") {
		t.Fatalf("refusal does not say what carol lacks: %s", r.Text())
	}
	if r := bot.command(t, "U0CAROL", channel, "run by-role"); !strings.Contains(r.Text(), "failed validation and is not loaded") {
		t.Fatalf("a runbook granted by role alone was loaded: %s", r.Text())
	}
	// Whatever names are typed, unknown runbooks share one metric label.
	for _, name := range []string{"zz-made-up-1", "zz-made-up-2", "Not_An_Id!"} {
		bot.command(t, "U0CAROL", channel, "run "+name)
	}
	resp, err := http.Get(bot.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(metrics, []byte("zz-made-up")) || bytes.Contains(metrics, []byte(`runbook="by-role"`)) ||
		!bytes.Contains(metrics, []byte(`incidentbot_runbook_runs_total{outcome="refused",runbook="unknown"} 5`)) ||
		!bytes.Contains(metrics, []byte(`incidentbot_runbook_runs_total{outcome="refused",runbook="scale"} 2`)) {
		t.Fatalf("runbook metrics:\n%s", grepLines(string(metrics), "incidentbot_runbook_runs_total"))
	}

	for _, action := range []string{"runbook_approve", "runbook_deny"} {
		url := w.fake.NewResponseURL()
		if r, err := bot.send.Interaction(ctx, w.fake.BlockAction("U0CAROL", channel, summary, action, runID, url)); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s: %v %d", action, err, r.Status)
		}
		waitFor(t, 10*time.Second, "the answer to carol's "+action, func() bool {
			for _, resp := range w.fake.Responses(url) {
				if strings.Contains(resp.Text, "you are not among the people allowed to approve it") {
					return true
				}
			}
			return false
		})
	}
	if got := fileLines(marker); len(got) != 0 {
		t.Fatalf("ran %v", got)
	}

	// bob, a configured approver, approves. The requester lost the
	// commander role to carol meanwhile, and bob is told so, by name.
	url := w.fake.NewResponseURL()
	if r, err := bot.send.Interaction(ctx, w.fake.BlockAction("U0BOB", channel, summary, "runbook_approve", runID, url)); err != nil || r.Status != http.StatusOK {
		t.Fatalf("approve: %v %d", err, r.Status)
	}
	waitFor(t, 10*time.Second, "the answer to bob", func() bool {
		for _, resp := range w.fake.Responses(url) {
			if strings.Contains(resp.Text, "<@U0ALICE>, who requested run "+runID+", is not this incident's commander any more") {
				return true
			}
		}
		return false
	})
	if got := fileLines(marker); len(got) != 0 {
		t.Fatalf("ran %v", got)
	}

	// With command back, alice's new request runs once bob approves.
	bot.command(t, "U0ALICE", channel, "lead")
	_, runID = requestCard(t, bot, "U0ALICE", channel, "run scale")
	url = w.fake.NewResponseURL()
	if r, err := bot.send.Interaction(ctx, w.fake.BlockAction("U0ALICE", channel, "1.2", "runbook_confirm", runID, url)); err != nil || r.Status != http.StatusOK {
		t.Fatalf("confirm: %v %d", err, r.Status)
	}
	waitFor(t, 10*time.Second, "the confirmation", func() bool { return len(w.fake.Responses(url)) > 0 })
	url = w.fake.NewResponseURL()
	if r, err := bot.send.Interaction(ctx, w.fake.BlockAction("U0BOB", channel, summary, "runbook_approve", runID, url)); err != nil || r.Status != http.StatusOK {
		t.Fatalf("approve: %v %d", err, r.Status)
	}
	waitFor(t, 15*time.Second, "the approved run", func() bool { return len(fileLines(marker)) == 1 })
	waitFor(t, 10*time.Second, "bob to be told it runs", func() bool {
		resp := w.fake.Responses(url)
		return len(resp) == 1 && strings.Contains(resp[0].Text, "Running scale")
	})
}
