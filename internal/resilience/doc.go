// Package resilience holds the bot's survival tests (issue 7, "Survive"):
//
//   - TestCrashStorm: a real `bot serve` process is killed with SIGKILL at
//     random moments (seeded) during a storm of signed PagerDuty webhooks and
//     slash commands, and restarted on the same database, many times over.
//   - TestSlackOutage and TestPagerDutyOutage: Slack, then PagerDuty, are
//     unreachable for what would be an hour of retries in production while
//     webhooks and commands keep coming; the work queues up, bounded, and
//     drains in order once they are back.
//   - TestAlertStorm: 5,000 PagerDuty events for 50 incidents against a fake
//     Slack that enforces its rate-limit tiers, with slash commands sent
//     throughout.
//
// The package has no code of its own: the tests drive the whole bot
// (internal/app, or the cmd/bot binary) over HTTP against the in-repo fakes
// (internal/slack/slacktest, internal/pagerduty/pdtest), on real bbolt files.
// They log the numbers docs/PERFORMANCE.md quotes (run with -v).
package resilience
