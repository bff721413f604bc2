package slack_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// fakeTime is a manual clock whose Sleep advances it, so rate-limit waits
// take no real time and are recorded.
type fakeTime struct {
	*incidenttest.Clock
	mu     sync.Mutex
	sleeps []time.Duration
}

func newFakeTime() *fakeTime {
	return &fakeTime{Clock: incidenttest.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))}
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	f.mu.Unlock()
	f.Advance(d)
	return ctx.Err()
}

func (f *fakeTime) slept() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var total time.Duration
	for _, d := range f.sleeps {
		total += d
	}
	return total
}

type clientEnv struct {
	fake   *slacktest.Server
	client *slack.Client
	time   *fakeTime
	reg    *prometheus.Registry
}

func newClientEnv(t *testing.T, cfg slacktest.Config) *clientEnv {
	t.Helper()
	fake := slacktest.NewServer(cfg)
	t.Cleanup(fake.Close)
	ft := newFakeTime()
	reg := prometheus.NewRegistry()
	c, err := slack.NewClient(slack.ClientConfig{
		Token: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL(),
		Logger: zaptest.NewLogger(t), Clock: ft, Sleep: ft.Sleep, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &clientEnv{fake: fake, client: c, time: ft, reg: reg}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestClientMapsSlackErrors(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	ch := env.fake.AddChannel("general", false, env.fake.BotUserID())
	msg := incident.Message{Kind: incident.MessageText, Text: "hello"}

	// 429 with Retry-After: retryable after exactly that wait.
	env.fake.FailNext("chat.postMessage", 1, slacktest.RateLimited(7))
	_, err := env.client.Post(ctx, ch, msg)
	after, retry := incident.IsRetryable(err)
	if !retry || after != 7*time.Second {
		t.Fatalf("429: err=%v retryable=%v after=%s, want retryable after 7s", err, retry, after)
	}
	// The method stays blocked until Retry-After passed: the next call does
	// not reach Slack.
	calls := len(env.fake.Calls("chat.postMessage"))
	if _, err := env.client.Post(ctx, ch, msg); err == nil {
		t.Fatal("post during Retry-After succeeded")
	} else if _, retry := incident.IsRetryable(err); !retry {
		t.Fatalf("blocked post: %v, want retryable", err)
	}
	if n := len(env.fake.Calls("chat.postMessage")); n != calls {
		t.Fatalf("a blocked post reached Slack (%d calls, want %d)", n, calls)
	}
	env.time.Advance(8 * time.Second)

	// 5xx: retryable with the queue's own backoff.
	env.fake.FailNext("chat.postMessage", 1, slacktest.ServerError())
	_, err = env.client.Post(ctx, ch, msg)
	if after, retry := incident.IsRetryable(err); !retry || after != 0 {
		t.Fatalf("500: %v (retryable=%v after=%s)", err, retry, after)
	}

	// Domain mappings.
	if _, err := env.client.CreateChannel(ctx, "general"); !errors.Is(err, incident.ErrNameTaken) {
		t.Fatalf("name_taken: %v", err)
	}
	if err := env.client.SetTopic(ctx, "C9NOPE", "x"); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Fatalf("channel_not_found: %v (code %s)", err, incident.ErrorCode(err))
	}
	env.fake.FailNext("chat.postMessage", 1, slacktest.SlackError("invalid_blocks"))
	if _, err := env.client.Post(ctx, ch, msg); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("invalid_blocks: %v, want a permanent EINVALID", err)
	} else if _, retry := incident.IsRetryable(err); retry {
		t.Fatal("invalid_blocks must not be retried")
	}
	env.fake.FailNext("conversations.setTopic", 1, slacktest.SlackError("invalid_auth"))
	err = env.client.SetTopic(ctx, ch, "x")
	if err == nil {
		t.Fatal("invalid_auth: no error")
	} else if after, retry := incident.IsRetryable(err); !retry || after < time.Minute {
		t.Fatalf("invalid_auth: %v, want retryable after a minute (a fixed token resumes the work)", err)
	}
	if got := slack.SlackCode(err); got != "invalid_auth" {
		t.Fatalf("SlackCode = %q", got)
	}

	if got := counter(t, env.reg, "incidentbot_slack_api_requests_total", map[string]string{"method": "chat.postMessage", "outcome": "rate_limited"}); got != 1 {
		t.Errorf("rate_limited counter = %v, want 1", got)
	}
	if got := counter(t, env.reg, "incidentbot_slack_api_requests_total", map[string]string{"method": "chat.postMessage", "outcome": "server_error"}); got != 1 {
		t.Errorf("server_error counter = %v, want 1", got)
	}
	if got := counter(t, env.reg, "incidentbot_slack_api_rate_limited_total", map[string]string{"method": "chat.postMessage"}); got != 1 {
		t.Errorf("rate_limited_total = %v, want 1", got)
	}
}

func TestClientNetworkErrorIsRetryable(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	url := fake.APIURL()
	fake.Close() // nothing listens any more
	c, err := slack.NewClient(slack.ClientConfig{Token: "xoxb-x", APIURL: url, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateChannel(context.Background(), "inc-1")
	if _, retry := incident.IsRetryable(err); !retry {
		t.Fatalf("network error: %v, want retryable", err)
	}
}

func TestInviteChunksAndSkipsMembers(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	var users []string
	for i := range 250 {
		u := fmt.Sprintf("U%04d", i)
		users = append(users, u)
		env.fake.AddUser(slacktest.User{ID: u, Name: u})
	}
	ref, err := env.client.CreateChannel(ctx, "inc-1-big")
	if err != nil {
		t.Fatal(err)
	}
	// Two people are already there, and the bot is in the list too.
	env.fake.JoinChannel(ref.ID, "U0010")
	env.fake.JoinChannel(ref.ID, "U0200")
	if err := env.client.Invite(ctx, ref.ID, append(users, env.fake.BotUserID())); err != nil {
		t.Fatal(err)
	}
	ch, _ := env.fake.ChannelByName("inc-1-big")
	for _, u := range users {
		if !slices.Contains(ch.Members, u) {
			t.Fatalf("%s was not invited", u)
		}
	}
	for _, c := range env.fake.Calls("conversations.invite") {
		if n := len(strings.Split(c.Form.Get("users"), ",")); n > 100 {
			t.Fatalf("an invite named %d users (at most 100)", n)
		}
	}
	// Inviting everyone again is not an error.
	if err := env.client.Invite(ctx, ref.ID, users[:3]); err != nil {
		t.Fatalf("re-invite: %v", err)
	}
	// An unknown user does not hold up the others.
	env.fake.AddUser(slacktest.User{ID: "UNEW", Name: "new"})
	if err := env.client.Invite(ctx, ref.ID, []string{"UGONE", "UNEW"}); err != nil {
		t.Fatalf("invite with an unknown user: %v", err)
	}
	ch, _ = env.fake.ChannelByName("inc-1-big")
	if !slices.Contains(ch.Members, "UNEW") {
		t.Fatal("UNEW not invited because of UGONE")
	}
}

func TestFindChannelPagesPublicAndPrivate(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	for i := range 2100 {
		env.fake.AddChannel(fmt.Sprintf("chan-%04d", i), false)
	}
	priv := env.fake.AddChannel("inc-9-secret", true, env.fake.BotUserID())
	env.fake.AddChannel("inc-9-hidden", true) // private, bot not a member
	archived := env.fake.AddChannel("inc-8-old", false)
	env.fake.ArchiveChannel(archived)

	ref, err := env.client.FindChannel(context.Background(), "inc-9-secret")
	if err != nil || ref.ID != priv {
		t.Fatalf("FindChannel = %+v, %v; want %s", ref, err, priv)
	}
	if n := len(env.fake.Calls("conversations.list")); n != 3 {
		t.Errorf("%d conversations.list calls, want 3 pages of 1000", n)
	}
	for _, name := range []string{"inc-9-hidden", "nope"} {
		if _, err := env.client.FindChannel(context.Background(), name); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Errorf("FindChannel(%s) = %v, want ENOTFOUND", name, err)
		}
	}
	// Channels that are not ours to adopt: somebody else's, or archived.
	mine := env.fake.AddChannel("inc-7-archived", false, env.fake.BotUserID())
	env.fake.ArchiveChannel(mine)
	for _, name := range []string{"chan-0001", "inc-8-old", "inc-7-archived"} {
		if _, err := env.client.FindChannel(context.Background(), name); !errors.Is(err, incident.ErrNameTaken) {
			t.Errorf("FindChannel(%s) = %v, want ErrNameTaken", name, err)
		}
	}
}

func TestLookupUserByEmailCaches(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	env.fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"})
	for range 3 {
		id, err := env.client.LookupUserByEmail(ctx, "Alice@Example.com")
		if err != nil || id != "U0ALICE" {
			t.Fatalf("lookup = %q, %v", id, err)
		}
	}
	for range 2 {
		if _, err := env.client.LookupUserByEmail(ctx, "bob@example.com"); incident.ErrorCode(err) != incident.ENOTFOUND {
			t.Fatalf("unknown email: %v", err)
		}
	}
	if n := len(env.fake.Calls("users.lookupByEmail")); n != 2 {
		t.Fatalf("%d lookups reached Slack, want 2 (one hit, one miss)", n)
	}
	// Bob joins; the negative answer expires after 5 minutes.
	env.fake.AddUser(slacktest.User{ID: "U0BOB", Name: "bob", Email: "bob@example.com"})
	env.time.Advance(6 * time.Minute)
	if id, err := env.client.LookupUserByEmail(ctx, "bob@example.com"); err != nil || id != "U0BOB" {
		t.Fatalf("after the miss expired: %q, %v", id, err)
	}
}

func TestUserGroupMembers(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	env.fake.AddUserGroup("S0SRE", "U1", "U2")
	got, err := env.client.UserGroupMembers(context.Background(), "S0SRE")
	if err != nil || !slices.Equal(got, []string{"U1", "U2"}) {
		t.Fatalf("members = %v, %v", got, err)
	}
	if _, err := env.client.UserGroupMembers(context.Background(), "S0NOPE"); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestPostsArePacedPerChannel(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	a := env.fake.AddChannel("a", false, env.fake.BotUserID())
	b := env.fake.AddChannel("b", false, env.fake.BotUserID())
	msg := incident.Message{Kind: incident.MessageText, Text: "x"}
	for range 3 { // the burst: no wait
		if _, err := env.client.Post(ctx, a, msg); err != nil {
			t.Fatal(err)
		}
	}
	if env.time.slept() != 0 {
		t.Fatalf("burst of 3 waited %s", env.time.slept())
	}
	if _, err := env.client.Post(ctx, b, msg); err != nil || env.time.slept() != 0 {
		t.Fatalf("another channel waited %s (%v)", env.time.slept(), err)
	}
	for range 3 {
		if _, err := env.client.Post(ctx, a, msg); err != nil {
			t.Fatal(err)
		}
	}
	if got := env.time.slept(); got < 3*time.Second-time.Millisecond || got > 3*time.Second+time.Millisecond {
		t.Fatalf("3 more posts in one channel waited %s, want 3s (one a second)", got)
	}
}

func TestUploadThreeSteps(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ch := env.fake.AddChannel("inc-3-x", false, env.fake.BotUserID())
	f := incident.File{Name: "INC-3-postmortem-v1.md", Title: "Postmortem INC-3 v1", Content: []byte("# INC-3\n"), Comment: "Draft <!channel>"}
	if err := env.client.Upload(context.Background(), ch, f); err != nil {
		t.Fatal(err)
	}
	files := env.fake.Files()
	if len(files) != 1 || files[0].Channel != ch || string(files[0].Content) != "# INC-3\n" || files[0].Title != f.Title {
		t.Fatalf("files = %+v", files)
	}
	if strings.Contains(files[0].Comment, "<!channel>") {
		t.Fatalf("comment can notify the channel: %q", files[0].Comment)
	}
	for _, m := range []string{"files.getUploadURLExternal", "upload", "files.completeUploadExternal"} {
		if n := len(env.fake.Calls(m)); n != 1 {
			t.Errorf("%s called %d times", m, n)
		}
	}
	if err := env.client.Upload(context.Background(), ch, incident.File{Name: "empty.md"}); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("empty file: %v", err)
	}
}

func TestMessageFetchesChannelAndThreadMessages(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	ch := env.fake.AddChannel("inc-4-x", false, env.fake.BotUserID(), "U1")
	env.fake.AddUser(slacktest.User{ID: "U1", Name: "alice"})
	top := env.fake.UserPost(ch, "U1", "top level")
	env.fake.UserPost(ch, "U1", "later")
	reply := env.fake.UserReply(ch, top, "U1", "in the thread")
	m, err := env.client.Message(ctx, ch, top, "")
	if err != nil || m.Text != "top level" || m.User != "U1" {
		t.Fatalf("top = %+v, %v", m, err)
	}
	m, err = env.client.Message(ctx, ch, reply, "")
	if err != nil || m.Text != "in the thread" || m.ThreadTS != top {
		t.Fatalf("reply = %+v, %v", m, err)
	}
	if _, err := env.client.Message(ctx, ch, "1.000001", ""); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Fatalf("missing message: %v", err)
	}
}

func TestPostJoinsPublicChannelWhenNotMember(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	ctx := context.Background()
	pub := env.fake.AddChannel("incidents", false)
	if _, err := env.client.Post(ctx, pub, incident.Message{Kind: incident.MessageText, Text: "hi"}); err != nil {
		t.Fatalf("post to public channel: %v", err)
	}
	if len(env.fake.Messages(pub)) != 1 {
		t.Fatal("message not posted after joining")
	}
	priv := env.fake.AddChannel("secret", true)
	_, err := env.client.Post(ctx, priv, incident.Message{Kind: incident.MessageText, Text: "hi"})
	if err == nil {
		t.Fatal("posted to a private channel the bot is not in")
	}
}

// TestDirectoryNamesPeopleOnce: report names come from users.info, each
// person is looked up once however often a report asks, an unknown user
// keeps the mention (and is not asked about again at once), and anything
// that is not a user id is never sent.
func TestDirectoryNamesPeopleOnce(t *testing.T) {
	env := newClientEnv(t, slacktest.Config{})
	env.fake.AddUser(slacktest.User{ID: "U0DANA", Name: "dana", RealName: "Dana Scully"})
	env.fake.AddUser(slacktest.User{ID: "U0ERIN", Name: "erin"})
	dir := slack.NewDirectory(env.client)
	ctx := context.Background()
	for range 3 {
		got := dir.Names(ctx, []string{"U0DANA", "U0ERIN", "U0GONE", "<!here>", "alice"})
		if len(got) != 2 || got["U0DANA"] != "Dana Scully" || got["U0ERIN"] != "erin" {
			t.Fatalf("names = %v", got)
		}
	}
	if n := len(env.fake.Calls("users.info")); n != 3 {
		t.Errorf("%d users.info calls for 3 people asked about 3 times, want 3", n)
	}
}
