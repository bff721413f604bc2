package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

const secret = "test-signing-secret"

// gatedStore holds every write until the gate opens: a store (or disk)
// that is slow at the moment.
type gatedStore struct {
	incident.Store
	mu   sync.Mutex
	gate chan struct{}
	fail error // every write fails with it (a full disk)
}

func (g *gatedStore) failWrites(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = err
}

func (g *gatedStore) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedStore) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedStore) Update(ctx context.Context, fn func(incident.Tx) error) error {
	g.mu.Lock()
	gate, fail := g.gate, g.fail
	g.mu.Unlock()
	if fail != nil {
		return fail
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Store.Update(ctx, fn)
}

type handlerEnv struct {
	fake    *slacktest.Server
	client  *slack.Client
	bolt    *boltstore.Store
	store   *gatedStore
	svc     *incident.Service
	handler *slack.Handler
	server  *httptest.Server
	send    *slacktest.Sender
	reg     *prometheus.Registry
	channel string // the incident channel of INC-1
}

func newHandlerEnv(t testing.TB, cfg slack.HandlerConfig, dispatch ...func(*command.Config)) *handlerEnv {
	t.Helper()
	fake := slacktest.NewServer(slacktest.Config{})
	t.Cleanup(fake.Close)
	fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice"})
	bolt := openStore(t)
	store := &gatedStore{Store: bolt}
	svc := incident.NewService(incident.ServiceConfig{Store: store})
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: cfg.Logger, Rates: fastRates()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Client, cfg.Service, cfg.SigningSecret, cfg.Registerer = client, svc, secret, reg
	dc := command.Config{Service: svc}
	for _, f := range dispatch {
		f(&dc)
	}
	cfg.Dispatcher = command.NewDispatcher(dc)
	h, err := slack.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /slack/commands", h.Commands())
	mux.Handle("POST /slack/interactions", h.Interactions())
	mux.Handle("POST /slack/events", h.Events())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Close(ctx)
	})
	ctx := context.Background()
	inc, err := svc.Declare(ctx, incident.Declaration{Title: "db down", By: incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}})
	if err != nil {
		t.Fatal(err)
	}
	sync := &incident.ChatSync{Store: store, Chat: client, Clock: incident.SystemClock}
	if err := sync.Sync(ctx, inc.Number); err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, incident.Ref{Number: inc.Number})
	return &handlerEnv{fake: fake, client: client, bolt: bolt, store: store, svc: svc, handler: h, server: srv, reg: reg, channel: got.Chat.ChannelID,
		send: &slacktest.Sender{BaseURL: srv.URL, Secret: secret, Fake: fake}}
}

func TestSlowCommandIsAcknowledgedThenAnswered(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{AckTimeout: 50 * time.Millisecond})
	env.store.close() // the store is stuck for now
	resp := env.fake.NewResponseURL()
	r, err := env.send.Command(context.Background(), slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "note slow disk", ResponseURL: resp})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK || r.Text() != slack.WorkingText || !strings.Contains(string(r.Body), `"ephemeral"`) {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	if len(env.fake.Responses(resp)) != 0 {
		t.Fatal("answered before the command finished")
	}
	env.store.open()
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(resp)) == 1 }) {
		t.Fatal("the late reply never came")
	}
	if got := env.fake.Responses(resp)[0]; !strings.Contains(got.Text, "Note added to *INC-1*") || got.ResponseType != "ephemeral" {
		t.Fatalf("late reply: %+v", got)
	}
	_, events, _ := env.svc.Timeline(context.Background(), incident.Ref{Number: 1})
	if countKind(events, incident.EventNote) != 1 {
		t.Fatal("the note was not recorded exactly once")
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

func TestCloseCancelsStuckWork(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{AckTimeout: 20 * time.Millisecond})
	env.store.close()
	defer env.store.open()
	r, _ := env.send.Command(context.Background(), slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "note stuck"})
	if r.Text() != slack.WorkingText {
		t.Fatalf("ack: %s", r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = env.handler.Close(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: background work was not cancelled and joined")
	}
	// After Close nothing new starts.
	r, _ = env.send.Command(context.Background(), slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "status"})
	if !strings.Contains(r.Text(), "restarting") {
		t.Fatalf("command after Close: %s", r.Body)
	}
}

