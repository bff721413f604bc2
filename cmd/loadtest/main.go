// Command loadtest drives a running bot with signed PagerDuty webhooks and
// Slack slash commands and reports throughput and latency percentiles. It
// also runs the same webhook load against a bare Go handler that only reads
// the body, in the same process and run, so results are reported as ratios
// that survive noisy machines. See docs/PERFORMANCE.md.
//
//	loadtest storm   --target URL --pd-secret S --slack-secret S [--webhooks 5000 --incidents 50 ...]
//	loadtest seed    --db FILE --incidents 100000 [--events 10]
//	loadtest startup --bot BINARY --db FILE [--addr 127.0.0.1:18080]
//	loadtest fakes   [--enforce-rate-limits] [--pagerduty-demo]   (fake Slack and PagerDuty for the bot under test)
//	loadtest modes   --bot BINARY [--rounds 2 --webhooks 2000 --kills 10]   (bbolt against etcd, and failover, same run)
//	loadtest warroom --bot BINARY [--slack-delay 75ms --isolated 8 --storm 30 --storm-guard 5/10m]  (time to war room)
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: loadtest storm|seed|startup|fakes|modes|warroom [flags]  (-h for each)")
		return 2
	}
	switch args[0] {
	case "storm":
		return storm(args[1:], stdout, stderr)
	case "seed":
		return seed(args[1:], stdout, stderr)
	case "startup":
		return startup(args[1:], stdout, stderr)
	case "fakes":
		return fakes(args[1:], stdout, stderr)
	case "modes":
		return modes(args[1:], stdout, stderr)
	case "warroom":
		return warroom(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "loadtest: unknown command %q\n", args[0])
	return 2
}
