package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Alerts configures the alert-group sources (Prometheus Alertmanager,
// Grafana alerting) and how their alert groups become incidents. The
// mapping is the same for every source.
type Alerts struct {
	// AlertmanagerToken is the bearer token Alertmanager sends
	// (http_config.authorization); several, comma-separated, during a
	// rotation. Unset: POST /webhooks/alertmanager is not served.
	AlertmanagerToken Secret `yaml:"alertmanager_token"`
	// GrafanaSecret is the HMAC secret of Grafana's webhook contact point
	// (hmacConfig.secret); GrafanaToken a bearer token (the contact
	// point's Authorization credentials) for Grafana versions without
	// HMAC. Either, or both, serves POST /webhooks/grafana.
	GrafanaSecret Secret `yaml:"grafana_secret"`
	GrafanaToken  Secret `yaml:"grafana_token"`
	// GrafanaTimestampHeader is the contact point's
	// hmacConfig.timestampHeader, if set there (Grafana has no default).
	GrafanaTimestampHeader string `yaml:"grafana_timestamp_header"`

	// SeverityMap maps the alerts' "severity" label to severities, over
	// DefaultAlertSeverityMap (ALERT_SEVERITY_MAP).
	SeverityMap SeverityMap `yaml:"severity_map"`
	// TitleFrom lists the annotations or labels tried for a title
	// (ALERT_TITLE_FROM, default "summary,alertname").
	TitleFrom string `yaml:"title_from"`
	// AutoMitigate marks an incident mitigated when its alert group
	// resolves (ALERT_AUTO_MITIGATE, default false).
	AutoMitigate bool `yaml:"auto_mitigate"`
	// ReopenWindow: a group firing again this soon after its incident was
	// resolved reopens it (ALERT_REOPEN_WINDOW, default 0: a new incident).
	ReopenWindow time.Duration `yaml:"reopen_window"`
	// Storm is the storm guard (BOT_ALERT_STORM, "N/WINDOW", default off).
	Storm AlertStorm `yaml:"storm"`
}

// AlertStorm is the storm guard: above Threshold alert-raised incidents
// within Window, further alert groups attach to one storm incident.
type AlertStorm struct {
	Threshold int
	Window    time.Duration
}

// UnmarshalText parses "20/10m", "20" (a 10 minute window) or "off".
func (s *AlertStorm) UnmarshalText(b []byte) error {
	v := strings.TrimSpace(string(b))
	if v == "" || strings.EqualFold(v, "off") {
		*s = AlertStorm{}
		return nil
	}
	n, w, hasWindow := strings.Cut(v, "/")
	out := AlertStorm{Window: 10 * time.Minute}
	if _, err := fmt.Sscanf(strings.TrimSpace(n), "%d", &out.Threshold); err != nil || out.Threshold < 1 || fmt.Sprint(out.Threshold) != strings.TrimSpace(n) {
		return fmt.Errorf("%q is not N/WINDOW (e.g. 20/10m) or off", v)
	}
	if hasWindow {
		d, err := time.ParseDuration(strings.TrimSpace(w))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: the window %q is not a duration such as 10m", v, w)
		}
		out.Window = d
	}
	*s = out
	return nil
}

// DefaultAlertSeverityMap is ALERT_SEVERITY_MAP's default.
func DefaultAlertSeverityMap() SeverityMap {
	out := SeverityMap{}
	for k, v := range incident.DefaultAlertSeverities {
		out[strings.ToUpper(k)] = v
	}
	return out
}

// Tokens splits a comma-separated secret list.
func Tokens(s Secret) []string {
	var out []string
	for _, t := range strings.Split(s.Value(), ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Policy is the domain's alert policy.
func (a Alerts) Policy() incident.AlertPolicy {
	sev := map[string]incident.Severity{}
	for k, v := range DefaultAlertSeverityMap() {
		sev[strings.ToLower(k)] = v
	}
	for k, v := range a.SeverityMap {
		sev[strings.ToLower(k)] = v
	}
	return incident.AlertPolicy{TitleFrom: splitList(a.TitleFrom), Severities: sev, AutoMitigate: a.AutoMitigate, ReopenWindow: a.ReopenWindow,
		StormThreshold: a.Storm.Threshold, StormWindow: a.Storm.Window}
}

var alertVars = []envVar{
	secretVar("ALERTMANAGER_WEBHOOK_TOKEN", func(c *Config) *Secret { return &c.Alerts.AlertmanagerToken }),
	secretVar("GRAFANA_WEBHOOK_SECRET", func(c *Config) *Secret { return &c.Alerts.GrafanaSecret }),
	secretVar("GRAFANA_WEBHOOK_TOKEN", func(c *Config) *Secret { return &c.Alerts.GrafanaToken }),
	strVar("GRAFANA_WEBHOOK_TIMESTAMP_HEADER", func(c *Config) *string { return &c.Alerts.GrafanaTimestampHeader }),
	parseVar("ALERT_SEVERITY_MAP", func(c *Config, v string) error { return c.Alerts.SeverityMap.UnmarshalText([]byte(v)) }),
	strVar("ALERT_TITLE_FROM", func(c *Config) *string { return &c.Alerts.TitleFrom }),
	parseVar("ALERT_AUTO_MITIGATE", func(c *Config, v string) error {
		b, err := parseBool(v)
		c.Alerts.AutoMitigate = b
		return err
	}),
	parseVar("BOT_ALERT_STORM", func(c *Config, v string) error { return c.Alerts.Storm.UnmarshalText([]byte(v)) }),
	parseVar("ALERT_REOPEN_WINDOW", func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 30m or 2h", v)
		}
		c.Alerts.ReopenWindow = d
		return nil
	}),
}

// minTokenLength: a bearer token is the only thing between the internet
// and opening incidents, so it must not be guessable.
const minTokenLength = 16

func validateAlerts(c *Config) []string {
	var problems []string
	for _, v := range []struct {
		name string
		s    Secret
	}{{"ALERTMANAGER_WEBHOOK_TOKEN", c.Alerts.AlertmanagerToken}, {"GRAFANA_WEBHOOK_SECRET", c.Alerts.GrafanaSecret}, {"GRAFANA_WEBHOOK_TOKEN", c.Alerts.GrafanaToken}} {
		if !v.s.Set() {
			continue
		}
		tokens := Tokens(v.s)
		if len(tokens) == 0 {
			problems = append(problems, v.name+" is set but holds no token")
		}
		for i, t := range tokens {
			if len(t) < minTokenLength {
				problems = append(problems, fmt.Sprintf("%s: token %d is shorter than %d characters; use a long random string", v.name, i+1, minTokenLength))
			}
		}
	}
	if c.Alerts.ReopenWindow < 0 {
		problems = append(problems, "ALERT_REOPEN_WINDOW must not be negative")
	}
	return problems
}
