package config

import (
	"fmt"
	"os"
	"strconv"
)

// Runbooks configures runbook actions (the runbook files themselves are in
// RunbooksDir).
type Runbooks struct {
	// SecretsDir holds the files that runbook `secrets` refs name
	// (<dir>/<ref>); empty: runbooks that declare secrets cannot run.
	SecretsDir string `yaml:"secrets_dir"`
	// Disabled is the bot-wide kill switch: every run is refused.
	Disabled bool `yaml:"disabled"`
}

var runbookVars = []envVar{
	strVar("BOT_RUNBOOK_SECRETS_DIR", func(c *Config) *string { return &c.Runbooks.SecretsDir }),
	parseVar("BOT_RUNBOOKS_DISABLED", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q must be true or false", v)
		}
		c.Runbooks.Disabled = b
		return nil
	}),
}

func validateRunbooks(c *Config) []string {
	var p problemList
	if d := c.Runbooks.SecretsDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			p.add("BOT_RUNBOOK_SECRETS_DIR %q is not a readable directory", d)
		}
	}
	return p
}
