package slacktest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// chat.getPermalink answers in Slack's documented form, with the thread
// for a reply; a message that is not there is message_not_found. A
// message shortcut's payload carries the message as the fake holds it.
func TestPermalinkAndMessageShortcut(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	ch := fake.AddChannel("general", false, "U0ALICE", fake.BotUserID())
	parent := fake.UserPost(ch, "U0ALICE", "db down")
	reply := fake.UserReply(ch, parent, "U0BOB", "looking")
	c, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	link, err := c.Permalink(ctx, ch, parent)
	if want := "https://test.slack.com/archives/" + ch + "/p" + strings.Replace(parent, ".", "", 1); err != nil || link != want {
		t.Fatalf("permalink %q %v, want %q", link, err, want)
	}
	link, err = c.Permalink(ctx, ch, reply)
	if err != nil || !strings.HasSuffix(link, "?thread_ts="+parent+"&cid="+ch) {
		t.Fatalf("reply permalink %q %v", link, err)
	}
	if _, err := c.Permalink(ctx, ch, "1.000001"); incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Fatalf("missing message: %v", err)
	}
	app := fake.AppPost(ch, "B0ALERT", "Alertmanager", "[FIRING] HighLatency")
	p := fake.MessageShortcut("U0ALICE", "add_to_timeline", ch, app)
	msg := p["message"].(map[string]any)
	if p["type"] != "message_action" || p["callback_id"] != "add_to_timeline" || p["trigger_id"] == "" || p["response_url"] == "" ||
		msg["bot_id"] != "B0ALERT" || msg["username"] != "Alertmanager" || msg["subtype"] != "bot_message" || msg["text"] != "[FIRING] HighLatency" {
		t.Fatalf("payload %+v", p)
	}
}