func TestOversizedAndMalformedRequests(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{MaxBody: 2048})
	ctx := context.Background()
	big := strings.Repeat("a", 4096)
	r, _ := env.send.Command(ctx, slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "note " + big})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized command: %d", r.Status)
	}
	r, _ = env.send.Post(ctx, "/slack/interactions", "application/x-www-form-urlencoded", []byte("payload=%7Bnot+json"), nil)
	if r.Status != http.StatusBadRequest {
		t.Errorf("malformed interaction: %d", r.Status)
	}
	r, _ = env.send.Post(ctx, "/slack/commands", "application/x-www-form-urlencoded", []byte("text=help"), nil)
	if r.Status != http.StatusBadRequest {
		t.Errorf("command without a user: %d", r.Status)
	}
	_, events, _ := env.svc.Timeline(ctx, incident.Ref{Number: 1})
	if countKind(events, incident.EventNote) != 0 {
		t.Fatal("an oversized request had an effect")
	}
	if got := counter(t, env.reg, "incidentbot_slack_requests_total", map[string]string{"kind": "command", "outcome": "too_large"}); got != 1 {
		t.Errorf("too_large counter = %v", got)
	}
	if got := counter(t, env.reg, "incidentbot_slack_requests_total", map[string]string{"kind": "interaction", "outcome": "malformed"}); got != 1 {
		t.Errorf("malformed counter = %v", got)
	}
	forged := &slacktest.Sender{BaseURL: env.server.URL, Secret: "wrong", Fake: env.fake}
	forged.Command(ctx, slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "resolve"})
	if got := counter(t, env.reg, "incidentbot_slack_requests_total", map[string]string{"kind": "command", "outcome": "bad_signature"}); got != 1 {
		t.Errorf("bad_signature counter = %v", got)
	}
}

func TestEventsInOtherChannelsAreIgnoredWithoutStoring(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{PinReaction: ":round_pushpin:"})
	ctx := context.Background()
	other := env.fake.AddChannel("random", false, env.fake.BotUserID(), "U0ALICE")
	ts := env.fake.UserPost(other, "U0ALICE", "hello")
	pending := func() int {
		n := -1
		_ = env.store.View(ctx, func(tx incident.Tx) error { n, _ = tx.PendingJobs(); return nil })
		return n
	}
	before := pending()
	for i, ev := range []map[string]any{
		env.fake.ReactionAdded("Ev1", "U0ALICE", "round_pushpin", other, ts),                                             // not an incident channel
		env.fake.ReactionAdded("Ev2", "U0ALICE", "pushpin", env.channel, env.fake.UserPost(env.channel, "U0ALICE", "x")), // not the configured reaction
		env.fake.ReactionAdded("Ev3", env.fake.BotUserID(), "round_pushpin", env.channel, ts),                            // the bot's own reaction
		env.fake.MemberJoined("Ev4", env.fake.BotUserID(), env.channel),                                                  // the bot joining
	} {
		if r, _ := env.send.Event(ctx, ev, 0); r.Status != http.StatusOK {
			t.Fatalf("event %d: %d", i, r.Status)
		}
	}
	if n := pending() - before; n != 0 {
		t.Fatalf("%d jobs queued for events the bot ignores", n)
	}
	// The configured reaction in the incident channel is taken.
	mine := env.fake.UserPost(env.channel, "U0ALICE", "important")
	if r, _ := env.send.Event(ctx, env.fake.ReactionAdded("Ev5", "U0ALICE", "round_pushpin::skin-tone-2", env.channel, mine), 0); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	if n := pending() - before; n != 1 {
		t.Fatalf("%d jobs queued for a pin, want 1", n)
	}
}

