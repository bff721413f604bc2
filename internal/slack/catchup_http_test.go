package slack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestOfferCatchupJob: the offer job posts the catch-up with its intro as
// one ephemeral to the joiner; one who left before it went out ends the
// job without a retry (Slack answers user_not_in_channel for good).
func TestOfferCatchupJob(t *testing.T) {
	env := newHandlerEnv(t, slack.HandlerConfig{})
	ctx := context.Background()
	jobs := &slack.Jobs{Client: env.client, Service: env.svc}
	inc, err := env.svc.Get(ctx, incident.Ref{ChannelID: env.channel})
	if err != nil {
		t.Fatal(err)
	}
	env.fake.AddUser(slacktest.User{ID: "U0CAROL", Name: "carol"})
	env.fake.AddUser(slacktest.User{ID: "U0GONE", Name: "gone"})
	env.fake.JoinChannel(env.channel, "U0CAROL")
	offer := func(user string) error {
		p, _ := json.Marshal(incident.CatchupOffer{Incident: inc.Number, Channel: env.channel, User: user, JoinedAt: inc.DeclaredAt.Add(25 * time.Minute)})
		return jobs.OfferCatchup(ctx, incident.Job{Kind: slack.JobCatchupOffer, Payload: p})
	}
	if err := offer("U0CAROL"); err != nil {
		t.Fatal(err)
	}
	if err := offer("U0GONE"); err != nil {
		t.Fatalf("an offer to someone who left: %v, want it dropped", err)
	}
	eph := env.fake.Ephemerals()
	if len(eph) != 1 || eph[0].User != "U0CAROL" || !strings.Contains(string(eph[0].Blocks), "you joined *INC-1* 25m after it was declared") {
		t.Fatalf("ephemerals: %+v", eph)
	}
	if err := jobs.OfferCatchup(ctx, incident.Job{Kind: slack.JobCatchupOffer, Payload: []byte(`{"incident":1}`)}); incident.ErrorCode(err) != incident.EINVALID {
		t.Fatalf("a bad payload: %v", err)
	}
}
