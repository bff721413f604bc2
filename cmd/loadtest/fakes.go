package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// fakes serves the in-repo fake Slack and PagerDuty APIs until SIGINT, and
// prints the environment that points a bot at them, so a measurement run
// needs no internet and no real workspace.
func fakes(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest fakes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	enforce := fs.Bool("enforce-rate-limits", true, "make the fake Slack enforce Slack's real rate-limit tiers")
	demo := fs.Bool("pagerduty-demo", false, "give the fake PagerDuty users, schedules and escalation policies (pdtest.Demo) and print its API token, to try `oncall`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	slack := slacktest.NewServer(slacktest.Config{EnforceRateLimits: *enforce})
	defer slack.Close()
	pdCfg := pdtest.Config{Token: "loadtest-pd-token"}
	if *demo {
		pdCfg = pdtest.Demo(time.Now())
	}
	pd := pdtest.NewServer(pdCfg)
	defer pd.Close()
	// No PagerDuty API token: the storm's incidents exist only in the
	// webhooks, so the bot's calls back to PagerDuty would be refused.
	fmt.Fprintf(stdout, "SLACK_API_URL=%s\nSLACK_BOT_TOKEN=%s\nPAGERDUTY_API_URL=%s\nPAGERDUTY_EVENTS_URL=%s\n",
		slack.APIURL(), slack.BotToken(), pd.URL, pd.URL)
	if *demo {
		fmt.Fprintf(stdout, "PAGERDUTY_API_TOKEN=%s\nPAGERDUTY_FROM_EMAIL=incident-bot@example.com\n", pdtest.DemoToken)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return 0
}
