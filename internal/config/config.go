// Package config is the bot's typed configuration: defaults, an optional
// YAML file, environment overrides (each secret X may come from the file
// named by X_FILE), and validation that reports every problem at once.
//
// Secrets are of type Secret, which prints as <redacted> in logs, errors
// and %v output; only Value reveals them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret is a credential. It never prints its value.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString keeps %#v from revealing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalText keeps encoders (JSON logs, YAML dumps) from revealing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a secret from text (the YAML file).
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Set reports whether the secret has a value.
func (s Secret) Set() bool { return s != "" }

// Config is the whole configuration. YAML keys are given in the tags;
// environment variables are listed in envVars.
type Config struct {
	Addr            string `yaml:"addr"`
	MetricsAddr     string `yaml:"metrics_addr"`
	DB              string `yaml:"db"`
	AdminSocket     string `yaml:"admin_socket"`
	RunbooksDir     string `yaml:"runbooks_dir"`
	TemplatesDir    string `yaml:"templates_dir"`
	AnnounceChannel string `yaml:"announce_channel"`
	Timezone        string `yaml:"timezone"`
	LogFormat       string `yaml:"log_format"`
	LogLevel        string `yaml:"log_level"`
	// Retention is how long dead-lettered jobs and runbook run records
	// are kept before they are pruned (BOT_RETENTION, default 30d).
	Retention Retention `yaml:"retention"`

	Slack     Slack     `yaml:"slack"`
	PagerDuty PagerDuty `yaml:"pagerduty"`
	Alerts    Alerts    `yaml:"alerts"`
	Runbooks  Runbooks  `yaml:"runbooks"`
	Digest    Digest    `yaml:"digest"`
	Handover  Handover  `yaml:"handover"`

	// Store is the storage backend (BOT_STORE): StoreBolt or StoreEtcd;
	// Etcd configures the latter.
	Store string `yaml:"store"`
	Etcd  Etcd   `yaml:"etcd"`

	// Location is Timezone loaded by Validate.
	Location *time.Location `yaml:"-"`
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Addr:         ":8080",
		DB:           "data/bot.db",
		RunbooksDir:  "runbooks",
		TemplatesDir: "templates",
		Timezone:     "UTC",
		LogFormat:    "json",
		LogLevel:     "info",
		Store:        StoreBolt,
		Etcd:         Etcd{Prefix: DefaultEtcdPrefix, LeaderTTL: DefaultLeaderTTL},
		Retention:    DefaultRetention,
		Slack:        Slack{APIURL: "https://slack.com/api/"},
		PagerDuty: PagerDuty{
			APIURL:    "https://api.pagerduty.com",
			EventsURL: "https://events.pagerduty.com",
		},
	}
}

// envVar binds an environment variable to a field. Exactly one of str, sec
// and parse is set; parse handles typed values (durations, numbers, maps)
// and returns a problem message naming the variable.
type envVar struct {
	name   string
	secret bool
	file   bool // an X_FILE variant is read too (always for secrets)
	str    func(c *Config) *string
	sec    func(c *Config) *Secret
	parse  func(c *Config, value string) error
}

func strVar(name string, f func(c *Config) *string) envVar {
	return envVar{name: name, str: f}
}

func secretVar(name string, f func(c *Config) *Secret) envVar {
	return envVar{name: name, secret: true, sec: f}
}

// fileVar lets a plain variable be read from a file (X_FILE) as secrets are.
func fileVar(v envVar) envVar {
	v.file = true
	return v
}

func parseVar(name string, f func(c *Config, value string) error) envVar {
	return envVar{name: name, parse: f}
}

// envVars lists every environment variable the bot reads, core first, then
// each integration's (declared in its own file). The names are part of the
// public interface.
var envVars = slices.Concat(coreVars, storeVars, retentionVars, slackVars, pagerDutyVars, alertVars, runbookVars, digestVars, handoverVars)

// validators check each part of the configuration; each returns problems.
var validators = []func(c *Config) []string{validateCore, validateStore, validateSlack, validatePagerDuty, validateAlerts, validateRunbooks, validateDigest, validateHandover}

var coreVars = []envVar{
	strVar("BOT_ADDR", func(c *Config) *string { return &c.Addr }),
	strVar("BOT_METRICS_ADDR", func(c *Config) *string { return &c.MetricsAddr }),
	strVar("BOT_DB", func(c *Config) *string { return &c.DB }),
	strVar("BOT_ADMIN_SOCKET", func(c *Config) *string { return &c.AdminSocket }),
	strVar("BOT_RUNBOOKS_DIR", func(c *Config) *string { return &c.RunbooksDir }),
	strVar("BOT_TEMPLATES_DIR", func(c *Config) *string { return &c.TemplatesDir }),
	strVar("BOT_ANNOUNCE_CHANNEL", func(c *Config) *string { return &c.AnnounceChannel }),
	strVar("BOT_TIMEZONE", func(c *Config) *string { return &c.Timezone }),
	strVar("BOT_LOG_FORMAT", func(c *Config) *string { return &c.LogFormat }),
	strVar("BOT_LOG_LEVEL", func(c *Config) *string { return &c.LogLevel }),
}

// EnvNames returns the names of all environment variables the bot reads
// (secrets also have an X_FILE variant).
func EnvNames() []string {
	names := make([]string, 0, len(envVars))
	for _, v := range envVars {
		names = append(names, v.name)
	}
	return names
}