func TestBotMessagesAreNotPinned(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	client, _ := slack.NewClient(slack.ClientConfig{Token: env.fake.BotToken(), APIURL: env.fake.APIURL(), Rates: fastRates()})
	jobs := &slack.Jobs{Client: client, Service: env.svc, Logger: zaptest.NewLogger(t)}
	botMsgs := env.fake.Messages(env.channel) // the summary, posted by the bot
	payload := []byte(`{"incident":1,"channel":"` + env.channel + `","ts":"` + botMsgs[0].TS + `","event_id":"Ev9"}`)
	if err := jobs.CaptureMessage(ctx, incident.Job{Kind: slack.JobCaptureMessage, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	_, events, _ := env.svc.Timeline(ctx, incident.Ref{Number: 1})
	if countKind(events, incident.EventMessagePinned) != 0 {
		t.Fatal("the bot's own message was pinned to the timeline")
	}
	// A deleted message is nothing to record, not a failure.
	payload = []byte(`{"incident":1,"channel":"` + env.channel + `","ts":"1.000001","event_id":"Ev10"}`)
	if err := jobs.CaptureMessage(ctx, incident.Job{Kind: slack.JobCaptureMessage, Payload: payload}); err != nil {
		t.Fatalf("deleted message: %v", err)
	}
	if err := jobs.CaptureMessage(ctx, incident.Job{Kind: slack.JobCaptureMessage, Payload: []byte(`{}`)}); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("bad payload: %v", err)
	}
}

// fakeRunbooks asks for a confirmation card on `run` and records the
// buttons clicked.
type fakeRunbooks struct {
	mu     sync.Mutex
	clicks []string
	runs   []string // the arguments of every run request
}

func (f *fakeRunbooks) List(context.Context, command.Request) (string, error) { return "restart", nil }

func (f *fakeRunbooks) Run(_ context.Context, req command.Request, args string) (command.Reply, error) {
	f.mu.Lock()
	f.runs = append(f.runs, args)
	f.mu.Unlock()
	return command.Reply{Text: "Confirm restart", Confirm: &command.Confirmation{Text: "*Confirm: restart " + args + "*", RunID: "01RUN"}}, nil
}

func (f *fakeRunbooks) record(action string, c slack.RunbookClick) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clicks = append(f.clicks, action+":"+c.RunID+":"+c.Actor.ID+":"+c.TeamID)
	return "Running restart (run 01RUN).", nil
}

func (f *fakeRunbooks) Confirm(_ context.Context, c slack.RunbookClick) (string, error) {
	return f.record("confirm", c)
}
func (f *fakeRunbooks) Cancel(_ context.Context, c slack.RunbookClick) (string, error) {
	return f.record("cancel", c)
}
func (f *fakeRunbooks) Approve(_ context.Context, c slack.RunbookClick) (string, error) {
	return f.record("approve", c)
}
func (f *fakeRunbooks) Deny(_ context.Context, c slack.RunbookClick) (string, error) {
	return f.record("deny", c)
}

