package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/config"
)

// doctorTimeout bounds all the checks together.
const doctorTimeout = 30 * time.Second

// doctorCmd checks the Slack setup (token, scopes, announce channel, HTTP or
// Socket Mode), the PagerDuty setup (API token, From user, webhook secret)
// and the alert sources, and prints each check with OK or FAIL and, for a
// failure, the fix in plain words. It exits non-zero if any check fails.
// --manifest names the Slack app manifest to check for the shortcuts and
// scopes the bot needs.
func doctorCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var manifest string
	if !subFlags("doctor", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&manifest, "manifest", "", "the Slack app manifest your app was created from (default: deploy/slack/manifest*.yaml, if present)")
	}) {
		return exitConfig
	}
	cfg, err := config.Load(configPath, config.OSSource())
	var problems config.Problems
	if errors.As(err, &problems) {
		// A doctor reports what is wrong rather than refusing to look: the
		// configuration's problems are findings like any other.
		fmt.Fprintln(stdout, "Configuration")
		for _, p := range problems {
			fmt.Fprintf(stdout, "  FAIL  %s\n", p)
		}
		fmt.Fprintf(stdout, "\n%d configuration problem(s); fix them, then run `bot doctor` again for the Slack and PagerDuty checks.\n", len(problems))
		return exitFail
	} else if err != nil {
		fmt.Fprintf(stderr, "bot doctor: %v\n", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorTimeout)
	defer cancel()
	sections := []struct {
		name   string
		checks func(context.Context) []app.SetupCheck
	}{
		{"Slack", func(ctx context.Context) []app.SetupCheck { return app.SlackChecks(ctx, cfg, zap.NewNop(), manifest) }},
		{"PagerDuty", func(ctx context.Context) []app.SetupCheck { return app.PagerDutyChecks(ctx, cfg) }},
		{"Alert sources", func(context.Context) []app.SetupCheck { return app.AlertSourceChecks(cfg) }},
	}
	failed := 0
	for _, s := range sections {
		fmt.Fprintf(stdout, "%s\n", s.name)
		for _, c := range s.checks(ctx) {
			status := "OK  "
			if !c.OK {
				status = "FAIL"
				failed++
			}
			fmt.Fprintf(stdout, "  %s  %s: %s\n", status, c.Name, c.Detail)
			if !c.OK && c.Fix != "" {
				fmt.Fprintf(stdout, "        fix: %s\n", c.Fix)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d check(s) failed.\n", failed)
		return exitFail
	}
	fmt.Fprintln(stdout, "\nAll checks passed.")
	return exitOK
}
