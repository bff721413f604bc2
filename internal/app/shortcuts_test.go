package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// openedView is the part of a view the tests read.
type openedView struct {
	CallbackID      string `json:"callback_id"`
	PrivateMetadata string `json:"private_metadata"`
	Blocks          []struct {
		BlockID string `json:"block_id"`
		Element struct {
			InitialValue string `json:"initial_value"`
			Options      []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"element"`
	} `json:"blocks"`
}

func decodeView(t *testing.T, v slacktest.View) openedView {
	t.Helper()
	var o openedView
	if err := json.Unmarshal(v.JSON, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o openedView) initial(block string) string {
	for _, b := range o.Blocks {
		if b.BlockID == block {
			return b.Element.InitialValue
		}
	}
	return ""
}

// waitView waits for the nth view (1-based) to open and returns it.
func waitView(t *testing.T, fake *slacktest.Server, n int) slacktest.View {
	t.Helper()
	if !fake.Wait(10*time.Second, func() bool { return len(fake.Views()) >= n }) {
		t.Fatalf("view %d did not open; views: %d", n, len(fake.Views()))
	}
	return fake.Views()[n-1]
}

func interact(t *testing.T, b *runningBot, payload map[string]any) slacktest.Reply {
	t.Helper()
	r, err := b.send.Interaction(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("interaction %v: HTTP %d %s", payload["type"], r.Status, r.Body)
	}
	return r
}

// pinnedOf returns the timeline entries that keep the message ts.
func pinnedOf(events []incident.Event, ts string) []incident.Event {
	var out []incident.Event
	for _, ev := range events {
		if ev.Kind == incident.EventMessagePinned && ev.Data["ts"] == ts {
			out = append(out, ev)
		}
	}
	return out
}

func permalink(channel, ts string) string {
	return fmt.Sprintf("https://test.slack.com/archives/%s/p%s", channel, strings.Replace(ts, ".", "", 1))
}

// incidentChannel waits until INC-1's channel exists, carries its summary
// and is recorded as the incident's, and returns its id.
func incidentChannel(t *testing.T, bot *runningBot, fake *slacktest.Server, name string) string {
	t.Helper()
	var id string
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName(name)
		id = c.ID
		return ok && len(summaries(fake, c.ID)) == 1 && bot.incident(t, 1).Chat.ChannelID == c.ID
	}) {
		t.Fatalf("no incident channel %s", name)
	}
	return id
}

func responseTexts(fake *slacktest.Server, url string) []string {
	var out []string
	for _, r := range fake.Responses(url) {
		out = append(out, r.Text)
	}
	return out
}

// "Declare incident from this message": the form opens filled in from
// the message, and the incident it declares links the message on its
// timeline, even when the bot restarted between the form opening and its
// submission (the link travels with the form and is stored with the
// declaration). A double submit declares once.
func TestDeclareFromMessageShortcut(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	db := filepath.Join(t.TempDir(), "bot.db")
	bot := w.start(t, db, nil)
	ts := fake.UserPost(w.general, "U0BOB", "\n  Checkout API returns 500s  \nSince 14:02 for EU customers, R&amp;D is on it")
	payload := fake.MessageShortcut("U0ALICE", slack.DeclareFromMessageCallbackID, w.general, ts)
	if r := interact(t, bot, payload); len(r.Body) != 0 {
		t.Fatalf("shortcut ack %q, want empty", r.Body)
	}
	view := waitView(t, fake, 1)
	o := decodeView(t, view)
	if o.CallbackID != slack.DeclareCallbackID || o.initial("title") != "Checkout API returns 500s" ||
		o.initial("description") != "Checkout API returns 500s  \nSince 14:02 for EU customers, R&D is on it" {
		t.Fatalf("declare form not filled in from the message: %s", view.JSON)
	}
	if !strings.Contains(o.PrivateMetadata, permalink(w.general, ts)) {
		t.Fatalf("the form does not carry the message's permalink: %q", o.PrivateMetadata)
	}
	if n := len(fake.Calls("chat.getPermalink")); n != 1 {
		t.Fatalf("chat.getPermalink called %d times", n)
	}

	bot.stop(t)
	bot = w.start(t, db, nil)
	good := fake.ViewSubmission("U0ALICE", view, map[string]string{"title": "Checkout API returns 500s", "description": "EU checkout fails"}, map[string]string{"severity": "sev2"})
	for range 2 {
		if r := interact(t, bot, good); len(r.Body) != 0 {
			t.Fatalf("submit answered %s", r.Body)
		}
	}
	incs, _ := bot.App.Service().List(context.Background(), incident.Filter{})
	if len(incs) != 1 || incs[0].Title != "Checkout API returns 500s" || incs[0].Severity != incident.SEV2 {
		t.Fatalf("incidents: %+v", incs)
	}
	pins := pinnedOf(bot.timeline(t, 1), ts)
	if len(pins) != 1 {
		t.Fatalf("%d timeline entries for the message, want 1", len(pins))
	}
	p := pins[0]
	if p.Data["link"] != permalink(w.general, ts) || p.Data["author"] != "U0BOB" || p.Data["channel"] != w.general ||
		!strings.Contains(p.Text, "R&D is on it") || !p.At.Equal(slack.TSTime(ts)) {
		t.Fatalf("the link entry: %+v", p)
	}
	if d := p.Describe(); !strings.HasSuffix(d, " (<"+permalink(w.general, ts)+">)") {
		t.Fatalf("the timeline line does not link the message: %s", d)
	}
	// The incident channel tells it, with the link.
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-checkout-api-returns-500s")
		return ok && anyText(fake, c.ID, permalink(w.general, ts))
	}) {
		t.Fatalf("the incident channel does not show the message's link")
	}
	bot.stop(t)
	bot = w.start(t, db, nil)
	if pins := pinnedOf(bot.timeline(t, 1), ts); len(pins) != 1 || pins[0].Data["link"] != permalink(w.general, ts) {
		t.Fatalf("after a restart the link is gone: %+v", pins)
	}
}

// "Add to incident timeline": in the incident's channel the message goes
// to that incident, with its author, text and permalink; a double click
// adds it once; the bot's own messages are not added; another app's
// message (an alert) is. Elsewhere a form asks which open incident.
func TestAddToTimelineShortcut(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	bot.command(t, "U0ALICE", w.general, "declare sev2 Search is slow")
	chID := incidentChannel(t, bot, fake, "inc-1-search-is-slow")

	// In the channel, clicked twice.
	ts := fake.UserPost(chID, "U0BOB", "rolled back deploy 4411")
	first := fake.MessageShortcut("U0CAROL", slack.AddToTimelineCallbackID, chID, ts)
	second := fake.MessageShortcut("U0CAROL", slack.AddToTimelineCallbackID, chID, ts)
	interact(t, bot, first)
	interact(t, bot, first) // Slack's retry of the same payload
	interact(t, bot, second)
	firstURL, secondURL := first["response_url"].(string), second["response_url"].(string)
	if !fake.Wait(10*time.Second, func() bool {
		return len(fake.Responses(firstURL)) == 1 && len(fake.Responses(secondURL)) == 1
	}) {
		t.Fatalf("answers: %q %q", responseTexts(fake, firstURL), responseTexts(fake, secondURL))
	}
	answers := append(responseTexts(fake, firstURL), responseTexts(fake, secondURL)...)
	if !strings.Contains(strings.Join(answers, "|"), "Added to *INC-1*'s timeline.") || !strings.Contains(strings.Join(answers, "|"), "already on *INC-1*'s timeline") {
		t.Fatalf("answers: %q", answers)
	}
	pins := pinnedOf(bot.timeline(t, 1), ts)
	if len(pins) != 1 || pins[0].Data["author"] != "U0BOB" || pins[0].Actor.ID != "U0CAROL" ||
		pins[0].Text != "rolled back deploy 4411" || pins[0].Data["link"] != permalink(chID, ts) {
		t.Fatalf("timeline entries for the message: %+v", pins)
	}
	if len(fake.Views()) != 0 {
		t.Fatalf("a form opened in the incident channel: %d", len(fake.Views()))
	}

	// The bot's own message (the summary) is not added; an alert is.
	own := fake.MessageShortcut("U0CAROL", slack.AddToTimelineCallbackID, chID, summaries(fake, chID)[0].TS)
	alertTS := fake.AppPost(chID, "B0ALERT", "Alertmanager", "[FIRING:1] HighLatency search-api")
	alert := fake.MessageShortcut("U0CAROL", slack.AddToTimelineCallbackID, chID, alertTS)
	interact(t, bot, own)
	interact(t, bot, alert)
	if !fake.Wait(10*time.Second, func() bool {
		return len(fake.Responses(own["response_url"].(string))) == 1 && len(fake.Responses(alert["response_url"].(string))) == 1
	}) {
		t.Fatal("no answers to the bot's message and the alert")
	}
	if got := responseTexts(fake, own["response_url"].(string))[0]; !strings.Contains(got, "my own message") {
		t.Fatalf("own message answered %q", got)
	}
	if p := pinnedOf(bot.timeline(t, 1), summaries(fake, chID)[0].TS); len(p) != 0 {
		t.Fatalf("the bot's own message was added: %+v", p)
	}
	if p := pinnedOf(bot.timeline(t, 1), alertTS); len(p) != 1 || p[0].Data["author_name"] != "Alertmanager" ||
		!strings.Contains(p[0].Describe(), "message from Alertmanager: [FIRING:1] HighLatency search-api") {
		t.Fatalf("the alert: %+v", p)
	}

	// Elsewhere: the picker lists the open incidents.
	bot.command(t, "U0ALICE", w.general, "declare sev3 Login is slow")
	genTS := fake.UserPost(w.general, "U0CAROL", "EU customers report slow search")
	pick := fake.MessageShortcut("U0CAROL", slack.AddToTimelineCallbackID, w.general, genTS)
	interact(t, bot, pick)
	view := waitView(t, fake, 1)
	o := decodeView(t, view)
	if o.CallbackID != slack.PickIncidentCallbackID {
		t.Fatalf("picker: %s", view.JSON)
	}
	var options []string
	for _, b := range o.Blocks {
		for _, op := range b.Element.Options {
			options = append(options, op.Value)
		}
	}
	if strings.Join(options, ",") != "INC-2,INC-1" {
		t.Fatalf("picker options %v, want the open incidents newest first", options)
	}
	r := interact(t, bot, fake.ViewSubmission("U0CAROL", view, nil, nil))
	if !strings.Contains(string(r.Body), `"response_action":"errors"`) {
		t.Fatalf("no incident chosen answered %s", r.Body)
	}
	submit := fake.ViewSubmission("U0CAROL", view, nil, map[string]string{"incident": "INC-1"})
	interact(t, bot, submit)
	interact(t, bot, submit)
	waitFor(t, 10*time.Second, "the picked message on the timeline", func() bool {
		return len(pinnedOf(bot.timeline(t, 1), genTS)) == 1 && bot.idle()
	})
	if p := pinnedOf(bot.timeline(t, 1), genTS); len(p) != 1 || p[0].Data["link"] != permalink(w.general, genTS) || p[0].Data["author"] != "U0CAROL" {
		t.Fatalf("picked message: %+v", p)
	}
	if len(pinnedOf(bot.timeline(t, 2), genTS)) != 0 {
		t.Fatal("the message went to the wrong incident")
	}
	bot.noDeadJobs(t)
}

// The same shortcuts over Socket Mode take the same path.
func TestMessageShortcutsOverSocketMode(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{
		"SLACK_APP_TOKEN": fake.AppToken(), "SLACK_SIGNING_SECRET": "",
	})
	if !fake.Wait(10*time.Second, func() bool { return fake.SocketConnections() == 1 }) {
		t.Fatal("the bot did not open a Socket Mode connection")
	}
	send := func(payload map[string]any) slacktest.Ack {
		t.Helper()
		a, err := fake.SendEnvelope(slacktest.Envelope{Type: "interactive", AcceptsResponsePayload: true, Payload: payload}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ts := fake.UserPost(w.general, "U0BOB", "Login fails for everyone")
	send(fake.MessageShortcut("U0ALICE", slack.DeclareFromMessageCallbackID, w.general, ts))
	view := waitView(t, fake, 1)
	if o := decodeView(t, view); o.initial("title") != "Login fails for everyone" {
		t.Fatalf("form: %s", view.JSON)
	}
	send(fake.ViewSubmission("U0ALICE", view, map[string]string{"title": "Login fails for everyone"}, map[string]string{"severity": "sev1"}))
	if p := pinnedOf(bot.timeline(t, 1), ts); len(p) != 1 || p[0].Data["link"] != permalink(w.general, ts) {
		t.Fatalf("declared from the message: %+v", p)
	}
	chID := incidentChannel(t, bot, fake, "inc-1-login-fails-for-everyone")
	later := fake.UserPost(chID, "U0BOB", "auth service restarted")
	payload := fake.MessageShortcut("U0BOB", slack.AddToTimelineCallbackID, chID, later)
	// Slack redelivers an envelope it did not see acknowledged.
	for range 2 {
		if _, err := fake.SendEnvelope(slacktest.Envelope{Type: "interactive", EnvelopeID: "env-add-1", Payload: payload}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	url := payload["response_url"].(string)
	if !fake.Wait(10*time.Second, func() bool { return len(fake.Responses(url)) >= 1 }) {
		t.Fatal("no answer to the shortcut")
	}
	waitFor(t, 10*time.Second, "the jobs to finish", bot.idle)
	if p := pinnedOf(bot.timeline(t, 1), later); len(p) != 1 || p[0].Data["link"] != permalink(chID, later) {
		t.Fatalf("added over Socket Mode: %+v", p)
	}
	if got := responseTexts(fake, url); len(got) != 1 || got[0] != "Added to *INC-1*'s timeline." {
		t.Fatalf("answers %q, want one", got)
	}
}

// `/incident update` and `/incident resolve` typed alone in an incident
// channel open forms; the server validates them like the declare form; a
// valid submit updates or resolves once. Outside an incident channel they
// answer as before.
func TestUpdateAndResolveForms(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	bot.command(t, "U0ALICE", w.general, "declare sev2 Search is slow")
	chID := incidentChannel(t, bot, fake, "inc-1-search-is-slow")
	bot.command(t, "U0ALICE", chID, "summary The search index lost a shard")
	errorsOf := func(r slacktest.Reply) map[string]string {
		var v struct {
			Action string            `json:"response_action"`
			Errors map[string]string `json:"errors"`
		}
		_ = json.Unmarshal(r.Body, &v)
		if v.Action != "errors" {
			return nil
		}
		return v.Errors
	}

	// Outside an incident channel: the usual answers, no form.
	if r := bot.command(t, "U0ALICE", w.general, "update"); !strings.Contains(r.Text(), "Write the update for stakeholders") {
		t.Fatalf("update outside: %q", r.Text())
	}
	if r := bot.command(t, "U0ALICE", w.general, "resolve"); !strings.Contains(r.Text(), "not an incident channel") {
		t.Fatalf("resolve outside: %q", r.Text())
	}
	if len(fake.Views()) != 0 {
		t.Fatal("a form opened outside an incident channel")
	}

	// update
	if r := bot.command(t, "U0ALICE", chID, "update"); len(r.Body) != 0 {
		t.Fatalf("update alone answered %q, want an empty ack", r.Body)
	}
	view := waitView(t, fake, 1)
	if o := decodeView(t, view); o.CallbackID != slack.UpdateCallbackID {
		t.Fatalf("update form: %s", view.JSON)
	}
	if e := errorsOf(interact(t, bot, fake.ViewSubmission("U0ALICE", view, map[string]string{"update_text": "  "}, nil))); e["update_text"] == "" {
		t.Fatalf("empty update: errors %v", e)
	}
	if e := errorsOf(interact(t, bot, fake.ViewSubmission("U0ALICE", view, map[string]string{"update_text": strings.Repeat("x", incident.MaxTextLength+1)}, nil))); !strings.Contains(e["update_text"], "3000") {
		t.Fatalf("oversize update: errors %v", e)
	}
	good := fake.ViewSubmission("U0ALICE", view, map[string]string{"update_text": "Index rebuilt; latency back to normal at 14:40"}, nil)
	for range 2 {
		if r := interact(t, bot, good); len(r.Body) != 0 {
			t.Fatalf("good update answered %s", r.Body)
		}
	}
	if n := countKind(bot.timeline(t, 1), incident.EventStatusUpdate); n != 1 {
		t.Fatalf("%d status updates, want 1", n)
	}
	if !fake.Wait(10*time.Second, func() bool {
		for _, e := range fake.Ephemerals() {
			if e.User == "U0ALICE" && strings.Contains(e.Text, "Status update posted") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no confirmation: %+v", fake.Ephemerals())
	}

	// resolve
	if r := bot.command(t, "U0ALICE", chID, "resolve"); len(r.Body) != 0 {
		t.Fatalf("resolve alone answered %q", r.Body)
	}
	view = waitView(t, fake, 2)
	if o := decodeView(t, view); o.CallbackID != slack.ResolveCallbackID || o.initial("summary") != "The search index lost a shard" || o.initial("impact") != "" {
		t.Fatalf("resolve form (with the summary and impact as they are): %s", view.JSON)
	}
	if e := errorsOf(interact(t, bot, fake.ViewSubmission("U0ALICE", view, map[string]string{"resolution": "x", "impact": strings.Repeat("i", incident.MaxTextLength+1)}, nil))); e["impact"] == "" || e["resolution"] != "" {
		t.Fatalf("oversize impact: errors %v", e)
	}
	if e := errorsOf(interact(t, bot, fake.ViewSubmission("U0ALICE", view, map[string]string{"resolution": ""}, nil))); e["resolution"] == "" {
		t.Fatalf("empty resolution: errors %v", e)
	}
	if bot.incident(t, 1).Status == incident.StatusResolved {
		t.Fatal("an empty form resolved the incident")
	}
	good = fake.ViewSubmission("U0ALICE", view, map[string]string{"resolution": "Rebuilt the search index",
		"summary": "The search index lost a shard", "impact": "EU users could not search for 20 minutes"}, nil)
	interact(t, bot, good)
	interact(t, bot, good)
	if inc := bot.incident(t, 1); inc.Status != incident.StatusResolved || inc.Impact != "EU users could not search for 20 minutes" || inc.Description != "The search index lost a shard" {
		t.Fatalf("after the resolve form: %s, impact %q, summary %q", inc.Status, inc.Impact, inc.Description)
	}
	if n := countKind(bot.timeline(t, 1), incident.EventFactChanged); n != 2 { // the summary command, then the form's impact
		t.Fatalf("%d fact changes, want 2 (an unchanged summary is not recorded again)", n)
	}
	var resolvedWith []string
	for _, ev := range bot.timeline(t, 1) {
		if ev.Kind == incident.EventStatusChanged && ev.Data["to"] == string(incident.StatusResolved) {
			resolvedWith = append(resolvedWith, ev.Text)
		}
	}
	if len(resolvedWith) != 1 || resolvedWith[0] != "Rebuilt the search index" {
		t.Fatalf("resolutions on the timeline: %q", resolvedWith)
	}
	// Resolved already: the command answers as before, no form.
	if r := bot.command(t, "U0ALICE", chID, "resolve"); !strings.Contains(r.Text(), "already resolved") || len(fake.Views()) != 2 {
		t.Fatalf("resolve again: %q, %d views", r.Text(), len(fake.Views()))
	}
	// With text the commands run as typed.
	if r := bot.command(t, "U0ALICE", chID, "update all clear"); !strings.Contains(r.Text(), "Status update posted") {
		t.Fatalf("update with text: %q", r.Text())
	}
}