func TestRunbookCardAndButtons(t *testing.T) {
	rb := &fakeRunbooks{}
	env := newHandlerEnv(t, slack.HandlerConfig{Runbooks: rb}, func(c *command.Config) { c.Runbooks = rb })
	ctx := context.Background()
	r, err := env.send.Command(ctx, slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "run restart-api env=prod"})
	if err != nil {
		t.Fatal(err)
	}
	body := string(r.Body)
	for _, want := range []string{`"response_type":"ephemeral"`, `"action_id":"runbook_confirm"`, `"action_id":"runbook_cancel"`, `"value":"01RUN"`, "restart-api env=prod"} {
		if !strings.Contains(body, want) {
			t.Errorf("card lacks %s: %s", want, body)
		}
	}
	// Confirm on the ephemeral card: the card is replaced by the outcome.
	resp := env.fake.NewResponseURL()
	click := env.fake.BlockAction("U0ALICE", env.channel, "1.2", "runbook_confirm", "01RUN", resp)
	click["container"].(map[string]any)["is_ephemeral"] = true
	if r, _ := env.send.Interaction(ctx, click); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	runClicks(t, env.bolt, env.handler)
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(resp)) == 1 }) {
		t.Fatal("no answer to Confirm")
	}
	if got := env.fake.Responses(resp)[0]; !got.ReplaceOriginal || !strings.Contains(got.Text, "Running restart") {
		t.Fatalf("confirm answer: %+v", got)
	}
	rb.mu.Lock()
	clicks := slices.Clone(rb.clicks)
	rb.mu.Unlock()
	if !slices.Equal(clicks, []string{"confirm:01RUN:U0ALICE:T0TEST"}) {
		t.Fatalf("clicks = %v", clicks)
	}
}

func TestRunbookButtonsWithoutRunbooks(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	resp := env.fake.NewResponseURL()
	env.send.Interaction(context.Background(), env.fake.BlockAction("U0ALICE", env.channel, "1.2", "runbook_approve", "01RUN", resp))
	runClicks(t, env.bolt, env.handler)
	if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(resp)) == 1 }) {
		t.Fatal("no answer")
	}
	if got := env.fake.Responses(resp)[0].Text; got != "Runbooks are not configured." {
		t.Fatalf("answer: %q", got)
	}
}

// A click is stored as a job before it is answered: the answer 200 means
// the click will run even if the bot dies right after sending it, and a
// click that cannot be stored is answered with an error, not a 200 for
// work that will never happen.
func TestButtonClickIsStoredBeforeItIsAnswered(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	status := func() incident.Status {
		inc, err := env.svc.Get(ctx, incident.Ref{Number: 1})
		if err != nil {
			t.Fatal(err)
		}
		return inc.Status
	}
	before := status()

	// The disk is full: the click is refused, and nothing was kept.
	env.store.failWrites(errors.New("no space left on device"))
	resp := env.fake.NewResponseURL()
	r, err := env.send.Interaction(ctx, env.fake.BlockAction("U0ALICE", env.channel, "1.2", slack.ActionMitigate, "INC-1", resp))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status < 500 {
		t.Fatalf("click that could not be stored answered %d %s, want a 5xx", r.Status, r.Body)
	}
	env.store.failWrites(nil)
	if n := runClicks(t, env.bolt, env.handler); n != 0 || status() != before {
		t.Fatalf("a refused click ran (%d jobs, status %s)", n, status())
	}
	if got := counter(t, env.reg, "incidentbot_slack_requests_total", map[string]string{"kind": "interaction", "outcome": "error"}); got != 1 {
		t.Errorf("error counter = %v", got)
	}

	// Stored, answered, then the bot dies before acting: the click is a
	// job in the store, and the next bot's runner carries it out.
	click := env.fake.BlockAction("U0ALICE", env.channel, "1.2", slack.ActionMitigate, "INC-1", resp)
	r, err = env.send.Interaction(ctx, click)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("click: %v %d %s", err, r.Status, r.Body)
	}
	if err := env.handler.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if status() != before {
		t.Fatalf("status %s: the click ran before its job", status())
	}
	next, err := slack.NewHandler(slack.HandlerConfig{
		Client: env.client, Dispatcher: command.NewDispatcher(command.Config{Service: env.svc}), Service: env.svc,
		SigningSecret: secret, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := runClicks(t, env.bolt, next); n != 1 {
		t.Fatalf("%d click jobs after the restart, want 1", n)
	}
	if status() != incident.StatusMitigated {
		t.Fatalf("status %s after the stored click ran, want mitigated", status())
	}
	if got := env.fake.Responses(resp); len(got) != 1 || !strings.Contains(got[0].Text, "INC-1") {
		t.Fatalf("answers to the click: %+v", got)
	}
	// The same click again (Slack's or anyone's replay): nothing more.
	if r, _ := env.send.Interaction(ctx, click); r.Status != http.StatusOK {
		t.Fatalf("replayed click: %d", r.Status)
	}
	if n := runClicks(t, env.bolt, next); n != 0 {
		t.Fatalf("a replayed click queued %d jobs", n)
	}
}

// TestFollowupDoneButton: the message that tells a new follow-up carries a
// Done button; clicking it closes that follow-up, on the timeline with who
// clicked, and a second click is told it is already done.
func TestFollowupDoneButton(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	inc, err := env.svc.AddFollowup(ctx, incident.Ref{ChannelID: env.channel}, "add a canary stage", incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack})
	if err != nil {
		t.Fatal(err)
	}
	_, events, _ := env.svc.Timeline(ctx, incident.Ref{Number: inc.Number})
	js := blocksJSONOf(t, slack.Render(incident.Message{Kind: incident.MessageEvents, Events: events[len(events)-1:]}).Blocks)
	if !strings.Contains(js, `"action_id":"followup_done"`) || !strings.Contains(js, `"value":"INC-1#1"`) {
		t.Fatalf("the follow-up message has no Done button:\n%s", js)
	}

	for i, want := range []string{"Follow-up #1 of *INC-1* marked done", "already done"} {
		resp := env.fake.NewResponseURL()
		click := env.fake.BlockAction("U0ALICE", env.channel, fmt.Sprintf("1.%d", i+2), slack.ActionFollowupDone, "INC-1#1", resp)
		if r, _ := env.send.Interaction(ctx, click); r.Status != http.StatusOK {
			t.Fatal(r.Status)
		}
		runClicks(t, env.bolt, env.handler)
		if !env.fake.Wait(5*time.Second, func() bool { return len(env.fake.Responses(resp)) == 1 }) {
			t.Fatal("no answer to the Done click")
		}
		if got := env.fake.Responses(resp)[0].Text; !strings.Contains(got, want) {
			t.Fatalf("click %d answer %q, want %q", i+1, got, want)
		}
	}
	got, _ := env.svc.Get(ctx, incident.Ref{Number: inc.Number})
	if f := got.Followups[0]; !f.Done || f.DoneBy.ID != "U0ALICE" {
		t.Fatalf("follow-up after the click: %+v", f)
	}
}

