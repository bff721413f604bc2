package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/app/apptest"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackWorld is a fake Slack workspace: alice, bob and carol, a #general
// channel they are in, and the #incidents announce channel.
type slackWorld struct {
	fake     *slacktest.Server
	general  string
	announce string
}

func newSlackWorld(t *testing.T) *slackWorld {
	t.Helper()
	fake := slacktest.NewServer(slacktest.Config{})
	t.Cleanup(fake.Close)
	for _, u := range []slacktest.User{
		{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
		{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
		{ID: "U0CAROL", Name: "carol", Email: "carol@example.com"},
	} {
		fake.AddUser(u)
	}
	return &slackWorld{
		fake:     fake,
		general:  fake.AddChannel("general", false, "U0ALICE", "U0BOB", "U0CAROL", fake.BotUserID()),
		announce: fake.AddChannel("incidents", false, "U0ALICE", fake.BotUserID()),
	}
}

// runningBot is the app serving on 127.0.0.1:0.
type runningBot struct {
	*apptest.Bot
	send *slacktest.Sender
}

func (w *slackWorld) env(dbPath string, extra map[string]string) map[string]string {
	env := map[string]string{
		"BOT_ADDR":             "127.0.0.1:0",
		"BOT_DB":               dbPath,
		"BOT_ANNOUNCE_CHANNEL": w.announce,
		"BOT_LOG_FORMAT":       "console",
		"SLACK_BOT_TOKEN":      w.fake.BotToken(),
		"SLACK_SIGNING_SECRET": signingSecret,
		"SLACK_API_URL":        w.fake.APIURL(),
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// start opens the app on dbPath and serves it until the test ends (or
// stop is called).
func (w *slackWorld) start(t *testing.T, dbPath string, extra map[string]string) *runningBot {
	t.Helper()
	env := w.env(dbPath, extra)
	cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	ab := apptest.Start(t, cfg, zaptest.NewLogger(t), app.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond}, 10*time.Second)
	b := &runningBot{Bot: ab}
	b.send = &slacktest.Sender{BaseURL: "http://" + b.Addr, Secret: signingSecret, Fake: w.fake}
	return b
}

// stop shuts the bot down as a signal would, and closes its database.
func (b *runningBot) stop(t *testing.T) { b.Stop(t) }

// waitFor checks cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (b *runningBot) command(t *testing.T, user, channel, text string) slacktest.Reply {
	t.Helper()
	r, err := b.send.Command(context.Background(), slacktest.Command{User: user, Channel: channel, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("/incident %s: HTTP %d %s", text, r.Status, r.Body)
	}
	return r
}

func (b *runningBot) timeline(t *testing.T, n int64) []incident.Event {
	t.Helper()
	_, events, err := b.App.Service().Timeline(context.Background(), incident.Ref{Number: n})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func (b *runningBot) incident(t *testing.T, n int64) *incident.Incident {
	t.Helper()
	inc, err := b.App.Service().Get(context.Background(), incident.Ref{Number: n})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// jobStore is what the tests read of the job queue (boltstore.Store).
type jobStore interface {
	NextDue() (time.Time, bool, error)
	DeadJobs() ([]incident.Job, error)
}

// idle reports whether no job is due now (timers due later, such as
// reminders, may wait).
func (b *runningBot) idle() bool {
	next, ok, err := b.App.Service().Store().(jobStore).NextDue()
	return err == nil && (!ok || next.After(time.Now()))
}

// noDeadJobs fails the test if a job failed for good.
func (b *runningBot) noDeadJobs(t *testing.T) {
	t.Helper()
	dead, err := b.App.Service().Store().(jobStore).DeadJobs()
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range dead {
		t.Errorf("job failed for good: %s %s: %s", j.Kind, j.Key, j.LastError)
	}
}

func countKind(events []incident.Event, kind incident.EventKind) int {
	n := 0
	for _, ev := range events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// botMessages are the bot's messages in a channel, in order.
func botMessages(fake *slacktest.Server, channel string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range fake.Messages(channel) {
		if m.BotID != "" {
			out = append(out, m)
		}
	}
	return out
}

// blocksText is a message's blocks as JSON without HTML escaping.
func blocksText(m slacktest.Message) string {
	var v any
	if json.Unmarshal(m.Blocks, &v) != nil {
		return ""
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.String()
}

func texts(ms []slacktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// summaries are the bot's messages with the summary's fields.
func summaries(fake *slacktest.Server, channel string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range botMessages(fake, channel) {
		if strings.Contains(blocksText(m), "*Commander*") {
			out = append(out, m)
		}
	}
	return out
}

func anyText(fake *slacktest.Server, channel, sub string) bool {
	for _, m := range fake.Messages(channel) {
		if strings.Contains(m.Text, sub) {
			return true
		}
	}
	return false
}

func TestSlackEndToEnd(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)

	// --- declare by slash command ---
	r := bot.command(t, "U0ALICE", w.general, "declare sev2 Checkout is down")
	if !strings.Contains(r.Text(), "Declared *INC-1*") || !strings.Contains(string(r.Body), `"response_type":"ephemeral"`) {
		t.Fatalf("declare reply: %s", r.Body)
	}
	var ch slacktest.Channel
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-checkout-is-down")
		ch = c
		return ok && c.Topic != "" && slices.Contains(c.Members, "U0ALICE") && len(summaries(fake, c.ID)) == 1 &&
			anyText(fake, w.announce, "<#"+c.ID+">")
	}) {
		t.Fatalf("channel, topic, invite, summary and announcement not all there: %+v, messages %q, announce %q", ch, texts(fake.Messages(ch.ID)), texts(fake.Messages(w.announce)))
	}
	if ch.Topic != "INC-1 SEV2 | Checkout is down" {
		t.Errorf("topic = %q", ch.Topic)
	}
	summaryTS := summaries(fake, ch.ID)[0].TS
	if got := bot.incident(t, 1).Chat.ChannelID; got != ch.ID {
		t.Fatalf("incident channel %s, Slack channel %s", got, ch.ID)
	}
	for _, m := range botMessages(fake, ch.ID) {
		if m.Form.Get("unfurl_links") != "false" {
			t.Errorf("message posted with unfurl_links=%q", m.Form.Get("unfurl_links"))
		}
	}

	// --- note, sev, role, update by command in the incident channel ---
	if r := bot.command(t, "U0ALICE", ch.ID, "note rolled back deploy 42 <!channel>"); !strings.Contains(r.Text(), "Note added to *INC-1*") {
		t.Fatalf("note reply: %s", r.Body)
	}
	if r := bot.command(t, "U0ALICE", ch.ID, "sev 1"); !strings.Contains(r.Text(), "SEV1") {
		t.Fatalf("sev reply: %s", r.Body)
	}
	if r := bot.command(t, "U0ALICE", ch.ID, "role comms <@U0BOB|bob>"); !strings.Contains(r.Text(), "<@U0BOB> is now the comms") {
		t.Fatalf("role reply: %s", r.Body)
	}
	if r := bot.command(t, "U0ALICE", ch.ID, "update Customers see errors; fix in progress"); !strings.Contains(r.Text(), "Status update posted") {
		t.Fatalf("update reply: %s", r.Body)
	}
	if !fake.Wait(10*time.Second, func() bool {
		c, _ := fake.ChannelByName(ch.Name)
		s := summaries(fake, ch.ID)
		return anyText(fake, ch.ID, "Note from <@U0ALICE>: rolled back deploy 42") && anyText(fake, ch.ID, "Customers see errors") &&
			slices.Contains(c.Members, "U0BOB") && strings.HasPrefix(c.Topic, "INC-1 SEV1") &&
			len(s) == 1 && strings.Contains(blocksText(s[0]), "<@U0BOB>") && strings.Contains(s[0].Text, "SEV1")
	}) {
		t.Fatalf("changes not in the channel: %q", texts(botMessages(fake, ch.ID)))
	}
	if anyText(fake, ch.ID, "<!channel>") {
		t.Fatal("a note notified the whole channel")
	}
	if s := summaries(fake, ch.ID); s[0].TS != summaryTS || s[0].Updates == 0 {
		t.Fatalf("summary not updated in place: %d summaries, ts %s updates %d (first ts %s)", len(s), s[0].TS, s[0].Updates, summaryTS)
	}
	// The status update is shared in the announcement's thread too.
	if !fake.Wait(5*time.Second, func() bool {
		for _, m := range fake.Messages(w.announce) {
			if m.ThreadTS != "" && strings.Contains(m.Text, "Customers see errors") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("status update not in the announcement thread: %q", texts(fake.Messages(w.announce)))
	}

	// --- buttons ---
	respURL := fake.NewResponseURL()
	click := fake.BlockAction("U0BOB", ch.ID, summaryTS, "incident_mitigate", "INC-1", respURL)
	if r, err := bot.send.Interaction(context.Background(), click); err != nil || r.Status != http.StatusOK {
		t.Fatalf("mitigate click: %v %+v", err, r)
	}
	if !fake.Wait(5*time.Second, func() bool { return len(fake.Responses(respURL)) == 1 }) {
		t.Fatal("no reply to the Mitigated button")
	}
	if got := fake.Responses(respURL)[0]; !strings.Contains(got.Text, "marked mitigated") || got.ResponseType != "ephemeral" {
		t.Fatalf("button reply: %+v", got)
	}
	// The same click replayed does nothing.
	if r, _ := bot.send.Interaction(context.Background(), click); r.Status != http.StatusOK {
		t.Fatalf("replayed click: %+v", r)
	}
	lead := fake.NewResponseURL()
	if r, _ := bot.send.Interaction(context.Background(), fake.BlockAction("U0BOB", ch.ID, summaryTS, "incident_lead", "INC-1", lead)); r.Status != http.StatusOK {
		t.Fatalf("lead click: %+v", r)
	}
	if !fake.Wait(5*time.Second, func() bool { return len(fake.Responses(lead)) == 1 }) {
		t.Fatal("no reply to Take commander")
	}
	if inc := bot.incident(t, 1); inc.Status != incident.StatusMitigated || inc.Commander() != "U0BOB" {
		t.Fatalf("after buttons: status %s commander %s", inc.Status, inc.Commander())
	}
	if n := countKind(bot.timeline(t, 1), incident.EventStatusChanged); n != 1 {
		t.Fatalf("%d status changes after a replayed click, want 1", n)
	}
	if len(fake.Responses(respURL)) != 1 {
		t.Fatalf("replayed click answered again: %+v", fake.Responses(respURL))
	}
	if !fake.Wait(5*time.Second, func() bool {
		s := summaries(fake, ch.ID)
		return len(s) == 1 && strings.Contains(s[0].Text, "mitigated") && !strings.Contains(blocksText(s[0]), "incident_mitigate")
	}) {
		t.Fatalf("summary does not show mitigated: %q", texts(summaries(fake, ch.ID)))
	}

	// --- resolve by command; a stale button then gets a friendly refusal ---
	if r := bot.command(t, "U0BOB", ch.ID, "resolve rolled back"); !strings.Contains(r.Text(), "resolved") {
		t.Fatalf("resolve reply: %s", r.Body)
	}
	stale := fake.NewResponseURL()
	bot.send.Interaction(context.Background(), fake.BlockAction("U0CAROL", ch.ID, summaryTS, "incident_ack", "INC-1", stale))
	if !fake.Wait(5*time.Second, func() bool { return len(fake.Responses(stale)) == 1 }) {
		t.Fatal("no reply to a stale button")
	}
	if got := fake.Responses(stale)[0].Text; !strings.Contains(got, "is resolved, so it cannot be acknowledged") {
		t.Fatalf("stale button reply: %q", got)
	}
	if !fake.Wait(5*time.Second, func() bool {
		s := summaries(fake, ch.ID)
		ann := botMessages(fake, w.announce)
		return len(s) == 1 && strings.Contains(s[0].Text, "resolved") && !strings.Contains(blocksText(s[0]), `"actions"`) &&
			len(ann) > 0 && strings.Contains(ann[0].Text, "resolved")
	}) {
		t.Fatalf("resolved not shown: summary %q announce %q", texts(summaries(fake, ch.ID)), texts(botMessages(fake, w.announce)))
	}

	// --- pushpin: once, however often pinned or retried ---
	carolTS := fake.UserPost(ch.ID, "U0CAROL", "the error rate dropped at 10:42")
	msgTime := slackTS(t, carolTS)
	ev := fake.ReactionAdded("Ev0PIN1", "U0ALICE", "pushpin", ch.ID, carolTS)
	for retry := range 3 { // the delivery and two retries (X-Slack-Retry-Num)
		if r, err := bot.send.Event(context.Background(), ev, retry); err != nil || r.Status != http.StatusOK {
			t.Fatalf("reaction event (retry %d): %v %+v", retry, err, r)
		}
	}
	bot.send.Event(context.Background(), fake.ReactionAdded("Ev0PIN2", "U0BOB", "pushpin", ch.ID, carolTS), 0) // re-pinned by bob
	bot.send.Event(context.Background(), fake.PinAdded("Ev0PIN3", "U0BOB", ch.ID, carolTS), 0)                 // pinned for real
	bot.send.Event(context.Background(), fake.ReactionAdded("Ev0THUMB", "U0BOB", "thumbsup", ch.ID, carolTS), 0)
	bot.send.Event(context.Background(), fake.MemberJoined("Ev0JOIN", "U0CAROL", ch.ID), 0)
	waitFor(t, 10*time.Second, "the events to be processed", func() bool {
		return countKind(bot.timeline(t, 1), incident.EventMemberJoined) == 1 && countKind(bot.timeline(t, 1), incident.EventMessagePinned) == 1 && bot.idle()
	})
	events := bot.timeline(t, 1)
	if n := countKind(events, incident.EventMessagePinned); n != 1 {
		t.Fatalf("%d pinned events, want 1", n)
	}
	for _, e := range events {
		if e.Kind == incident.EventMessagePinned {
			if !e.At.Equal(msgTime) || e.Actor.ID != "U0CAROL" || e.Data["author"] != "U0CAROL" || e.Data["ts"] != carolTS || e.Data["channel"] != ch.ID || e.Text != "the error rate dropped at 10:42" {
				t.Errorf("pinned event = %+v (message time %s)", e, msgTime)
			}
		}
	}
	if !fake.Wait(5*time.Second, func() bool { return anyText(fake, ch.ID, "Pinned to the timeline: message from <@U0CAROL>") }) {
		t.Error("the pinned message was not told in the channel")
	}
	if calls := len(fake.Calls("conversations.history")); calls > 2 {
		t.Errorf("%d conversations.history calls for one pinned message", calls)
	}

	// --- forged and stale requests: 401, no effect ---
	before := len(fake.Channels())
	forged := &slacktest.Sender{BaseURL: bot.send.BaseURL, Secret: "not-the-secret", Fake: fake}
	staleSender := &slacktest.Sender{BaseURL: bot.send.BaseURL, Secret: signingSecret, Fake: fake, Now: func() time.Time { return time.Now().Add(-6 * time.Minute) }}
	future := &slacktest.Sender{BaseURL: bot.send.BaseURL, Secret: signingSecret, Fake: fake, Now: func() time.Time { return time.Now().Add(6 * time.Minute) }}
	unsigned := &slacktest.Sender{BaseURL: bot.send.BaseURL, Fake: fake}
	for name, s := range map[string]*slacktest.Sender{"forged": forged, "stale": staleSender, "future": future, "unsigned": unsigned} {
		r, _ := s.Command(context.Background(), slacktest.Command{User: "U0ALICE", Channel: w.general, Text: "declare sev1 forged incident"})
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s command: HTTP %d, want 401", name, r.Status)
		}
		r, _ = s.Event(context.Background(), fake.ReactionAdded("Ev0FORGED"+name, "U0ALICE", "pushpin", ch.ID, fake.UserPost(ch.ID, "U0ALICE", "forged pin")), 0)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s event: HTTP %d, want 401", name, r.Status)
		}
		r, _ = s.Interaction(context.Background(), fake.BlockAction("U0ALICE", ch.ID, summaryTS, "incident_mitigate", "INC-1", fake.NewResponseURL()))
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s interaction: HTTP %d, want 401", name, r.Status)
		}
	}
	incs, _ := bot.App.Service().List(context.Background(), incident.Filter{})
	if len(incs) != 1 || len(fake.Channels()) != before || countKind(bot.timeline(t, 1), incident.EventMessagePinned) != 1 {
		t.Fatalf("forged requests had an effect: %d incidents, %d channels", len(incs), len(fake.Channels()))
	}

	// --- the declare form ---
	r = bot.command(t, "U0ALICE", w.general, "declare")
	if len(r.Body) != 0 {
		t.Fatalf("declare without a title answered %q, want an empty ack (the form opens)", r.Body)
	}
	views := fake.Views()
	if len(views) != 1 {
		t.Fatalf("views opened: %+v", views)
	}
	bad := fake.ViewSubmission("U0ALICE", views[0], map[string]string{"title": "   ", "description": "x"}, map[string]string{"severity": "sev9"})
	r, _ = bot.send.Interaction(context.Background(), bad)
	var errs struct {
		Action string            `json:"response_action"`
		Errors map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &errs); err != nil || errs.Action != "errors" || errs.Errors["title"] == "" || errs.Errors["severity"] == "" {
		t.Fatalf("invalid form answered %d %s", r.Status, r.Body)
	}
	good := fake.ViewSubmission("U0ALICE", views[0], map[string]string{"title": "Payments degraded", "description": "Card payments time out"}, map[string]string{"severity": "sev2"})
	for range 2 { // a double submit
		r, _ = bot.send.Interaction(context.Background(), good)
		if r.Status != http.StatusOK || len(r.Body) != 0 {
			t.Fatalf("good form answered %d %s", r.Status, r.Body)
		}
	}
	incs, _ = bot.App.Service().List(context.Background(), incident.Filter{})
	if len(incs) != 2 || incs[1].Title != "Payments degraded" || incs[1].Severity != incident.SEV2 || incs[1].Description != "Card payments time out" {
		t.Fatalf("after the form: %d incidents %+v", len(incs), incs)
	}
	if !fake.Wait(10*time.Second, func() bool {
		_, ok := fake.ChannelByName("inc-2-payments-degraded")
		eph := fake.Ephemerals()
		return ok && len(eph) > 0 && eph[len(eph)-1].User == "U0ALICE" && strings.Contains(eph[len(eph)-1].Text, "INC-2")
	}) {
		t.Fatalf("form incident: channel or confirmation missing; ephemerals %+v", fake.Ephemerals())
	}

	// --- odds and ends of the Events API ---
	r, _ = bot.send.Event(context.Background(), slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), 0)
	if r.Status != http.StatusOK || string(r.Body) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification: %d %q", r.Status, r.Body)
	}
	r, _ = bot.send.Event(context.Background(), fake.EventCallback("Ev0UNKNOWN", map[string]any{"type": "app_home_opened", "user": "U0ALICE"}), 0)
	if r.Status != http.StatusOK {
		t.Errorf("unknown event: %d", r.Status)
	}
	r, _ = bot.send.Post(context.Background(), "/slack/events", "application/json", []byte(`{"type":"event_callback","event_id":`), nil)
	if r.Status != http.StatusBadRequest {
		t.Errorf("malformed event: %d", r.Status)
	}
	if n := len(fake.Channels()); n != 4 {
		t.Errorf("%d channels, want 4 (general, incidents, two incidents)", n)
	}
	bot.noDeadJobs(t)
}

func slackTS(t *testing.T, ts string) time.Time {
	t.Helper()
	sec, frac, _ := strings.Cut(ts, ".")
	tm, err := time.Parse("2006-01-02", "1970-01-01")
	if err != nil {
		t.Fatal(err)
	}
	var s, us int64
	for _, c := range sec {
		s = s*10 + int64(c-'0')
	}
	for _, c := range frac {
		us = us*10 + int64(c-'0')
	}
	return tm.Add(time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond)
}

// notesInOrder checks that each note appears exactly once across the bot's
// messages in the channel, in order.
func notesInOrder(fake *slacktest.Server, channel string, notes []string) error {
	var all strings.Builder
	for _, m := range botMessages(fake, channel) {
		all.WriteString(m.Text)
		all.WriteByte('\n')
	}
	text := all.String()
	last := -1
	for _, n := range notes {
		if c := strings.Count(text, n+"\n"); c != 1 {
			return errors.New(n + " told " + string(rune('0'+c)) + " times")
		}
		i := strings.Index(text, n+"\n")
		if i < last {
			return errors.New(n + " out of order")
		}
		last = i
	}
	return nil
}

func TestSlackOutageAndRestartLoseNothing(t *testing.T) {
	w := newSlackWorld(t)
	fake := w.fake
	db := filepath.Join(t.TempDir(), "bot.db")
	bot := w.start(t, db, nil)

	bot.command(t, "U0ALICE", w.general, "declare sev2 Search is slow")
	var chID string
	if !fake.Wait(10*time.Second, func() bool {
		c, ok := fake.ChannelByName("inc-1-search-is-slow")
		chID = c.ID
		return ok && len(summaries(fake, c.ID)) == 1 && len(botMessages(fake, w.announce)) == 1
	}) {
		t.Fatal("incident channel not set up")
	}
	notes := []string{"note-01", "note-02", "note-03", "note-04", "note-05", "note-06", "note-07"}
	bot.command(t, "U0ALICE", chID, "note "+notes[0])
	if !fake.Wait(10*time.Second, func() bool { return anyText(fake, chID, notes[0]) }) {
		t.Fatal("first note not told")
	}

	// Slack goes down (rate limits, then 5xx) while notes keep coming.
	fake.FailNext("chat.postMessage", 2, slacktest.RateLimited(1))
	fake.FailNext("chat.update", 1, slacktest.RateLimited(1))
	fake.FailNext("chat.postMessage", 1000, slacktest.ServerError())
	fake.FailNext("chat.update", 1000, slacktest.ServerError())
	for _, n := range notes[1:4] {
		bot.command(t, "U0ALICE", chID, "note "+n)
	}
	if !fake.Wait(10*time.Second, func() bool {
		failed := 0
		for _, c := range fake.Calls("") {
			if c.Status == http.StatusInternalServerError {
				failed++
			}
		}
		return failed >= 2
	}) {
		t.Fatal("the bot did not try to post during the outage")
	}
	// The bot restarts mid-outage.
	bot.stop(t)
	fake.ClearFaults()
	fake.FailNext("chat.postMessage", 1, slacktest.RateLimited(1))
	fake.FailNext("chat.postMessage", 2, slacktest.ServerError())
	fake.FailNext("chat.update", 1, slacktest.ServerError())

	bot = w.start(t, db, nil)
	for _, n := range notes[4:] {
		bot.command(t, "U0ALICE", chID, "note "+n)
	}
	if !fake.Wait(30*time.Second, func() bool { return notesInOrder(fake, chID, notes) == nil }) {
		var texts []string
		for _, m := range botMessages(fake, chID) {
			texts = append(texts, m.Text)
		}
		t.Fatalf("notes after the outage and restart: %v\n%q", notesInOrder(fake, chID, notes), texts)
	}
	waitFor(t, 10*time.Second, "the queue to drain", bot.idle)
	if err := notesInOrder(fake, chID, notes); err != nil {
		t.Fatal(err)
	}
	if n := len(summaries(fake, chID)); n != 1 {
		t.Errorf("%d summary messages, want 1", n)
	}
	if n := len(botMessages(fake, w.announce)); n != 1 {
		t.Errorf("%d announcements, want 1", n)
	}
	if n := len(fake.Channels()); n != 3 {
		t.Errorf("%d channels, want 3", n)
	}
	bot.noDeadJobs(t)
}
