package slacktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

func unpaced() map[string]slack.Rate {
	out := map[string]slack.Rate{}
	for m := range slack.MethodRates {
		out[m] = slack.Rate{PerMinute: 1e6, Burst: 1e6}
	}
	return out
}

func post(t *testing.T, fake *slacktest.Server, method string, form url.Values) (int, string, string) {
	t.Helper()
	form.Set("token", fake.BotToken())
	resp, err := http.PostForm(fake.APIURL()+method, form)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error string `json:"error"`
	}
	_ = jsonDecode(resp, &body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.Error
}

func TestEnforcedTierLimits(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fake := slacktest.NewServer(slacktest.Config{EnforceRateLimits: true, Now: clock.Now})
	defer fake.Close()
	for i := range 20 { // Tier 2: 20 a minute
		if status, _, code := post(t, fake, "conversations.create", url.Values{"name": {fmt.Sprintf("c-%d", i)}}); status != 200 || code != "" {
			t.Fatalf("create %d: %d %s", i, status, code)
		}
	}
	status, retry, _ := post(t, fake, "conversations.create", url.Values{"name": {"c-20"}})
	if status != http.StatusTooManyRequests || retry != "3" {
		t.Fatalf("21st create in a minute: %d Retry-After %q, want 429 after 3s", status, retry)
	}
	clock.Advance(3 * time.Second)
	if status, _, _ := post(t, fake, "conversations.create", url.Values{"name": {"c-20"}}); status != 200 {
		t.Fatalf("after Retry-After: %d", status)
	}
	ch, _ := fake.ChannelByName("c-0")
	for i := range 4 { // one a second per channel, a burst of 4
		if status, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {ch.ID}, "text": {"x"}}); status != 200 {
			t.Fatalf("post %d: %d %s", i, status, code)
		}
	}
	if status, retry, _ := post(t, fake, "chat.postMessage", url.Values{"channel": {ch.ID}, "text": {"x"}}); status != 429 || retry != "1" {
		t.Fatalf("5th post in a second: %d %q", status, retry)
	}
	other, _ := fake.ChannelByName("c-1")
	if status, _, _ := post(t, fake, "chat.postMessage", url.Values{"channel": {other.ID}, "text": {"x"}}); status != 200 {
		t.Fatalf("another channel is limited too: %d", status)
	}
}

func TestTimeScale(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fake := slacktest.NewServer(slacktest.Config{EnforceRateLimits: true, Now: clock.Now, TimeScale: 60})
	defer fake.Close()
	for i := range 20 {
		post(t, fake, "conversations.create", url.Values{"name": {fmt.Sprintf("c-%d", i)}})
	}
	if status, retry, _ := post(t, fake, "conversations.create", url.Values{"name": {"c-x"}}); status != 429 || retry != "1" {
		t.Fatalf("scaled: %d %q", status, retry)
	}
	clock.Advance(time.Second) // a Slack minute
	for i := range 20 {
		if status, _, _ := post(t, fake, "conversations.create", url.Values{"name": {fmt.Sprintf("d-%d", i)}}); status != 200 {
			t.Fatalf("after a scaled minute, create %d: %d", i, status)
		}
	}
}

// The client's own pacing keeps it inside Slack's limits: a burst of work
// for one incident channel never draws a 429.
func TestClientPacingStaysWithinLimits(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fake := slacktest.NewServer(slacktest.Config{EnforceRateLimits: true, Now: clock.Now})
	defer fake.Close()
	c, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Clock: clock, Sleep: clock.Sleep, MaxWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := range 30 {
		ref, err := c.CreateChannel(ctx, fmt.Sprintf("inc-%d", i))
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		ids = append(ids, ref.ID)
	}
	for i := range 40 {
		if _, err := c.Post(ctx, ids[0], incident.Message{Kind: incident.MessageText, Text: fmt.Sprint(i)}); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if err := c.SetTopic(ctx, ids[i%len(ids)], "topic"); err != nil {
			t.Fatalf("topic %d: %v", i, err)
		}
	}
	for _, call := range fake.Calls("") {
		if call.Status == http.StatusTooManyRequests {
			t.Fatalf("the client drew a 429 on %s", call.Method)
		}
	}
}

func TestFakeChannelRules(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	for name, want := range map[string]string{
		"":                      "invalid_name_required",
		"---":                   "invalid_name_punctuation",
		"Upper":                 "invalid_name_specials",
		"has space":             "invalid_name_specials",
		"café":                  "invalid_name_specials",
		strings.Repeat("a", 81): "invalid_name_maxlength",
		strings.Repeat("a", 80): "",
		"inc-1_ok":              "",
	} {
		_, _, code := post(t, fake, "conversations.create", url.Values{"name": {name}})
		if code != want {
			t.Errorf("create %q: %q, want %q", name, code, want)
		}
	}
	if _, _, code := post(t, fake, "conversations.create", url.Values{"name": {"inc-1_ok"}}); code != "name_taken" {
		t.Errorf("duplicate name: %q", code)
	}
	// The token may come in the form or as a bearer header; anything else
	// is refused.
	resp, _ := http.PostForm(fake.APIURL()+"auth.test", url.Values{"token": {"xoxb-wrong"}})
	var body struct{ Error string }
	_ = jsonDecode(resp, &body)
	if body.Error != "invalid_auth" {
		t.Errorf("wrong token: %q", body.Error)
	}
	req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"auth.test", nil)
	req.Header.Set("Authorization", "Bearer "+fake.BotToken())
	resp, _ = http.DefaultClient.Do(req)
	body.Error = ""
	_ = jsonDecode(resp, &body)
	if body.Error != "" || resp.Header.Get("X-OAuth-Scopes") == "" {
		t.Errorf("bearer token: %q, scopes %q", body.Error, resp.Header.Get("X-OAuth-Scopes"))
	}
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
