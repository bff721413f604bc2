#!/usr/bin/env bash
# Reproduces the measurements in docs/PERFORMANCE.md on this machine, with
# no internet: a real `bot serve` against the in-repo fake Slack (enforcing
# Slack's rate-limit tiers) and fake PagerDuty, driven by cmd/loadtest.
# Usage: docs/perf.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/bot" ./cmd/bot
go build -o "$work/loadtest" ./cmd/loadtest

echo "== fakes"
"$work/loadtest" fakes >"$work/fakes.env" &
for _ in $(seq 100); do [ -s "$work/fakes.env" ] && break; sleep 0.1; done
set -a; . "$work/fakes.env"; set +a
export BOT_DB="$work/bot.db" BOT_ADDR=127.0.0.1:18080 BOT_LOG_LEVEL=warn BOT_RUNBOOKS_DIR=runbooks \
  SLACK_SIGNING_SECRET=perf-signing-secret PAGERDUTY_WEBHOOK_SECRET=perf-webhook-secret

echo "== storm: 5,000 signed PagerDuty webhooks about 50 incidents, slash commands every 20 ms"
"$work/bot" serve 2>"$work/bot.log" &
bot=$!
for _ in $(seq 200); do curl -fs http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break; sleep 0.05; done
"$work/loadtest" storm --target http://127.0.0.1:18080 --pd-secret perf-webhook-secret \
  --slack-secret perf-signing-secret --webhooks 5000 --incidents 50 --concurrency 32 \
  --bot-pid "$bot" --drain-timeout 20m
kill -TERM "$bot"; wait "$bot" || true

echo "== time to war room: PagerDuty and Alertmanager, isolated and in an alert storm, with and without BOT_ALERT_STORM"
# Its own fakes (every Slack call held 75 ms, tiers enforced) and a fresh bot per phase.
"$work/loadtest" warroom --bot "$work/bot" --addr 127.0.0.1:18081 --slack-delay 75ms \
  --isolated 8 --storm 30 --storm-pages 3 --storm-guard 5/10m

echo "== start-up to ready with 100,000 incidents (1,000,000 timeline events)"
"$work/loadtest" seed --db "$work/seed.db" --incidents 100000 --events 10
"$work/loadtest" startup --bot "$work/bot" --db "$work/seed.db" --runs 5

echo "== bbolt against etcd (one embedded member): the same storm, alternating, ratios"
"$work/loadtest" modes --bot "$work/bot" --rounds 2 --webhooks 2000

echo "== micro-benchmarks"
go test -run '^$' -bench 'WebhookIntake' -benchtime 5000x ./internal/pagerduty/
go test -run '^$' -bench 'SlashCommandAck' -benchtime 40x ./internal/slack/
go test -run '^$' -bench 'BatchedIntakeWrite' -benchtime 5000x ./internal/boltstore/
go test -run '^$' -bench 'VerifyOnOpen' -benchtime 20x ./internal/boltstore/
