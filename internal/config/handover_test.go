package config

import (
	"strings"
	"testing"
)

// TestHandoverSettings: the scheduled handover is off unless
// BOT_HANDOVER_SCHEDULE is set, goes to the announce channel by default,
// and is read from the environment or the YAML file.
func TestHandoverSettings(t *testing.T) {
	cfg, err := Load("", fakeSource(map[string]string{"BOT_ANNOUNCE_CHANNEL": "incidents"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Handover; h.Enabled() || h.Channel != "incidents" {
		t.Errorf("defaults: %+v (enabled %v)", h, h.Enabled())
	}
	env := map[string]string{"BOT_ANNOUNCE_CHANNEL": "incidents", "BOT_HANDOVER_SCHEDULE": " CRON_TZ=Europe/Berlin 0 9 * * * "}
	cfg, err = Load("", fakeSource(env, nil))
	if h := cfg.Handover; err != nil || !h.Enabled() || h.Schedule != "CRON_TZ=Europe/Berlin 0 9 * * *" || h.Channel != "incidents" {
		t.Errorf("schedule set: %+v, %v", h, err)
	}
	env["BOT_HANDOVER_SCHEDULE"], env["BOT_HANDOVER_CHANNEL"] = "off", "oncall"
	cfg, err = Load("", fakeSource(env, nil))
	if h := cfg.Handover; err != nil || h.Enabled() || h.Channel != "oncall" {
		t.Errorf("off: %+v, %v", h, err)
	}
	yamlCfg, err := Load("bot.yaml", fakeSource(nil, map[string]string{"bot.yaml": "handover:\n  schedule: \"0 8 * * MON\"\n  channel: oncall\n"}))
	if h := yamlCfg.Handover; err != nil || !h.Enabled() || h.Schedule != "0 8 * * MON" {
		t.Errorf("from YAML: %+v, %v", h, err)
	}
}

// TestBadHandoverSettingsAreStartupProblems: a bad schedule, a schedule
// with nowhere to post and a channel name where Slack needs an id are
// reported together, with the other problems.
func TestBadHandoverSettingsAreStartupProblems(t *testing.T) {
	_, err := Load("", fakeSource(map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "BOT_ANNOUNCE_CHANNEL": "C0ANNOUNCE",
		"BOT_HANDOVER_SCHEDULE": "CRON_TZ=UTC", "BOT_HANDOVER_CHANNEL": "#oncall", "BOT_DIGEST_SCHEDULE": "@every 1h",
	}, nil))
	for _, want := range []string{
		`BOT_HANDOVER_SCHEDULE: "CRON_TZ=UTC": CRON_TZ=<zone> must be followed by a schedule`,
		`BOT_HANDOVER_CHANNEL: "#oncall" must be a Slack channel id`,
		"BOT_DIGEST_SCHEDULE:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	_, err = Load("", fakeSource(map[string]string{"BOT_HANDOVER_SCHEDULE": "0 9 * * *"}, nil))
	if err == nil || !strings.Contains(err.Error(), "BOT_HANDOVER_SCHEDULE is set but there is no channel to post to") {
		t.Errorf("no channel: %v", err)
	}
}
