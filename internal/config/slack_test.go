package config

import (
	"strings"
	"testing"
)

func TestSlackPinReaction(t *testing.T) {
	base := map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
	cases := []struct {
		value, want string
		problem     bool
	}{
		{"", "pushpin", false},
		{"round_pushpin", "round_pushpin", false},
		{":star:", "star", false},
		{" +1 ", "+1", false},
		{"Push Pin", "", true},
		{"<!here>", "", true},
	}
	for _, tc := range cases {
		env := map[string]string{"SLACK_PIN_REACTION": tc.value}
		for k, v := range base {
			env[k] = v
		}
		cfg, err := Load("", fakeSource(env, nil))
		if tc.problem {
			if err == nil || !strings.Contains(err.Error(), "SLACK_PIN_REACTION") {
				t.Errorf("%q: err = %v, want a SLACK_PIN_REACTION problem", tc.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if cfg.Slack.PinReaction != tc.want {
			t.Errorf("%q: pin reaction %q, want %q", tc.value, cfg.Slack.PinReaction, tc.want)
		}
	}
}

func TestSlackPinReactionFromFile(t *testing.T) {
	files := map[string]string{"/bot.yaml": "slack:\n  bot_token: xoxb-1\n  signing_secret: s\n  pin_reaction: bookmark\n"}
	cfg, err := Load("/bot.yaml", fakeSource(nil, files))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slack.PinReaction != "bookmark" {
		t.Fatalf("pin reaction %q", cfg.Slack.PinReaction)
	}
}

func TestSlackProblemsAllReported(t *testing.T) {
	env := map[string]string{
		"SLACK_BOT_TOKEN":      "xoxp-user-token",
		"SLACK_APP_TOKEN":      "xoxb-wrong",
		"SLACK_API_URL":        "ftp://slack",
		"SLACK_PIN_REACTION":   "no spaces please",
		"BOT_ANNOUNCE_CHANNEL": "#incidents",
	}
	_, err := Load("", fakeSource(env, nil))
	if err == nil {
		t.Fatal("no problems reported")
	}
	for _, want := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "SLACK_PIN_REACTION", "BOT_ANNOUNCE_CHANNEL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "xoxp-user-token") {
		t.Errorf("a token leaked into the problems: %v", err)
	}
}

func TestSlackSocketModeNeedsNoSigningSecret(t *testing.T) {
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1-A1-1-ab"}
	cfg, err := Load("", fakeSource(env, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Slack.SocketMode() || cfg.Slack.SigningSecret.Set() {
		t.Fatalf("socket mode config: %+v", cfg.Slack)
	}
}
