package slack_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

func openStore(t testing.TB) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "bot.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// crashAfterCreate is a chat whose first CreateChannel reaches Slack but
// whose answer is lost, as when the bot dies between Slack creating the
// channel and the bot recording it.
type crashAfterCreate struct {
	*slack.Client
	crashed bool
}

func (c *crashAfterCreate) CreateChannel(ctx context.Context, name string) (incident.ChannelRef, error) {
	ref, err := c.Client.CreateChannel(ctx, name)
	if err == nil && !c.crashed {
		c.crashed = true
		return incident.ChannelRef{}, incident.Retryable(errors.New("connection reset after the request was sent"), 0)
	}
	return ref, err
}

// fastRates lifts the client's per-method pacing so tests that make many
// calls do not wait for Slack's tiers.
func fastRates() map[string]slack.Rate {
	out := map[string]slack.Rate{}
	for m := range slack.MethodRates {
		out[m] = slack.Rate{PerMinute: 60000, Burst: 1000}
	}
	return out
}

func TestChannelNames(t *testing.T) {
	cases := []struct {
		name     string
		title    string
		existing []string // channels someone else already has
		crash    bool
		want     string // "" means: any valid inc-<n> name
		wantPref string
	}{
		{name: "plain", title: "Database is down", want: "inc-1-database-is-down"},
		{name: "emoji only", title: "🔥🔥🔥", want: "inc-1"},
		{name: "CJK", title: "データベース障害", want: "inc-1"},
		{name: "accents", title: "Café Résumé: Łódź ünïcödé", want: "inc-1-cafe-resume-lodz-unicode"},
		{name: "punctuation", title: "!!! ??? ---", want: "inc-1"},
		{name: "upper and mixed", title: "API_Gateway 5XX -- EU/West", want: "inc-1-api-gateway-5xx-eu-west"},
		{name: "200 characters", title: strings.Repeat("very long title ", 13)[:200], wantPref: "inc-1-very-long-title"},
		{name: "name taken", title: "db down", existing: []string{"inc-1-db-down"}, want: "inc-1-db-down-2"},
		{name: "name taken twice", title: "db down", existing: []string{"inc-1-db-down", "inc-1-db-down-2"}, want: "inc-1-db-down-3"},
		{name: "crash between create and record", title: "db down", crash: true, want: "inc-1-db-down"},
		{name: "crash and name taken", title: "db down", existing: []string{"inc-1-db-down"}, crash: true, want: "inc-1-db-down-2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fake := slacktest.NewServer(slacktest.Config{})
			defer fake.Close()
			for _, n := range tc.existing {
				fake.AddChannel(n, false, "U0OTHER")
			}
			client, err := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t), Rates: fastRates()})
			if err != nil {
				t.Fatal(err)
			}
			store := openStore(t)
			svc := incident.NewService(incident.ServiceConfig{Store: store})
			fake.AddUser(slacktest.User{ID: "U0ALICE", Name: "alice"})
			inc, err := svc.Declare(ctx, incident.Declaration{Title: tc.title, By: incident.Actor{ID: "U0ALICE", Source: incident.SourceSlack}})
			if err != nil {
				t.Fatal(err)
			}
			var chat incident.Chat = client
			if tc.crash {
				chat = &crashAfterCreate{Client: client}
			}
			sync := &incident.ChatSync{Store: store, Chat: chat, Clock: incident.SystemClock}
			err = sync.Sync(ctx, inc.Number)
			if tc.crash {
				if _, retry := incident.IsRetryable(err); !retry {
					t.Fatalf("crashed sync: %v, want a retryable error", err)
				}
				err = sync.Sync(ctx, inc.Number) // the retry after the restart
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			got, err := svc.Get(ctx, incident.Ref{Number: inc.Number})
			if err != nil {
				t.Fatal(err)
			}
			name := got.Chat.ChannelName
			if tc.want != "" && name != tc.want {
				t.Errorf("channel = %q, want %q", name, tc.want)
			}
			if !strings.HasPrefix(name, tc.wantPref) || utf8.RuneCountInString(name) > 80 {
				t.Errorf("channel = %q (%d characters), want prefix %q, at most 80", name, len(name), tc.wantPref)
			}
			// Exactly one channel is the bot's, and it is the one recorded.
			var ours []slacktest.Channel
			for _, ch := range fake.Channels() {
				if ch.Creator == fake.BotUserID() {
					ours = append(ours, ch)
				}
			}
			if len(ours) != 1 || ours[0].ID != got.Chat.ChannelID {
				t.Fatalf("bot channels = %+v, recorded %s", ours, got.Chat.ChannelID)
			}
			for _, c := range fake.Calls("conversations.create") {
				if c.Error != "" && c.Error != "name_taken" {
					t.Errorf("Slack refused the name %q: %s", c.Form.Get("name"), c.Error)
				}
			}
			// A second sync (a retried job) creates nothing more.
			if err := sync.Sync(ctx, inc.Number); err != nil {
				t.Fatal(err)
			}
			if n := len(fake.Channels()); n != len(tc.existing)+1 {
				t.Fatalf("%d channels after a second sync, want %d", n, len(tc.existing)+1)
			}
		})
	}
}

func TestTwoEmojiIncidentsGetTwoChannels(t *testing.T) {
	ctx := context.Background()
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	client, _ := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t)})
	store := openStore(t)
	svc := incident.NewService(incident.ServiceConfig{Store: store})
	sync := &incident.ChatSync{Store: store, Chat: client, Clock: incident.SystemClock}
	for range 2 {
		inc, err := svc.Declare(ctx, incident.Declaration{Title: "🚨", By: incident.BotActor})
		if err != nil {
			t.Fatal(err)
		}
		if err := sync.Sync(ctx, inc.Number); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := fake.ChannelByName("inc-1"); !ok {
		t.Error("no inc-1")
	}
	if _, ok := fake.ChannelByName("inc-2"); !ok {
		t.Error("no inc-2")
	}
}