func blocksJSONOf(t *testing.T, blocks any) string {
	t.Helper()
	b, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A replayed `run` (same signed request) asks the runbook engine once, and
// the engine gets the parameters as Slack sent them: it decodes Slack's
// escaping of them itself.
func TestReplayedRunCommandRunsOnce(t *testing.T) {
	rb := &fakeRunbooks{}
	env := newHandlerEnv(t, slack.HandlerConfig{Runbooks: rb}, func(c *command.Config) { c.Runbooks = rb })
	ctx := context.Background()
	body := []byte(env.send.CommandForm(slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "run restart-api note=a&amp;b&lt;c"}).Encode())
	var replies []string
	for range 3 {
		r, err := env.send.Post(ctx, "/slack/commands", "application/x-www-form-urlencoded", body, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("run: %v %d", err, r.Status)
		}
		replies = append(replies, r.Text())
	}
	rb.mu.Lock()
	runs := slices.Clone(rb.runs)
	rb.mu.Unlock()
	if !slices.Equal(runs, []string{"restart-api note=a&amp;b&lt;c"}) {
		t.Fatalf("runbook requests: %q", runs)
	}
	if replies[1] != slack.DuplicateCommandText || replies[2] != slack.DuplicateCommandText {
		t.Fatalf("replies: %q", replies)
	}
	if got := counter(t, env.reg, "incidentbot_slack_requests_total", map[string]string{"kind": "command", "outcome": "duplicate"}); got != 2 {
		t.Errorf("duplicate counter = %v", got)
	}
}
