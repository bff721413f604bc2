package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	cfg, err := Load("", fakeSource(nil, nil))
	if err != nil || cfg.Retention.Duration() != 30*24*time.Hour || cfg.Retention.String() != "30d" {
		t.Fatalf("default retention %v (%v), want 30d", cfg.Retention, err)
	}
	for _, tt := range []struct {
		file, env string
		want      time.Duration
	}{
		{"retention: 90d\n", "", 90 * 24 * time.Hour},
		{"retention: 90d\n", "48h", 48 * time.Hour}, // the environment wins
		{"", "off", 0},
		{"", "14D", 14 * 24 * time.Hour},
	} {
		cfg, err := Load("bot.yaml", fakeSource(map[string]string{"BOT_RETENTION": tt.env}, map[string]string{"bot.yaml": tt.file}))
		if err != nil || cfg.Retention.Duration() != tt.want {
			t.Errorf("file %q env %q: retention %v, %v; want %v", tt.file, tt.env, cfg.Retention.Duration(), err, tt.want)
		}
	}
	for _, bad := range []string{"30", "-1d", "0d", "10m", "a month"} {
		_, err := Load("", fakeSource(map[string]string{"BOT_RETENTION": bad}, nil))
		if err == nil || !strings.Contains(err.Error(), "BOT_RETENTION") {
			t.Errorf("BOT_RETENTION=%q: %v, want a problem naming the variable", bad, err)
		}
	}
}
