package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdembed"
	"github.com/incidentbot/incident-bot/internal/pagerduty/pdtest"
	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// modes compares the bbolt mode with the etcd mode in one run: the same
// storm (signed webhooks with slash commands throughout) against a real
// `bot serve` on a bbolt file and on an embedded one-member etcd, started
// in this process on loopback, alternating the modes round by round, and
// reports etcd's results as ratios to bbolt's. It then measures failover
// (runFailover) against #16's goal of 15 seconds.
func modes(args []string, stdout, stderr io.Writer) int {
	var c stormConfig
	fs := flag.NewFlagSet("loadtest modes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bot := fs.String("bot", "", "the bot binary")
	rounds := fs.Int("rounds", 2, "storms per mode (alternating bolt, etcd, bolt, ...)")
	fs.IntVar(&c.webhooks, "webhooks", 2000, "webhook deliveries per storm")
	fs.IntVar(&c.incidents, "incidents", 50, "distinct PagerDuty incidents they are about")
	fs.IntVar(&c.concurrency, "concurrency", 32, "concurrent webhook senders")
	fs.DurationVar(&c.commandEvery, "command-every", 20*time.Millisecond, "interval between slash commands")
	kills := fs.Int("kills", 10, "leader SIGKILLs in the failover measurement (0: skip it)")
	ttl := fs.Duration("leader-ttl", 10*time.Second, "BOT_ETCD_LEADER_TTL of the failover measurement (the default)")
	if err := fs.Parse(args); err != nil || *bot == "" {
		fmt.Fprintln(stderr, "usage: loadtest modes --bot BINARY [--rounds 2 --webhooks 2000 --incidents 50 --concurrency 32 --kills 10 --leader-ttl 10s]")
		return 2
	}
	c.pdSecret, c.slackSecret, c.channel = "modes-webhook-secret", "modes-signing-secret", "CLOADTEST"
	report, err := runModes(context.Background(), *bot, *rounds, c, *kills, *ttl)
	fmt.Fprint(stdout, report)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest modes: %v\n", err)
		return 1
	}
	return 0
}

func runModes(ctx context.Context, bot string, rounds int, c stormConfig, kills int, ttl time.Duration) (string, error) {
	dir, err := os.MkdirTemp("", "loadtest-modes-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	slack := slacktest.NewServer(slacktest.Config{EnforceRateLimits: true})
	defer slack.Close()
	pd := pdtest.NewServer(pdtest.Config{Token: "loadtest-pd-token"})
	defer pd.Close()
	etcd, endpoint, err := etcdembed.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		return "", err
	}
	defer etcd.Close()
	sink, stopSink, err := responseSink()
	if err != nil {
		return "", err
	}
	defer stopSink()
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: c.concurrency + 8, MaxConnsPerHost: c.concurrency + 8},
	}
	env := append(os.Environ(), "BOT_LOG_LEVEL=warn", "BOT_RUNBOOKS_DIR=", "SLACK_API_URL="+slack.APIURL(), "SLACK_BOT_TOKEN="+slack.BotToken(),
		"PAGERDUTY_API_URL="+pd.URL, "PAGERDUTY_EVENTS_URL="+pd.URL,
		"SLACK_SIGNING_SECRET="+c.slackSecret, "PAGERDUTY_WEBHOOK_SECRET="+c.pdSecret)
	var b strings.Builder
	fmt.Fprintf(&b, "modes: %d storms per mode of %d webhooks about %d incidents, %d senders, a slash command every %s; etcd: 1 embedded member\n",
		rounds, c.webhooks, c.incidents, c.concurrency, c.commandEvery)
	type totals struct{ intake, cmds result }
	sum := map[string]*totals{"bolt": {}, "etcd": {}}
	for i := range 2 * rounds {
		mode := []string{"bolt", "etcd"}[i%2]
		modeEnv := append(env, "BOT_DB="+filepath.Join(dir, fmt.Sprintf("bot-%d.db", i)))
		if mode == "etcd" {
			modeEnv = append(modeEnv, "BOT_STORE=etcd", "BOT_ETCD_ENDPOINTS="+endpoint, fmt.Sprintf("BOT_ETCD_PREFIX=/round-%d/", i))
		}
		c.target = ""
		intake, cmds, err := stormOnce(ctx, bot, modeEnv, client, sink, c, fmt.Sprintf("%s-%d", mode, i))
		if err != nil {
			return b.String(), fmt.Errorf("%s: %w", mode, err)
		}
		intake.name, cmds.name = mode+" webhook intake", mode+" slash command ack"
		b.WriteString(intake.String())
		b.WriteString(cmds.String())
		t := sum[mode]
		t.intake = merge(t.intake, intake)
		t.cmds = merge(t.cmds, cmds)
	}
	bo, et := sum["bolt"], sum["etcd"]
	fmt.Fprintf(&b, "etcd / bolt, all rounds: intake throughput %.2f, intake p50 %.1f, intake p99 %.1f, slash command ack p99 %.1f\n",
		et.intake.throughput()/bo.intake.throughput(), ratio(et.intake.pct(50), bo.intake.pct(50)),
		ratio(et.intake.pct(99), bo.intake.pct(99)), ratio(et.cmds.pct(99), bo.cmds.pct(99)))
	if kills > 0 {
		report, err := runFailover(ctx, bot, env, dir, kills, ttl, c.pdSecret)
		b.WriteString(report)
		if err != nil {
			return b.String(), fmt.Errorf("failover: %w", err)
		}
	}
	return b.String(), nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, time.Microsecond)) }

func merge(a, b result) result {
	a.sent += b.sent
	a.ok += b.ok
	a.elapsed += b.elapsed
	a.latencies = append(a.latencies, b.latencies...)
	if a.statuses == nil {
		a.statuses = map[int]int{}
	}
	for k, v := range b.statuses {
		a.statuses[k] += v
	}
	return a
}

// stormOnce starts `bot serve` with env, waits until it is ready, sends
// the storm with slash commands throughout, and stops the bot.
func stormOnce(ctx context.Context, bot string, env []string, client *http.Client, sink string, c stormConfig, run string) (result, result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, result{}, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bot, "serve")
	cmd.Env = append(env, "BOT_ADDR="+addr, "BOT_ADMIN_SOCKET="+filepath.Join(os.TempDir(), "loadtest-modes-"+run+".sock"))
	if err := cmd.Start(); err != nil {
		return result{}, result{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	c.target = "http://" + addr
	ready := false
	for start := time.Now(); time.Since(start) < 30*time.Second && !ready; time.Sleep(20 * time.Millisecond) {
		if resp, err := client.Get(c.target + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
	}
	if !ready {
		return result{}, result{}, fmt.Errorf("bot serve did not become ready within 30s")
	}
	cmdCtx, stopCommands := context.WithCancel(ctx)
	cmds := make(chan result, 1)
	go func() { cmds <- sendCommands(cmdCtx, client, c, sink) }()
	bodies := webhookBodies(run+strconv.FormatInt(time.Now().UnixNano()%1e6, 36), c.webhooks, c.incidents)
	intake := sendWebhooks(ctx, client, "intake", c.target+"/webhooks/pagerduty", c.pdSecret, "modes-"+run, bodies, c.concurrency)
	stopCommands()
	return intake, <-cmds, nil
}
