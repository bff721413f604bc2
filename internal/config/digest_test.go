package config

import (
	"strings"
	"testing"
)

func TestDigestDefaults(t *testing.T) {
	src := fakeSource(map[string]string{"BOT_ANNOUNCE_CHANNEL": "incidents"}, nil)
	cfg, err := Load("", src)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Digest
	if d.Schedule != "CRON_TZ=UTC 0 9 * * MON" || d.Channel != "incidents" || !d.Enabled() {
		t.Errorf("digest defaults: %+v", d)
	}
	none, _ := Load("", fakeSource(nil, nil))
	if none.Digest.Enabled() {
		t.Error("with no digest or announce channel the post is on")
	}
}

func TestDigestSettings(t *testing.T) {
	env := map[string]string{
		"SLACK_BOT_TOKEN":      "xoxb-1",
		"SLACK_SIGNING_SECRET": "s",
		"BOT_ANNOUNCE_CHANNEL": "C0ANNOUNCE",
		"BOT_DIGEST_CHANNEL":   "C0DIGEST",
		"BOT_DIGEST_SCHEDULE":  "CRON_TZ=Europe/Berlin 30 8 * * MON",
	}
	src := fakeSource(env, nil)
	cfg, err := Load("", src)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Digest; d.Channel != "C0DIGEST" || d.Schedule != "CRON_TZ=Europe/Berlin 30 8 * * MON" {
		t.Errorf("digest = %+v", d)
	}
	env["BOT_DIGEST_SCHEDULE"] = "OFF"
	cfg, err = Load("", src)
	if err != nil || cfg.Digest.Enabled() {
		t.Errorf("off: %+v, %v", cfg.Digest, err)
	}
	yamlCfg, err := Load("bot.yaml", fakeSource(nil, map[string]string{"bot.yaml": "announce_channel: incidents\ndigest:\n  schedule: \"0 8 * * FRI\"\n"}))
	if err != nil || yamlCfg.Digest.Schedule != "0 8 * * FRI" || yamlCfg.Digest.Channel != "incidents" {
		t.Errorf("digest from YAML: %+v, %v", yamlCfg.Digest, err)
	}
}

func TestBadDigestSettingsAreStartupProblems(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		// The cron parser panics on this one; it must be a problem instead.
		{map[string]string{"BOT_DIGEST_SCHEDULE": "CRON_TZ=UTC"}, "BOT_DIGEST_SCHEDULE: \"CRON_TZ=UTC\": CRON_TZ=<zone> must be followed by a schedule"},
		{map[string]string{"BOT_DIGEST_SCHEDULE": "0 9 * * 7"}, "BOT_DIGEST_SCHEDULE: \"0 9 * * 7\" is not a cron schedule"},
		{map[string]string{"BOT_DIGEST_SCHEDULE": "0 0 9 * * MON"}, "expected exactly 5 fields"},
		{map[string]string{"BOT_DIGEST_SCHEDULE": "CRON_TZ=Mars/Olympus 0 9 * * MON"}, "bad location Mars/Olympus"},
		{map[string]string{"BOT_DIGEST_SCHEDULE": "@every 168h"}, "@every is not supported"},
		{map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "BOT_DIGEST_CHANNEL": "#incidents"}, "BOT_DIGEST_CHANNEL: \"#incidents\" must be a Slack channel id"},
	}
	for _, tt := range tests {
		_, err := Load("", fakeSource(tt.env, nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load with %v: %v; want a problem with %q", tt.env, err, tt.want)
		}
	}
	// Reported together with the rest.
	_, err := Load("", fakeSource(map[string]string{"BOT_DIGEST_SCHEDULE": "nope", "BOT_LOG_FORMAT": "xml"}, nil))
	if p, ok := err.(Problems); !ok || len(p) != 2 {
		t.Errorf("problems = %v", err)
	}
}
