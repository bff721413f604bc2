package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// homeTexts returns the text of each block of a published Home view.
func homeTexts(v slacktest.HomeView) []string {
	var out []string
	for _, b := range v.Blocks() {
		raw, _ := json.Marshal(b)
		var blk struct {
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
			Elements []struct {
				Text string `json:"text"`
			} `json:"elements"`
		}
		_ = json.Unmarshal(raw, &blk)
		s := blk.Text.Text
		for _, e := range blk.Elements {
			s += e.Text
		}
		out = append(out, s)
	}
	return out
}

func indexOf(texts []string, sub string) int {
	for i, s := range texts {
		if strings.Contains(s, sub) {
			return i
		}
	}
	return -1
}

func openHome(t *testing.T, env *handlerEnv, eventID, user string) {
	t.Helper()
	r, err := env.send.Event(context.Background(), env.fake.AppHomeOpened(eventID, user, "home"), 0)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("app_home_opened: %v %d %s", err, r.Status, r.Body)
	}
}

func waitHomes(t *testing.T, env *handlerEnv, user string, n int) []slacktest.HomeView {
	t.Helper()
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.HomeViews(user)) >= n }) {
		t.Fatalf("%d home views published to %s, want %d", len(env.fake.HomeViews(user)), user, n)
	}
	return env.fake.HomeViews(user)
}

