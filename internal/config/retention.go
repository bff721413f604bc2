package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultRetention is how long records kept for investigation are kept
// unless BOT_RETENTION says otherwise: 30 days.
const DefaultRetention = Retention(30 * 24 * time.Hour)

// Retention is how long the bot keeps what it stores only for people to
// investigate: jobs that failed for good (dead letters, with the full
// webhook or payload they carried) and runbook run records (with their
// output). Older ones are pruned. Zero keeps them forever. It reads a Go
// duration ("720h"), a number of days ("30d") or "off".
type Retention time.Duration

// Duration is the retention as a time.Duration; zero: forever.
func (r Retention) Duration() time.Duration { return time.Duration(r) }

// String renders the retention as it is configured.
func (r Retention) String() string {
	d := time.Duration(r)
	switch {
	case d == 0:
		return "off"
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// UnmarshalText parses "30d", "720h", "90m" or "off".
func (r *Retention) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	if s == "off" || s == "never" || s == "forever" {
		*r = 0
		return nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive number of days like 30d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration like 30d or 720h (or off)", s)
		}
	}
	if d < time.Hour {
		return fmt.Errorf("%q is shorter than an hour; keep records long enough to investigate (30d is the default)", s)
	}
	*r = Retention(d)
	return nil
}

// UnmarshalYAML reads the string form.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: retention must be a duration like 30d", n.Line)
	}
	return r.UnmarshalText([]byte(n.Value))
}

var retentionVars = []envVar{
	parseVar("BOT_RETENTION", func(c *Config, v string) error { return c.Retention.UnmarshalText([]byte(v)) }),
}
