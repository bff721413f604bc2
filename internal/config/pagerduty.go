package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// PagerDuty configures the PagerDuty adapter, and the automatic escalation
// and status-update reminders that use it.
//
// The typed maps and pointers hold only what the operator set; the methods
// (Priorities, AckTimeoutsBySeverity, ...) merge them over the defaults.
type PagerDuty struct {
	APIToken      Secret `yaml:"api_token"`
	WebhookSecret Secret `yaml:"webhook_secret"` // one or more secrets, comma-separated (rotation)
	RoutingKey    Secret `yaml:"routing_key"`
	APIURL        string `yaml:"api_url"`
	EventsURL     string `yaml:"events_url"`
	FromEmail     string `yaml:"from_email"`

	// DefaultService is the service id paged when an escalation policy is
	// paged (PagerDuty incidents need a service) and when an unacknowledged
	// incident with no PagerDuty link is escalated.
	DefaultService string `yaml:"default_service"`
	// PriorityMap maps PagerDuty priority names to severities, over
	// DefaultPriorityMap; UrgencyMap maps urgencies (used when an incident
	// has no priority), over DefaultUrgencyMap.
	PriorityMap SeverityMap `yaml:"priority_map"`
	UrgencyMap  SeverityMap `yaml:"urgency_map"`
	// SyncStatus: acknowledging and resolving in Slack does the same in
	// PagerDuty (default true). MirrorNotes: notes are copied to PagerDuty
	// incident notes (default false).
	SyncStatus  *bool `yaml:"sync_status"`
	MirrorNotes bool  `yaml:"mirror_notes"`

	// AckTimeouts, MaxEscalations and UpdateReminders configure the
	// automatic escalation and reminders (BOT_ACK_TIMEOUTS,
	// BOT_MAX_ESCALATIONS, BOT_UPDATE_REMINDERS).
	AckTimeouts     SeverityDurations `yaml:"ack_timeouts"`
	MaxEscalations  *int              `yaml:"max_escalations"`
	UpdateReminders SeverityDurations `yaml:"update_reminders"`
}

// DefaultPriorityMap is the default PagerDuty priority to severity map.
func DefaultPriorityMap() SeverityMap {
	return SeverityMap{"P1": incident.SEV1, "P2": incident.SEV2, "P3": incident.SEV3, "P4": incident.SEV4, "P5": incident.SEV4}
}

// DefaultUrgencyMap is the default urgency to severity map, for incidents
// without a priority.
func DefaultUrgencyMap() SeverityMap {
	return SeverityMap{"HIGH": incident.SEV2, "LOW": incident.SEV4}
}

// MaxEscalationsLimit bounds BOT_MAX_ESCALATIONS.
const MaxEscalationsLimit = 20

// Enabled reports whether any part of PagerDuty is configured.
func (p PagerDuty) Enabled() bool {
	return p.APIToken.Set() || p.RoutingKey.Set() || p.WebhookSecret.Set()
}

