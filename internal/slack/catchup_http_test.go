package slack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// TestCatchupCommand: `/incident catchup` over HTTP answers an ephemeral
// Block Kit catch-up; a broadcast in a note is inert; a mistyped since is
// a clear error; it is read-only, so running it twice is no duplicate.
func TestCatchupCommand(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	if _, err := env.svc.PostStatusUpdate(ctx, incident.Ref{ChannelID: env.channel}, "rolling back <!channel>", incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, err := env.send.Command(ctx, slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "catchup 2h"})
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("catchup: %v %+v", err, r)
		}
		var ack struct {
			ResponseType string            `json:"response_type"`
			Text         string            `json:"text"`
			Blocks       []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(r.Body, &ack); err != nil {
			t.Fatal(err)
		}
		body := string(r.Body)
		if ack.ResponseType != "ephemeral" || len(ack.Blocks) < 4 || !strings.Contains(ack.Text, "Catch-up on INC-1") {
			t.Fatalf("catchup reply: %s", body)
		}
		for _, want := range []string{"Catch-up: INC-1", `*Commander*\n\u003c@U0ALICE\u003e`, "rolling back @\u200bchannel", "Since "} {
			if !strings.Contains(body, want) && !strings.Contains(ack.Text+blocksOf(t, ack.Blocks), want) {
				t.Errorf("catchup reply lacks %q: %s", want, body)
			}
		}
		if strings.Contains(body, "\\u003c!channel\\u003e") || strings.Contains(body, "<!channel>") {
			t.Errorf("a broadcast survives: %s", body)
		}
	}
	r, _ := env.send.Command(ctx, slacktest.Command{User: "U0ALICE", Channel: env.channel, Text: "catchup 30mm"})
	if !strings.Contains(r.Text(), "is not a time I can read") || !strings.Contains(r.Text(), "catchup [INC-n] [since]") {
		t.Errorf("typo reply: %s", r.Body)
	}
}

func blocksOf(t *testing.T, raw []json.RawMessage) string {
	var b strings.Builder
	for _, r := range raw {
		var blk slackapi.SectionBlock
		_ = json.Unmarshal(r, &blk)
		if blk.Text != nil {
			b.WriteString(blk.Text.Text + "\n")
		}
		for _, f := range blk.Fields {
			b.WriteString(f.Text + "\n")
		}
	}
	return b.String()
}
