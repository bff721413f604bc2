package config

import "strings"

// PagerDuty configures the PagerDuty adapter.
type PagerDuty struct {
	APIToken      Secret `yaml:"api_token"`
	WebhookSecret Secret `yaml:"webhook_secret"`
	RoutingKey    Secret `yaml:"routing_key"`
	APIURL        string `yaml:"api_url"`
	EventsURL     string `yaml:"events_url"`
	FromEmail     string `yaml:"from_email"`
}

var pagerDutyVars = []envVar{
	secretVar("PAGERDUTY_API_TOKEN", func(c *Config) *Secret { return &c.PagerDuty.APIToken }),
	secretVar("PAGERDUTY_WEBHOOK_SECRET", func(c *Config) *Secret { return &c.PagerDuty.WebhookSecret }),
	secretVar("PAGERDUTY_ROUTING_KEY", func(c *Config) *Secret { return &c.PagerDuty.RoutingKey }),
	strVar("PAGERDUTY_API_URL", func(c *Config) *string { return &c.PagerDuty.APIURL }),
	strVar("PAGERDUTY_EVENTS_URL", func(c *Config) *string { return &c.PagerDuty.EventsURL }),
	strVar("PAGERDUTY_FROM_EMAIL", func(c *Config) *string { return &c.PagerDuty.FromEmail }),
}

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
	return p
}
