package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/digest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// digestCmd: bot digest [--week 2026-W47 | --from DATE --to DATE] [--post].
// Prints the digest of a period (default: last week) from the database,
// or through the running bot when it holds the database. --post asks the
// running bot to post it to the digest channel.
func digestCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var (
		req   admin.DigestRequest
		post  bool
		chart string
	)
	if !subFlags("digest", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Week, "week", "", "the ISO `week`, like 2026-W47 (default: last week)")
		fs.StringVar(&req.From, "from", "", "the first `day` of the period, like 2026-11-01")
		fs.StringVar(&req.To, "to", "", "the last `day` of the period (included)")
		fs.BoolVar(&post, "post", false, "post the digest to the digest channel (needs the running bot)")
		fs.StringVar(&chart, "chart", "", "also write the PNG chart of the 12 weeks to the period's end to `FILE`")
	}) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	req.Chart = chart != "" && !post
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		reply admin.DigestReply
		err   error
	)
	if post {
		reply, err = app.AdminCLI(cfg).PostDigest(ctx, req, time.Now())
	} else {
		reply, err = app.AdminCLI(cfg).Digest(ctx, req, time.Now())
	}
	switch {
	case incident.ErrorCode(err) == incident.EINVALID:
		fmt.Fprintf(stderr, "bot digest: %s\n", incident.ErrorMessage(err))
		return exitConfig
	case err != nil:
		fmt.Fprintf(stderr, "bot digest: %s\n", cliErrorText(err))
		return exitFail
	}
	if reply.Warning != "" {
		fmt.Fprintf(stderr, "bot digest: warning: the custom template failed, so the built-in one was used: %s\n", reply.Warning)
	}
	if post {
		fmt.Fprintln(stdout, reply.Message)
		return exitOK
	}
	if chart != "" {
		if len(reply.Chart) == 0 {
			fmt.Fprintln(stderr, "bot digest: the running bot sent no chart; is it older than this command?")
			return exitFail
		}
		if err := os.WriteFile(chart, reply.Chart, 0o644); err != nil {
			fmt.Fprintf(stderr, "bot digest: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stderr, "bot digest: wrote the chart of %d weeks to %s to %s\n", digest.ChartWeeks, reply.Period, chart)
	}
	if _, err := io.WriteString(stdout, reply.Text); err != nil {
		return exitFail
	}
	return exitOK
}
