package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fakeSource is an environment and a file system held in maps.
func fakeSource(env map[string]string, files map[string]string) Source {
	return Source{
		Getenv: func(k string) string { return env[k] },
		ReadFile: func(name string) ([]byte, error) {
			if v, ok := files[name]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("", fakeSource(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.DB != "data/bot.db" || cfg.RunbooksDir != "runbooks" || cfg.TemplatesDir != "templates" ||
		cfg.Timezone != "UTC" || cfg.LogFormat != "json" || cfg.AdminSocket != "data/bot.db.sock" || cfg.Location == nil ||
		cfg.Slack.APIURL != "https://slack.com/api/" || cfg.PagerDuty.APIURL != "https://api.pagerduty.com" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestFileThenEnvThenSecretFiles(t *testing.T) {
	files := map[string]string{
		"/etc/bot.yaml":   "addr: 127.0.0.1:9000\ndb: /var/lib/bot/bot.db\ntimezone: Europe/Berlin\nslack:\n  bot_token: xoxb-from-file\n  signing_secret: from-file\n  api_url: http://fake-slack:1234/api\n",
		"/run/secrets/pd": "u+pd-token-from-file\n",
	}
	env := map[string]string{
		"BOT_CONFIG":               "/etc/bot.yaml",
		"BOT_ADDR":                 ":7000", // env overrides the file
		"PAGERDUTY_API_TOKEN_FILE": "/run/secrets/pd",
		"PAGERDUTY_FROM_EMAIL":     "oncall@example.com",
	}
	cfg, err := Load("", fakeSource(env, files))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.DB != "/var/lib/bot/bot.db" || cfg.Location.String() != "Europe/Berlin" {
		t.Errorf("precedence: addr %q db %q tz %v", cfg.Addr, cfg.DB, cfg.Location)
	}
	if cfg.Slack.BotToken.Value() != "xoxb-from-file" || cfg.PagerDuty.APIToken.Value() != "u+pd-token-from-file" {
		t.Errorf("secrets: %q %q", cfg.Slack.BotToken.Value(), cfg.PagerDuty.APIToken.Value())
	}
	if cfg.Slack.APIURL != "http://fake-slack:1234/api/" {
		t.Errorf("SLACK_API_URL must end with / for slack-go: %q", cfg.Slack.APIURL)
	}
}

func TestEveryProblemAtOnceAndNoSecretInThem(t *testing.T) {
	env := map[string]string{
		"BOT_ADDR":                      "nonsense",
		"BOT_TIMEZONE":                  "Mars/Olympus",
		"BOT_LOG_FORMAT":                "xml",
		"BOT_LOG_LEVEL":                 "loud",
		"SLACK_BOT_TOKEN":               "xoxp-secret-user-token",
		"SLACK_APP_TOKEN":               "not-an-app-token-secret",
		"SLACK_API_URL":                 "::::",
		"BOT_ANNOUNCE_CHANNEL":          "#incidents",
		"PAGERDUTY_API_TOKEN":           "pd-secret",
		"PAGERDUTY_WEBHOOK_SECRET":      "whsec-secret",
		"PAGERDUTY_WEBHOOK_SECRET_FILE": "/also/set",
		"PAGERDUTY_ROUTING_KEY_FILE":    "/missing/file",
	}
	_, err := Load("", fakeSource(env, nil))
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("error %v is not Problems", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"BOT_ADDR", "BOT_TIMEZONE", "BOT_LOG_FORMAT", "BOT_LOG_LEVEL", "SLACK_BOT_TOKEN must be a bot token",
		"SLACK_APP_TOKEN must be an app-level token", "SLACK_API_URL", "BOT_ANNOUNCE_CHANNEL",
		"PAGERDUTY_FROM_EMAIL", "both PAGERDUTY_WEBHOOK_SECRET and PAGERDUTY_WEBHOOK_SECRET_FILE", "PAGERDUTY_ROUTING_KEY_FILE: cannot read /missing/file",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"xoxp-secret-user-token", "not-an-app-token-secret", "pd-secret", "whsec-secret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("a secret leaked: %s", msg)
		}
	}
}

func TestBadYAMLIsReportedWithTheRest(t *testing.T) {
	files := map[string]string{"bot.yaml": "adr: :9000\n"} // typo'd key
	_, err := Load("bot.yaml", fakeSource(map[string]string{"BOT_LOG_FORMAT": "xml"}, files))
	if err == nil || !strings.Contains(err.Error(), "field adr not found") || !strings.Contains(err.Error(), "BOT_LOG_FORMAT") {
		t.Fatalf("error: %v", err)
	}
	if _, err := Load("missing.yaml", fakeSource(nil, nil)); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Load("empty.yaml", fakeSource(nil, map[string]string{"empty.yaml": ""})); err != nil {
		t.Fatalf("an empty file should be fine: %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg := Defaults()
	cfg.Slack.BotToken = "xoxb-very-secret"
	cfg.PagerDuty.WebhookSecret = "whsec-very-secret"
	j, _ := json.Marshal(cfg)
	y, _ := yaml.Marshal(cfg)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Slack.BotToken), string(j), string(y)} {
		if strings.Contains(out, "very-secret") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if cfg.Slack.BotToken.Value() != "xoxb-very-secret" {
		t.Fatal("Value must reveal the secret")
	}
}

// TestAdminSocketMustNotNameAFile: BOT_ADMIN_SOCKET naming the database or
// any existing file that is not a socket is a configuration problem (the
// bot would otherwise delete it at start-up to bind its socket).
func TestAdminSocketMustNotNameAFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := func(env map[string]string) Source {
		return Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile, Lstat: os.Lstat}
	}
	for _, tt := range []struct {
		socket, want string
	}{
		{db, "is the database file BOT_DB"},
		{notes, "exists and is not a socket"},
		{dir, "exists and is not a socket"},
	} {
		_, err := Load("", src(map[string]string{"BOT_DB": db, "BOT_ADMIN_SOCKET": tt.socket}))
		if err == nil || !strings.Contains(err.Error(), "BOT_ADMIN_SOCKET") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("BOT_ADMIN_SOCKET=%s: %v; want a problem saying %q", tt.socket, err, tt.want)
		}
	}
	// A new path, or the default, is fine.
	for _, socket := range []string{"", filepath.Join(dir, "admin.sock")} {
		if _, err := Load("", src(map[string]string{"BOT_DB": db, "BOT_ADMIN_SOCKET": socket})); err != nil {
			t.Errorf("BOT_ADMIN_SOCKET=%q: %v", socket, err)
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	cfg, err := Load("", fakeSource(map[string]string{"BOT_METRICS_ADDR": "127.0.0.1:9090"}, nil))
	if err != nil || cfg.MetricsAddr != "127.0.0.1:9090" || cfg.Addr != ":8080" {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if cfg, err := Load("", fakeSource(nil, nil)); err != nil || cfg.MetricsAddr != "" {
		t.Fatalf("default: %q, %v", cfg.MetricsAddr, err)
	}
	for value, want := range map[string]string{"9090": "not a listen address", ":8080": "is BOT_ADDR"} {
		_, err := Load("", fakeSource(map[string]string{"BOT_METRICS_ADDR": value}, nil))
		if err == nil || !strings.Contains(err.Error(), "BOT_METRICS_ADDR") || !strings.Contains(err.Error(), want) {
			t.Errorf("BOT_METRICS_ADDR=%s: %v, want %q", value, err, want)
		}
	}
}