// WebhookSecrets returns the webhook signing secrets, in order.
func (p PagerDuty) WebhookSecrets() []string {
	var out []string
	for _, s := range strings.Split(p.WebhookSecret.Value(), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Priorities returns the priority map merged over the defaults; keys are
// upper case.
func (p PagerDuty) Priorities() SeverityMap { return merge(DefaultPriorityMap(), p.PriorityMap) }

// Urgencies returns the urgency map merged over the defaults; keys are upper
// case.
func (p PagerDuty) Urgencies() SeverityMap { return merge(DefaultUrgencyMap(), p.UrgencyMap) }

// StatusSync reports whether acknowledgements and resolutions go to
// PagerDuty.
func (p PagerDuty) StatusSync() bool { return p.SyncStatus == nil || *p.SyncStatus }

// AckTimeoutsBySeverity returns the acknowledgement timeouts merged over
// incident.DefaultAckTimeouts; zero means never.
func (p PagerDuty) AckTimeoutsBySeverity() map[incident.Severity]time.Duration {
	return merge(incident.DefaultAckTimeouts(), p.AckTimeouts)
}

// UpdateRemindersBySeverity returns the status-update reminder intervals
// merged over incident.DefaultUpdateReminders; zero means never.
func (p PagerDuty) UpdateRemindersBySeverity() map[incident.Severity]time.Duration {
	return merge(incident.DefaultUpdateReminders(), p.UpdateReminders)
}

// Escalations returns the maximum number of automatic escalations.
func (p PagerDuty) Escalations() int {
	if p.MaxEscalations == nil {
		return incident.DefaultMaxEscalations
	}
	return *p.MaxEscalations
}

func merge[K comparable, V any, M ~map[K]V](base map[K]V, over M) map[K]V {
	maps.Copy(base, over)
	return base
}

// SeverityMap maps names (priorities, urgencies) to severities. It reads
// "P1=SEV1,P2=SEV2" from the environment, and either that string or a YAML
// mapping from the file. Names are kept upper case.
type SeverityMap map[string]incident.Severity

// UnmarshalText parses "NAME=SEVn,NAME=SEVn".
func (m *SeverityMap) UnmarshalText(b []byte) error {
	out := SeverityMap{}
	for _, pair := range splitList(string(b)) {
		name, sev, ok := strings.Cut(pair, "=")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || name == "" {
			return fmt.Errorf("%q is not NAME=SEVERITY (e.g. P1=SEV1)", pair)
		}
		s, err := incident.ParseSeverity(sev)
		if err != nil {
			return fmt.Errorf("%s: %q is not a severity (SEV1 to SEV4)", name, strings.TrimSpace(sev))
		}
		out[name] = s
	}
	*m = out
	return nil
}

// UnmarshalYAML accepts the string form or a mapping.
func (m *SeverityMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return m.UnmarshalText([]byte(n.Value))
	}
	var raw map[string]string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	return m.UnmarshalText([]byte(joinPairs(raw)))
}

// SeverityDurations maps severities to durations. It reads
// "SEV1=5m,SEV2=10m,SEV4=off" (off, never or 0: never) from the
// environment, and that string or a YAML mapping from the file.
type SeverityDurations map[incident.Severity]time.Duration

// UnmarshalText parses "SEVn=DURATION,...".
func (d *SeverityDurations) UnmarshalText(b []byte) error {
	out := SeverityDurations{}
	for _, pair := range splitList(string(b)) {
		name, val, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("%q is not SEVERITY=DURATION (e.g. SEV1=5m)", pair)
		}
		sev, err := incident.ParseSeverity(name)
		if err != nil {
			return fmt.Errorf("%q is not a severity (SEV1 to SEV4)", strings.TrimSpace(name))
		}
		val = strings.ToLower(strings.TrimSpace(val))
		var dur time.Duration
		switch val {
		case "off", "never", "0":
		default:
			dur, err = time.ParseDuration(val)
			if err != nil || dur <= 0 {
				return fmt.Errorf("%s: %q is not a positive duration like 5m or 1h30m (or off)", sev, val)
			}
		}
		out[sev] = dur
	}
	*d = out
	return nil
}

// UnmarshalYAML accepts the string form or a mapping.
func (d *SeverityDurations) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return d.UnmarshalText([]byte(n.Value))
	}
	var raw map[string]string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	return d.UnmarshalText([]byte(joinPairs(raw)))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinPairs(m map[string]string) string {
	pairs := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k+"="+m[k])
	}
	return strings.Join(pairs, ",")
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

