package slack_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/slack"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

func checksByName(checks []slack.Check) map[string]slack.Check {
	out := map[string]slack.Check{}
	for _, c := range checks {
		out[strings.SplitN(c.Name, " ", 2)[0]] = c
	}
	return out
}

func doctorClient(t *testing.T, fake *slacktest.Server, token string) *slack.Client {
	t.Helper()
	c, err := slack.NewClient(slack.ClientConfig{Token: token, AppToken: fake.AppToken(), APIURL: fake.APIURL(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDoctorAllGood(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	announce := fake.AddChannel("incidents", false, "U0X", fake.BotUserID())
	checks := slack.Doctor(context.Background(), slack.DoctorConfig{
		Client: doctorClient(t, fake, fake.BotToken()), AnnounceChannel: announce, AppToken: fake.AppToken(), OpenSocket: true,
	})
	if len(checks) != 5 {
		t.Fatalf("checks: %+v", checks)
	}
	for _, c := range checks {
		if !c.OK {
			t.Errorf("%s failed: %s (%s)", c.Name, c.Detail, c.Fix)
		}
	}
}

func TestDoctorNamesProblemsAndFixes(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{Scopes: []string{"chat:write", "commands", "channels:read"}})
	defer fake.Close()
	notMember := fake.AddChannel("incidents", false, "U0X")
	checks := checksByName(slack.Doctor(context.Background(), slack.DoctorConfig{
		Client: doctorClient(t, fake, fake.BotToken()), AnnounceChannel: notMember, AppToken: "xoxb-not-an-app-token",
	}))
	if c := checks["scopes"]; c.OK || !strings.Contains(c.Detail, "users:read.email") || !strings.Contains(c.Detail, "channels:manage") || !strings.Contains(c.Fix, "reinstall") {
		t.Errorf("scopes check: %+v", c)
	}
	if c := checks["announce"]; c.OK || !strings.Contains(c.Detail, "not a member of #incidents") || !strings.Contains(c.Fix, "/invite @incident-bot") {
		t.Errorf("announce check: %+v", c)
	}
	if c := checks["Socket"]; c.OK || !strings.Contains(c.Fix, "connections:write") {
		t.Errorf("socket check: %+v", c)
	}

	missing := slack.Doctor(context.Background(), slack.DoctorConfig{Client: doctorClient(t, fake, fake.BotToken()), AnnounceChannel: "C0NOPE", SigningSecret: false})
	m := checksByName(missing)
	if c := m["announce"]; c.OK || !strings.Contains(c.Detail, "cannot see C0NOPE") {
		t.Errorf("unknown announce channel: %+v", c)
	}
	if c := m["HTTP"]; c.OK || !strings.Contains(c.Fix, "SLACK_SIGNING_SECRET") {
		t.Errorf("http mode check: %+v", c)
	}
}

func TestDoctorBadToken(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	checks := slack.Doctor(context.Background(), slack.DoctorConfig{Client: doctorClient(t, fake, "xoxb-revoked")})
	if len(checks) != 1 || checks[0].OK || checks[0].Detail != "invalid_auth" || !strings.Contains(checks[0].Fix, "Bot User OAuth Token") {
		t.Fatalf("bad token: %+v", checks)
	}
	if strings.Contains(checks[0].Detail+checks[0].Fix, "xoxb-revoked") {
		t.Fatal("the token leaked into the report")
	}
}

// A workspace whose app has the Home tab off: doctor says so and how to fix
// it (Slack answers views.publish with not_enabled).
func TestDoctorHomeTabOff(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{HomeTabDisabled: true})
	defer fake.Close()
	checks := checksByName(slack.Doctor(context.Background(), slack.DoctorConfig{Client: doctorClient(t, fake, fake.BotToken()), SigningSecret: true}))
	if c := checks["Home"]; c.OK || !strings.Contains(c.Detail, "Home tab is off") || !strings.Contains(c.Fix, "app_home_opened") {
		t.Errorf("home tab check: %+v", c)
	}
	if n := len(fake.HomeViews("")); n != 0 {
		t.Errorf("%d home views published with the Home tab off", n)
	}
}