// Opening the Home tab publishes that person's view: open incidents with
// severity, status, commander and age, theirs first; their open follow-ups
// (on resolved incidents too); and nothing anyone typed can mention a
// crowd.
func TestHomeTabShowsYourIncidentsFirst(t *testing.T) {
	clock := incidenttest.NewClock(time.Now())
	env := newHandlerEnv(t, slack.HandlerConfig{Clock: clock})
	ctx := context.Background()
	bob := incident.Actor{ID: "U0BOB", Source: incident.SourceSlack}
	// INC-1 "db down" (SEV3) is alice's: she declared it and leads it.
	inc2, err := env.svc.Declare(ctx, incident.Declaration{Title: "<!channel> checkout <!subteam^S1> down", Severity: incident.SEV1, By: bob})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.AddFollowup(ctx, incident.Ref{Number: inc2.Number}, "page <!here> about retries", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.ChangeFollowup(ctx, incident.Ref{Number: inc2.Number}, incident.FollowupChange{ID: 1, Op: incident.FollowupAssign, Owner: "U0ALICE"}, bob); err != nil {
		t.Fatal(err)
	}
	inc3, err := env.svc.Declare(ctx, incident.Declaration{Title: "old outage", By: bob})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"write the runbook", "someone else's", "already done"} {
		if _, err := env.svc.AddFollowup(ctx, incident.Ref{Number: inc3.Number}, text, bob); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []incident.FollowupChange{
		{ID: 1, Op: incident.FollowupAssign, Owner: "U0ALICE"}, {ID: 1, Op: incident.FollowupDue, Due: "2000-01-01"},
		{ID: 2, Op: incident.FollowupAssign, Owner: "U0BOB"},
		{ID: 3, Op: incident.FollowupAssign, Owner: "U0ALICE"}, {ID: 3, Op: incident.FollowupDone},
	} {
		if _, err := env.svc.ChangeFollowup(ctx, incident.Ref{Number: inc3.Number}, c, bob); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.svc.Resolve(ctx, incident.Ref{Number: inc3.Number}, bob, "fixed"); err != nil {
		t.Fatal(err)
	}

	openHome(t, env, "Ev0HOME1", "U0ALICE")
	views := waitHomes(t, env, "U0ALICE", 1)
	texts := homeTexts(views[0])
	all := strings.Join(texts, "\n")
	assertInert(t, "alice's home tab", all)
	if !strings.Contains(texts[0], "*Open incidents*: 2, you hold a role in 1") {
		t.Errorf("heading %q", texts[0])
	}
	mine, theirs := indexOf(texts, "*INC-1* SEV3 · acknowledged"), indexOf(texts, "*INC-2* SEV1 · acknowledged")
	if mine < 0 || theirs < 0 || mine > theirs {
		t.Fatalf("alice's INC-1 is not listed before the worse INC-2:\n%s", all)
	}
	for _, want := range []string{"db down", "Commander <@U0ALICE>", "you are the commander", "Commander <@U0BOB>", "open just now", "@\u200bchannel checkout @\u200bgroup down"} {
		if !strings.Contains(all, want) {
			t.Errorf("alice's home tab lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "INC-3* SEV") {
		t.Errorf("the resolved INC-3 is listed as open:\n%s", all)
	}
	// Her open follow-ups, the dated (overdue) one first; not bob's, not
	// the done one.
	fu := indexOf(texts, "*Your open follow-ups*: 2.")
	overdue, undated := indexOf(texts, "*INC-3* #1 write the runbook · due 2000-01-01 *(overdue)*"), indexOf(texts, "*INC-2* #1 page @\u200bhere about retries · no due date")
	if fu < 0 || overdue != fu+1 || undated != fu+2 || strings.Contains(all, "someone else's") || strings.Contains(all, "already done") {
		t.Errorf("follow-ups:\n%s", all)
	}
	if !strings.Contains(string(views[0].JSON), `"action_id":"home_declare"`) {
		t.Error("no Declare button")
	}

	// Bob holds a role in INC-2 and INC-3 (resolved): INC-2 first for him.
	openHome(t, env, "Ev0HOME2", "U0BOB")
	texts = homeTexts(waitHomes(t, env, "U0BOB", 1)[0])
	if i, j := indexOf(texts, "*INC-2*"), indexOf(texts, "*INC-1*"); i < 0 || j < 0 || i > j || !strings.Contains(texts[0], "you hold a role in 1") {
		t.Errorf("bob's home tab:\n%s", strings.Join(texts, "\n"))
	}
	if indexOf(texts, "*Your open follow-ups*: 1.") < 0 || indexOf(texts, "*INC-3* #2 someone else's") < 0 {
		t.Errorf("bob's follow-ups (his INC-3 #2 is open):\n%s", strings.Join(texts, "\n"))
	}
}

// Opens by one person within the window publish nothing more; the next
// open after it shows what changed. Other people are not held back.
func TestHomeTabOpensAreCoalesced(t *testing.T) {
	clock := incidenttest.NewClock(time.Now())
	env := newHandlerEnv(t, slack.HandlerConfig{Clock: clock, HomeWindow: 10 * time.Second})
	ctx := context.Background()

	openHome(t, env, "Ev0C1", "U0ALICE")
	waitHomes(t, env, "U0ALICE", 1)
	if _, err := env.svc.Declare(ctx, incident.Declaration{Title: "search is slow", By: incident.Actor{ID: "U0BOB", Source: incident.SourceSlack}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		clock.Advance(time.Second)
		openHome(t, env, fmt.Sprintf("Ev0C1-%d", i), "U0ALICE")
	}
	openHome(t, env, "Ev0C2", "U0BOB") // someone else: published
	waitHomes(t, env, "U0BOB", 1)
	clock.Advance(5 * time.Second) // 10s after alice's publish
	openHome(t, env, "Ev0C3", "U0ALICE")
	views := waitHomes(t, env, "U0ALICE", 2)

	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = env.handler.Close(closeCtx) // joins every publish still running
	if n := len(env.fake.HomeViews("U0ALICE")); n != 2 {
		t.Fatalf("alice's 7 opens published %d views, want 2", n)
	}
	if n := len(env.fake.Calls("views.publish")); n != 3 {
		t.Fatalf("%d views.publish calls, want 3", n)
	}
	if !strings.Contains(strings.Join(homeTexts(views[1]), "\n"), "search is slow") {
		t.Error("the view published after the window does not show the new incident")
	}
	// Each publish of a person's tab keeps its view id.
	if views[0].ID != views[1].ID {
		t.Errorf("view ids %s, %s", views[0].ID, views[1].ID)
	}
}

// A failed publish does not hold the next open back; the Messages tab
// publishes nothing.
func TestHomeTabRetriesAfterAFailedPublish(t *testing.T) {
	clock := incidenttest.NewClock(time.Now())
	env := newHandlerEnv(t, slack.HandlerConfig{Clock: clock})
	env.fake.FailNext("views.publish", 1, slacktest.SlackError("invalid_arguments"))
	r, err := env.send.Event(context.Background(), env.fake.AppHomeOpened("Ev0M", "U0ALICE", "messages"), 0)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("messages tab: %v %d", err, r.Status)
	}
	openHome(t, env, "Ev0F1", "U0ALICE")
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Calls("views.publish")) == 1 }) {
		t.Fatal("no views.publish")
	}
	// The failure is handled in the background after Slack answered; the
	// person opens the tab again until it is, as people do.
	for i := 0; len(env.fake.HomeViews("U0ALICE")) == 0; i++ {
		if i == 250 {
			t.Fatal("the opens after a failed publish published nothing")
		}
		openHome(t, env, fmt.Sprintf("Ev0F-%d", i), "U0ALICE")
		env.fake.Wait(20*time.Millisecond, func() bool { return len(env.fake.HomeViews("U0ALICE")) > 0 })
	}
}

// The Home view stays within Slack's 100 blocks and says how many
// incidents and follow-ups it left out.
func TestHomeViewIsTrimmed(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var ov incident.Overview
	for i := range 130 {
		inc := &incident.Incident{Number: int64(i + 1), Title: strings.Repeat("x", 400), Severity: incident.SEV2, Status: incident.StatusAcknowledged, DetectedAt: now.Add(-time.Hour)}
		ov.Incidents = append(ov.Incidents, inc)
		ov.Followups = append(ov.Followups, incident.OwnedFollowup{Incident: inc, Followup: incident.Followup{ID: 1, Text: strings.Repeat("y", 4000), Owner: "U0ALICE"}})
	}
	view := slack.HomeView(ov, "U0ALICE", now, nil)
	raw, _ := json.Marshal(view)
	if n := len(view.Blocks.BlockSet); n > slack.MaxHomeBlocks {
		t.Fatalf("%d blocks", n)
	}
	if len(raw) > 250_000 {
		t.Fatalf("view of %d bytes", len(raw))
	}
	js := string(raw)
	if !strings.Contains(js, "…and 56 more open incidents not shown") || !strings.Contains(js, "…and 110 more of your follow-ups not shown") {
		t.Fatalf("no counts of what was left out:\n%s", js)
	}
}