var pagerDutyVars = []envVar{
	secretVar("PAGERDUTY_API_TOKEN", func(c *Config) *Secret { return &c.PagerDuty.APIToken }),
	secretVar("PAGERDUTY_WEBHOOK_SECRET", func(c *Config) *Secret { return &c.PagerDuty.WebhookSecret }),
	secretVar("PAGERDUTY_ROUTING_KEY", func(c *Config) *Secret { return &c.PagerDuty.RoutingKey }),
	strVar("PAGERDUTY_API_URL", func(c *Config) *string { return &c.PagerDuty.APIURL }),
	strVar("PAGERDUTY_EVENTS_URL", func(c *Config) *string { return &c.PagerDuty.EventsURL }),
	strVar("PAGERDUTY_FROM_EMAIL", func(c *Config) *string { return &c.PagerDuty.FromEmail }),
	strVar("PAGERDUTY_DEFAULT_SERVICE", func(c *Config) *string { return &c.PagerDuty.DefaultService }),
	parseVar("PAGERDUTY_PRIORITY_MAP", func(c *Config, v string) error { return c.PagerDuty.PriorityMap.UnmarshalText([]byte(v)) }),
	parseVar("PAGERDUTY_URGENCY_MAP", func(c *Config, v string) error { return c.PagerDuty.UrgencyMap.UnmarshalText([]byte(v)) }),
	parseVar("PAGERDUTY_SYNC_STATUS", func(c *Config, v string) error {
		b, err := parseBool(v)
		c.PagerDuty.SyncStatus = &b
		return err
	}),
	parseVar("PAGERDUTY_MIRROR_NOTES", func(c *Config, v string) error {
		b, err := parseBool(v)
		c.PagerDuty.MirrorNotes = b
		return err
	}),
	parseVar("BOT_ACK_TIMEOUTS", func(c *Config, v string) error { return c.PagerDuty.AckTimeouts.UnmarshalText([]byte(v)) }),
	parseVar("BOT_MAX_ESCALATIONS", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.PagerDuty.MaxEscalations = &n
		return nil
	}),
	parseVar("BOT_UPDATE_REMINDERS", func(c *Config, v string) error { return c.PagerDuty.UpdateReminders.UnmarshalText([]byte(v)) }),
}

// pagerDutyID matches PagerDuty object ids such as PWIXJZS.
var pagerDutyID = regexp.MustCompile(`^[A-Z0-9]{5,20}$`)

func validatePagerDuty(c *Config) []string {
	var p problemList
	add := p.add
	pd := &c.PagerDuty
	if pd.APIToken.Set() && !strings.Contains(pd.FromEmail, "@") {
		add("PAGERDUTY_FROM_EMAIL must be the email of a PagerDuty user when PAGERDUTY_API_TOKEN is set (PagerDuty requires it on every change)")
	}
	for _, f := range []struct {
		name string
		val  *string
	}{{"PAGERDUTY_API_URL", &pd.APIURL}, {"PAGERDUTY_EVENTS_URL", &pd.EventsURL}} {
		if u, ok := checkURL(*f.val); !ok {
			add("%s %q is not an http(s) URL", f.name, *f.val)
		} else {
			*f.val = strings.TrimRight(u, "/") // go-pagerduty appends paths
		}
	}
	if pd.WebhookSecret.Set() && len(pd.WebhookSecrets()) == 0 {
		add("PAGERDUTY_WEBHOOK_SECRET holds no secret (it is a comma-separated list of webhook subscription secrets)")
	}
	pd.DefaultService = strings.TrimSpace(pd.DefaultService)
	if pd.DefaultService != "" {
		if !pagerDutyID.MatchString(pd.DefaultService) {
			add("PAGERDUTY_DEFAULT_SERVICE %q must be a PagerDuty service id like PWIXJZS (the last part of the service's URL in PagerDuty)", pd.DefaultService)
		}
		if !pd.APIToken.Set() {
			add("PAGERDUTY_DEFAULT_SERVICE is set but PAGERDUTY_API_TOKEN is not; paging a service needs the REST API")
		}
	}
	if pd.MirrorNotes && !pd.APIToken.Set() {
		add("PAGERDUTY_MIRROR_NOTES is on but PAGERDUTY_API_TOKEN is not set; notes are copied through the REST API")
	}
	if pd.MaxEscalations != nil && (*pd.MaxEscalations < 0 || *pd.MaxEscalations > MaxEscalationsLimit) {
		add("BOT_MAX_ESCALATIONS %d must be between 0 (no automatic escalation) and %d", *pd.MaxEscalations, MaxEscalationsLimit)
	}
	return p
}
