package app_test

import (
	"context"
	"io"
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
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/pagerduty"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

const (
	pdSigningSecret = "0123456789abcdef0123456789abcdef"
	pdToken         = "u+e2e-token"
	pdWebhookSecret = "whsec-e2e"
	pdFrom          = "incident-bot@example.com"
)

var pdStart = time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC)

// pdWorld is a fake Slack workspace and a fake PagerDuty account whose
// users share emails: alice is on call for Checkout (level 1), bob is
// level 2, dave level 3; carol is only in Slack.
type pdWorld struct {
	slack   *slacktest.Server
	pd      *pdtest.Server
	clock   *incidenttest.Clock
	general string
}

func newPDWorld(t testing.TB) *pdWorld {
	t.Helper()
	w := &pdWorld{clock: incidenttest.NewClock(pdStart)}
	w.slack = slacktest.NewServer(slacktest.Config{})
	t.Cleanup(w.slack.Close)
	for _, u := range []slacktest.User{
		{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
		{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
		{ID: "U0CAROL", Name: "carol", Email: "carol@example.com"},
		{ID: "U0DAVE", Name: "dave", Email: "dave@example.com"},
	} {
		w.slack.AddUser(u)
	}
	w.general = w.slack.AddChannel("general", false, "U0ALICE", "U0BOB", "U0CAROL", w.slack.BotUserID())
	w.pd = pdtest.New(t, pdtest.Config{
		Token: pdToken,
		Users: []pdtest.User{
			{ID: "PBOT001", Name: "Incident Bot", Email: pdFrom},
			{ID: "PALICE1", Name: "Alice Oncall", Email: "alice@example.com"},
			{ID: "PBOB001", Name: "Bob Secondary", Email: "bob@example.com"},
			{ID: "PDAVE01", Name: "Dave Manager", Email: "dave@example.com"},
		},
		Services: []pdtest.Service{{ID: "PSVC001", Name: "Checkout API", EscalationPolicyID: "PEP0001"}},
		Policies: []pdtest.Policy{{ID: "PEP0001", Name: "Checkout On-call", Levels: [][]string{{"PALICE1"}, {"PBOB001"}, {"PDAVE01"}}}},
		Now:      w.clock.Now,
	})
	return w
}

func (w *pdWorld) config(t testing.TB, dbPath string, extra map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"BOT_ADDR":                 "127.0.0.1:0",
		"BOT_DB":                   dbPath,
		"BOT_LOG_FORMAT":           "console",
		"SLACK_BOT_TOKEN":          w.slack.BotToken(),
		"SLACK_SIGNING_SECRET":     pdSigningSecret,
		"SLACK_API_URL":            w.slack.APIURL(),
		"PAGERDUTY_API_TOKEN":      pdToken,
		"PAGERDUTY_FROM_EMAIL":     pdFrom,
		"PAGERDUTY_WEBHOOK_SECRET": pdWebhookSecret,
		"PAGERDUTY_API_URL":        w.pd.URL + "/",
		"PAGERDUTY_EVENTS_URL":     w.pd.URL,
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pdBot is the app serving on 127.0.0.1:0.
type pdBot struct {
	*apptest.Bot
	hooks *pdtest.Sender
	slack *slacktest.Sender
}

func (w *pdWorld) start(t *testing.T, dbPath string, extra map[string]string) *pdBot {
	t.Helper()
	ab := apptest.Start(t, w.config(t, dbPath, extra), zaptest.NewLogger(t), app.Options{
		Clock: w.clock, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond,
	}, 10*time.Second)
	b := &pdBot{Bot: ab}
	b.hooks = &pdtest.Sender{URL: "http://" + b.Addr + "/webhooks/pagerduty", Secrets: []string{pdWebhookSecret}}
	b.slack = &slacktest.Sender{BaseURL: "http://" + b.Addr, Secret: pdSigningSecret, Fake: w.slack, Now: w.clock.Now}
	return b
}

func (b *pdBot) stop(t *testing.T) { b.Stop(t) }

// deliver sends the fake PagerDuty's pending webhook events to the bot, in
// order, and checks each is accepted.
func (b *pdBot) deliver(t testing.TB, w *pdWorld) []pdtest.Event {
	t.Helper()
	evs := w.pd.TakeEvents()
	for _, ev := range evs {
		if code, err := b.hooks.DeliverEvent(context.Background(), ev); err != nil || code != http.StatusAccepted {
			t.Fatalf("delivering %s: %d %v", ev.Type, code, err)
		}
	}
	return evs
}

func (b *pdBot) command(t *testing.T, user, channel, text string) string {
	t.Helper()
	name := strings.ToLower(strings.TrimPrefix(user, "U0"))
	r, err := b.slack.Command(context.Background(), slacktest.Command{User: user, UserName: name, Channel: channel, Text: text})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("/incident %s: %v %d %s", text, err, r.Status, r.Body)
	}
	return r.Text()
}

func (b *pdBot) incidents(t *testing.T) []*incident.Incident {
	t.Helper()
	list, err := b.App.Service().List(context.Background(), incident.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (b *pdBot) timeline(t *testing.T, n int64) []incident.Event {
	t.Helper()
	_, events, err := b.App.Service().Timeline(context.Background(), incident.Ref{Number: n})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// settled reports whether no job but future timers waits: every webhook,
// pager call and chat sync has run.
func (b *pdBot) settled(now time.Time) bool {
	store, ok := b.App.Service().Store().(*boltstore.Store)
	if !ok {
		return false
	}
	jobs, err := store.DueJobs(now, 100, nil)
	return err == nil && len(jobs) == 0
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func ofKind(events []incident.Event, kind incident.EventKind) []incident.Event {
	var out []incident.Event
	for _, ev := range events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func slackSaid(s *slacktest.Server, channel, sub string) bool {
	for _, m := range s.Messages(channel) {
		if strings.Contains(m.Text, sub) || strings.Contains(string(m.Blocks), sub) {
			return true
		}
	}
	return false
}

func TestPagerDutyEndToEnd(t *testing.T) {
	w := newPDWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), map[string]string{"PAGERDUTY_MIRROR_NOTES": "true"})

	// --- PagerDuty triggers: a channel, the on-call invited, the link ---
	pdInc := w.pd.Trigger("PSVC001", "Checkout 500s")
	bot.deliver(t, w)
	var ch slacktest.Channel
	waitUntil(t, "the incident channel with the on-call invited and the PagerDuty bookmark", func() bool {
		c, ok := w.slack.ChannelByName("inc-1-checkout-500s")
		ch = c
		return ok && slices.Contains(c.Members, "U0ALICE") && len(w.slack.Bookmarks(c.ID)) == 1
	})
	if bm := w.slack.Bookmarks(ch.ID)[0]; bm.Link != pdtest.IncidentURL(pdInc.ID) || !strings.Contains(bm.Title, "#1") {
		t.Errorf("bookmark: %+v", bm)
	}
	inc := bot.incidents(t)[0]
	if inc.Status != incident.StatusTriggered || inc.Severity != incident.SEV2 || inc.Pager.IncidentID != pdInc.ID || inc.Source != incident.SourcePagerDuty {
		t.Fatalf("incident: %+v", inc)
	}
	waitUntil(t, "the summary", func() bool { return slackSaid(w.slack, ch.ID, "Checkout 500s") })

	// --- a note in Slack is copied to PagerDuty, and its echo ignored ---
	if r := bot.command(t, "U0CAROL", ch.ID, "note rolled back deploy 42"); !strings.Contains(r, "Note added") {
		t.Fatalf("note reply: %s", r)
	}
	waitUntil(t, "the note in PagerDuty", func() bool {
		got, _ := w.pd.Incident(pdInc.ID)
		return len(got.Notes) == 1
	})
	if got, _ := w.pd.Incident(pdInc.ID); !strings.HasPrefix(got.Notes[0], "rolled back deploy 42 (carol") {
		t.Errorf("PagerDuty note: %q", got.Notes[0])
	}
	bot.deliver(t, w)

	// --- escalate from Slack: level 2 in PagerDuty, bob invited ---
	if r := bot.command(t, "U0CAROL", ch.ID, "escalate"); !strings.Contains(r, "level 2") {
		t.Fatalf("escalate reply: %s", r)
	}
	waitUntil(t, "the escalation in PagerDuty", func() bool {
		got, _ := w.pd.Incident(pdInc.ID)
		return got.Level == 2
	})
	bot.deliver(t, w) // incident.escalated: now assigned to bob
	waitUntil(t, "bob invited after the escalation", func() bool {
		c, _ := w.slack.ChannelByName(ch.Name)
		return slices.Contains(c.Members, "U0BOB")
	})
	waitUntil(t, "the escalation told in the channel", func() bool { return slackSaid(w.slack, ch.ID, "escalated") })

	// --- bob acknowledges in Slack: PagerDuty follows, no echo loop ---
	bot.command(t, "U0BOB", ch.ID, "ack")
	waitUntil(t, "the acknowledgement in PagerDuty", func() bool {
		got, _ := w.pd.Incident(pdInc.ID)
		return got.Status == "acknowledged"
	})
	bot.deliver(t, w)

	// --- resolve in Slack ---
	bot.command(t, "U0BOB", ch.ID, "resolve rolled back")
	waitUntil(t, "the resolution in PagerDuty", func() bool {
		got, _ := w.pd.Incident(pdInc.ID)
		return got.Status == "resolved"
	})
	bot.deliver(t, w)
	waitUntil(t, "everything told", func() bool { return bot.settled(w.clock.Now()) })

	got := bot.incidents(t)
	if len(got) != 1 || got[0].Status != incident.StatusResolved || got[0].AcknowledgedBy.ID != "U0BOB" {
		t.Fatalf("incidents: %+v", got)
	}
	events := bot.timeline(t, got[0].Number)
	if n := len(ofKind(events, incident.EventNote)); n != 1 {
		t.Errorf("%d notes, want 1 (the echo was recorded as a note)", n)
	}
	if esc := ofKind(events, incident.EventEscalated); len(esc) != 1 || esc[0].Actor.ID != "U0CAROL" {
		t.Errorf("escalations: %+v", esc)
	}
	for _, ev := range ofKind(events, incident.EventStatusChanged) {
		if ev.Actor.Source != incident.SourceSlack {
			t.Errorf("status changed by %+v: an echo moved the incident", ev.Actor)
		}
	}
	// Each change went to PagerDuty exactly once.
	var puts []string
	for _, c := range w.pd.CallsTo("PUT /incidents") {
		puts = append(puts, string(c.Body))
	}
	if len(puts) != 3 || !strings.Contains(puts[0], `"escalation_level":2`) || !strings.Contains(puts[1], `"acknowledged"`) || !strings.Contains(puts[2], `"resolved"`) {
		t.Errorf("PUT /incidents calls: %v", puts)
	}
	if n := len(w.pd.CallsTo("POST /incidents/{id}/notes")); n != 1 {
		t.Errorf("%d notes sent", n)
	}
	var channels int
	for _, c := range w.slack.Channels() {
		if strings.HasPrefix(c.Name, "inc-") {
			channels++
		}
	}
	if channels != 1 {
		t.Errorf("%d incident channels", channels)
	}
}

func TestPagerDutyDuplicatesRetriggersAndOutOfOrderYieldOneIncidentEach(t *testing.T) {
	w := newPDWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	ctx := context.Background()

	a := w.pd.Trigger("PSVC001", "Checkout 500s")
	trigA := w.pd.TakeEvents()[0]
	for _, id := range []string{"wh-1", "wh-1", "wh-2"} { // a retry, then a re-send
		if _, err := bot.hooks.Deliver(ctx, trigA.Body(), id); err != nil {
			t.Fatal(err)
		}
	}
	retrig := trigA
	retrig.ID = "EV-retrigger"
	bot.hooks.DeliverEvent(ctx, retrig)

	b := w.pd.Trigger("PSVC001", "Cart empty")
	w.pd.Acknowledge(b.ID, "PALICE1")
	evs := w.pd.TakeEvents()
	if len(evs) != 2 {
		t.Fatalf("fake events: %+v", evs)
	}
	for _, ev := range []pdtest.Event{evs[1], evs[0], evs[1]} { // ack before trigger, ack again
		if _, err := bot.hooks.DeliverEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "both incidents with their channels", func() bool {
		list := bot.incidents(t)
		return len(list) == 2 && list[0].Chat.ChannelID != "" && list[1].Chat.ChannelID != "" && bot.settled(w.clock.Now())
	})
	list := bot.incidents(t)
	if len(list) != 2 || list[0].Pager.IncidentID != a.ID || list[1].Pager.IncidentID != b.ID {
		t.Fatalf("incidents: %+v", list)
	}
	if list[1].Status != incident.StatusAcknowledged || list[1].AcknowledgedBy.Name != "Alice Oncall" {
		t.Errorf("out-of-order incident: %s by %+v", list[1].Status, list[1].AcknowledgedBy)
	}
	for _, inc := range list {
		if n := len(ofKind(bot.timeline(t, inc.Number), incident.EventDeclared)); n != 1 {
			t.Errorf("%s declared %d times", inc.ID(), n)
		}
	}
	var channels int
	for _, c := range w.slack.Channels() {
		if strings.HasPrefix(c.Name, "inc-") {
			channels++
		}
	}
	if channels != 2 || len(w.slack.Calls("conversations.create")) != 2 {
		t.Fatalf("%d incident channels, %d creations; want 2", channels, len(w.slack.Calls("conversations.create")))
	}
}

func TestPagerDutyForgedUnsignedAndMalformedChangeNothing(t *testing.T) {
	w := newPDWorld(t)
	bot := w.start(t, filepath.Join(t.TempDir(), "bot.db"), nil)
	ctx := context.Background()
	w.pd.Trigger("PSVC001", "Checkout 500s")
	body := w.pd.TakeEvents()[0].Body()
	forged := &pdtest.Sender{URL: bot.hooks.URL, Secrets: []string{"guessed"}}
	unsigned := &pdtest.Sender{URL: bot.hooks.URL}
	for name, tc := range map[string]struct {
		s    *pdtest.Sender
		body []byte
		want int
	}{
		"forged":    {forged, body, http.StatusUnauthorized},
		"unsigned":  {unsigned, body, http.StatusUnauthorized},
		"malformed": {bot.hooks, []byte(`{"event":{"id":"x","event_type":"incident.triggered","data":`), http.StatusBadRequest},
		"no id":     {bot.hooks, []byte(`{"event":{"event_type":"incident.triggered","data":{"id":"P1","type":"incident"}}}`), http.StatusBadRequest},
		"oversize":  {bot.hooks, append(append([]byte(`{"pad":"`), make([]byte, pagerduty.MaxBody)...), `"}`...), http.StatusRequestEntityTooLarge},
	} {
		if code, err := tc.s.Deliver(ctx, tc.body, "wh-"+name); err != nil || code != tc.want {
			t.Errorf("%s: %d %v, want %d", name, code, err, tc.want)
		}
	}
	resp, err := http.Get("http://" + bot.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`incidentbot_webhooks_received_total{outcome="bad_signature",source="pagerduty"} 2`,
		`incidentbot_webhooks_received_total{outcome="malformed",source="pagerduty"} 2`,
		`incidentbot_webhooks_received_total{outcome="too_large",source="pagerduty"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !bot.settled(w.clock.Now()) || len(bot.incidents(t)) != 0 || len(w.slack.Calls("conversations.create")) != 0 {
		t.Fatal("a rejected delivery changed something")
	}
	// The genuine delivery still goes through.
	if code, _ := bot.hooks.Deliver(ctx, body, "wh-forged"); code != http.StatusAccepted {
		t.Fatalf("genuine delivery: %d", code)
	}
	waitUntil(t, "the genuine incident", func() bool { return len(bot.incidents(t)) == 1 })
}

func TestPagerDutyAckTimeoutEscalatesOnceAcrossARestart(t *testing.T) {
	w := newPDWorld(t)
	db := filepath.Join(t.TempDir(), "bot.db")
	bot := w.start(t, db, nil)
	pdInc := w.pd.Trigger("PSVC001", "Checkout 500s") // high urgency, no priority: SEV2, 10 minutes
	bot.deliver(t, w)
	waitUntil(t, "the incident", func() bool { return len(bot.incidents(t)) == 1 && bot.settled(w.clock.Now()) })
	escalations := w.escalations

	w.clock.Set(pdStart.Add(10 * time.Minute))
	waitUntil(t, "the first automatic escalation", func() bool { return escalations() == 1 && bot.settled(w.clock.Now()) })
	if got, _ := w.pd.Incident(pdInc.ID); got.Level != 2 {
		t.Fatalf("PagerDuty level %d", got.Level)
	}
	bot.stop(t)

	// Down for an hour: at boot the overdue timer fires once, not six times.
	w.clock.Set(pdStart.Add(70 * time.Minute))
	bot = w.start(t, db, nil)
	waitUntil(t, "the escalation at boot", func() bool { return escalations() == 2 && bot.settled(w.clock.Now()) })
	if got, _ := w.pd.Incident(pdInc.ID); got.Level != 3 {
		t.Fatalf("PagerDuty level %d", got.Level)
	}
	bot.deliver(t, w)
	ch := bot.incidents(t)[0].Chat.ChannelID
	waitUntil(t, "the escalations told in the channel", func() bool {
		return slackSaid(w.slack, ch, "still unacknowledged after 10m") && slackSaid(w.slack, ch, "still unacknowledged after 1h10m")
	})

	// Acknowledged in Slack: no more escalations, however long it waits.
	bot.command(t, "U0DAVE", ch, "ack")
	waitUntil(t, "the acknowledgement", func() bool { return bot.settled(w.clock.Now()) })
	w.clock.Set(pdStart.Add(5 * time.Hour))
	waitUntil(t, "the cancelled timer", func() bool { return bot.settled(w.clock.Now()) })
	if n := escalations(); n != 2 {
		t.Fatalf("%d escalations, want 2", n)
	}
	if esc := ofKind(bot.timeline(t, 1), incident.EventEscalated); len(esc) != 2 {
		t.Fatalf("%d escalation events", len(esc))
	}
}
