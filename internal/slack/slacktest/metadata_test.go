package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// history calls a reading method and returns its messages' metadata and
// files as Slack sends them.
func history(t *testing.T, fake *slacktest.Server, method string, form url.Values) []struct {
	TS       string          `json:"ts"`
	Metadata json.RawMessage `json:"metadata"`
	Files    []struct {
		Title string `json:"title"`
	} `json:"files"`
} {
	t.Helper()
	form.Set("token", fake.BotToken())
	resp, err := http.PostForm(fake.APIURL()+method, form)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		OK       bool   `json:"ok"`
		Error    string `json:"error"`
		Messages []struct {
			TS       string          `json:"ts"`
			Metadata json.RawMessage `json:"metadata"`
			Files    []struct {
				Title string `json:"title"`
			} `json:"files"`
		} `json:"messages"`
	}
	if err := jsonDecode(resp, &body); err != nil || !body.OK {
		t.Fatalf("%s: %v %s", method, err, body.Error)
	}
	return body.Messages
}

// The fake keeps message metadata as Slack documents it: posted with
// chat.postMessage's metadata argument, returned by conversations.history
// and .replies only with include_all_metadata, and refused when it is not
// an event_type with an event_payload object.
func TestFakeMessageMetadata(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	ch := fake.AddChannel("incidents", false, fake.BotUserID())
	md := `{"event_type":"incident_bot_message_posted","event_payload":{"incident":"INC-7","kind":"summary"}}`
	if _, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {ch}, "text": {"hello"}, "metadata": {md}}); code != "" {
		t.Fatalf("posting with metadata: %s", code)
	}
	for bad, want := range map[string]string{
		`not json`:           "invalid_metadata_format",
		`{"event_type":"x"}`: "invalid_metadata_schema",
		`{"event_type":"Has Spaces","event_payload":{}}`: "invalid_metadata_schema",
	} {
		if _, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {ch}, "text": {"x"}, "metadata": {bad}}); code != want {
			t.Errorf("metadata %s: %q, want %q", bad, code, want)
		}
	}
	if msgs := history(t, fake, "conversations.history", url.Values{"channel": {ch}}); len(msgs) != 1 || msgs[0].Metadata != nil {
		t.Fatalf("history without include_all_metadata: %+v", msgs)
	}
	msgs := history(t, fake, "conversations.history", url.Values{"channel": {ch}, "include_all_metadata": {"1"}})
	if len(msgs) != 1 || string(msgs[0].Metadata) != md {
		t.Fatalf("history with include_all_metadata: %+v", msgs)
	}
	// A reply in a thread carries its metadata in conversations.replies.
	reply := `{"event_type":"incident_bot_message_posted","event_payload":{"kind":"update_copy","seq":"4"}}`
	if _, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {ch}, "text": {"copy"}, "thread_ts": {msgs[0].TS}, "metadata": {reply}}); code != "" {
		t.Fatal(code)
	}
	rs := history(t, fake, "conversations.replies", url.Values{"channel": {ch}, "ts": {msgs[0].TS}, "include_all_metadata": {"true"}})
	if len(rs) != 2 || string(rs[1].Metadata) != reply {
		t.Fatalf("replies: %+v", rs)
	}
}

// Faults can be aimed at one channel, and a lost answer means the call was
// carried out.
func TestFakeChannelFaultsAndLostAnswers(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	a := fake.AddChannel("a", false, fake.BotUserID())
	b := fake.AddChannel("b", false, fake.BotUserID())
	fake.FailNextIn("chat.postMessage", b, 1, slacktest.SlackError("is_archived"))
	if _, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {a}, "text": {"x"}}); code != "" {
		t.Errorf("post in a: %s, want ok (the fault is b's)", code)
	}
	if _, _, code := post(t, fake, "chat.postMessage", url.Values{"channel": {b}, "text": {"x"}}); code != "is_archived" {
		t.Errorf("post in b: %q, want is_archived", code)
	}
	fake.FailNextIn("chat.postMessage", a, 1, slacktest.LostAnswer())
	if status, _, _ := post(t, fake, "chat.postMessage", url.Values{"channel": {a}, "text": {"lost"}}); status != http.StatusInternalServerError {
		t.Errorf("lost answer: HTTP %d, want 500", status)
	}
	if n := len(fake.Messages(a)); n != 2 {
		t.Errorf("%d messages in a, want 2: the lost answer's post was carried out", n)
	}
	if calls := fake.Calls("chat.postMessage"); !calls[len(calls)-1].Lost {
		t.Error("the call is not recorded as lost")
	}
}
