package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	slack := slacktest.NewServer(slacktest.Config{EnforceRateLimits: *enforce})
	defer slack.Close()
	pd := pdtest.NewServer(pdtest.Config{Token: "loadtest-pd-token"})
	defer pd.Close()
	// No PagerDuty API token: the storm's incidents exist only in the
	// webhooks, so the bot's calls back to PagerDuty would be refused.
	fmt.Fprintf(stdout, "SLACK_API_URL=%s\nSLACK_BOT_TOKEN=%s\nPAGERDUTY_API_URL=%s\nPAGERDUTY_EVENTS_URL=%s\n",
		slack.APIURL(), slack.BotToken(), pd.URL, pd.URL)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return 0
}