// Source is where Load reads from; tests substitute both functions.
type Source struct {
	// Getenv looks up an environment variable ("" when unset).
	Getenv func(string) string
	// ReadFile reads a file (the YAML file and *_FILE secrets).
	ReadFile func(string) ([]byte, error)
	// Lstat describes a file without following a symlink (what is at
	// BOT_ADMIN_SOCKET); nil: the file system is not checked.
	Lstat func(string) (os.FileInfo, error)
}

// OSSource reads the process environment and the file system.
func OSSource() Source { return Source{Getenv: os.Getenv, ReadFile: os.ReadFile, Lstat: os.Lstat} }

// Problems is a configuration error listing every problem found.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "configuration problem: " + p[0]
	}
	return fmt.Sprintf("%d configuration problems:\n  - %s", len(p), strings.Join(p, "\n  - "))
}

// Load builds the configuration: defaults, then the YAML file at path (if
// path is not empty; BOT_CONFIG names it otherwise), then the environment.
// It validates the result and returns every problem at once.
func Load(path string, src Source) (Config, error) {
	cfg := Defaults()
	var problems Problems
	if path == "" {
		path = src.Getenv("BOT_CONFIG")
	}
	if path != "" {
		if err := loadFile(&cfg, path, src); err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, applyEnv(&cfg, src)...)
	problems = append(problems, cfg.validate()...)
	problems = append(problems, checkAdminSocket(cfg, src.Lstat)...)
	if len(problems) > 0 {
		return cfg, problems
	}
	return cfg, nil
}

func loadFile(cfg *Config, path string, src Source) error {
	raw, err := src.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF and is fine: it sets nothing.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

func applyEnv(cfg *Config, src Source) Problems {
	var problems Problems
	for _, v := range envVars {
		val, set := src.Getenv(v.name), false
		if val != "" {
			set = true
		}
		if v.secret || v.file {
			if file := src.Getenv(v.name + "_FILE"); file != "" {
				if set {
					problems = append(problems, fmt.Sprintf("both %s and %s_FILE are set; use one", v.name, v.name))
					continue
				}
				raw, err := src.ReadFile(file)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s_FILE: cannot read %s: %v", v.name, file, errors.Unwrap(err)))
					continue
				}
				val, set = strings.TrimRight(string(raw), "\r\n"), true
			}
		}
		if !set {
			continue
		}
		switch {
		case v.secret:
			*v.sec(cfg) = Secret(strings.TrimSpace(val))
		case v.parse != nil:
			if err := v.parse(cfg, strings.TrimSpace(val)); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", v.name, err))
			}
		default:
			*v.str(cfg) = strings.TrimSpace(val)
		}
	}
	return problems
}

func (c *Config) validate() Problems {
	var p Problems
	for _, v := range validators {
		p = append(p, v(c)...)
	}
	return p
}

// problemList collects problems with printf-style messages.
type problemList []string

func (p *problemList) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func validateCore(c *Config) []string {
	var p problemList
	add := p.add
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add("BOT_ADDR %q is not a listen address like :8080 or 127.0.0.1:8080", c.Addr)
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			add("BOT_METRICS_ADDR %q is not a listen address like :9090 or 127.0.0.1:9090", c.MetricsAddr)
		} else if c.MetricsAddr == c.Addr && port != "0" { // port 0: any free port, twice
			add("BOT_METRICS_ADDR %q is BOT_ADDR; give the probes and metrics a port of their own, or leave BOT_METRICS_ADDR unset to serve everything on BOT_ADDR", c.MetricsAddr)
		}
	}
	if strings.TrimSpace(c.DB) == "" {
		add("BOT_DB must name the database file")
	}
	if c.AdminSocket == "" && c.DB != "" {
		c.AdminSocket = c.DB + ".sock"
	}
	if loc, err := time.LoadLocation(c.Timezone); err != nil {
		add("BOT_TIMEZONE %q is not a time zone name like UTC or Europe/Berlin", c.Timezone)
	} else {
		c.Location = loc
	}
	if !slices.Contains([]string{"json", "console"}, c.LogFormat) {
		add("BOT_LOG_FORMAT %q must be json or console", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.LogLevel)) {
		add("BOT_LOG_LEVEL %q must be debug, info, warn or error", c.LogLevel)
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	return p
}

// checkAdminSocket refuses a BOT_ADMIN_SOCKET that names something other
// than a socket: the bot replaces a stale socket at start-up, and must never
// take that for leave to delete a file (the database itself, say).
func checkAdminSocket(cfg Config, lstat func(string) (os.FileInfo, error)) []string {
	if cfg.AdminSocket == "" {
		return nil
	}
	if filepath.Clean(cfg.AdminSocket) == filepath.Clean(cfg.DB) {
		return []string{fmt.Sprintf("BOT_ADMIN_SOCKET %q is the database file BOT_DB; leave BOT_ADMIN_SOCKET unset (it defaults to BOT_DB + \".sock\") or name a new path", cfg.AdminSocket)}
	}
	if lstat == nil {
		return nil
	}
	if fi, err := lstat(cfg.AdminSocket); err == nil && fi.Mode().Type() != os.ModeSocket {
		return []string{fmt.Sprintf("BOT_ADMIN_SOCKET %q exists and is not a socket (mode %v); the bot only ever replaces a stale socket there, so name a path where nothing exists yet", cfg.AdminSocket, fi.Mode())}
	}
	return nil
}

func checkURL(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return raw, false
	}
	return u.String(), true
}
