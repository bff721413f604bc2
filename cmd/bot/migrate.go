package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/incidentbot/incident-bot/internal/app"
)

// migrateCmd: bot migrate [--force] FROM TO, each bolt:PATH, bolt (BOT_DB)
// or etcd (BOT_ETCD_*). Copies everything, then checks the destination.
func migrateCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var opts app.MigrateOptions
	fs := flag.NewFlagSet("bot migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&configPath, "config", configPath, "YAML configuration file")
	fs.BoolVar(&opts.Force, "force", false, "replace what the destination holds")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bot migrate [--force] FROM TO   (FROM, TO: bolt:PATH, bolt for BOT_DB, or etcd for BOT_ETCD_*)")
	}
	// Flags may follow the stores too: bot migrate bolt:/x etcd --force.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return exitConfig
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 2 {
		fs.Usage()
		return exitConfig
	}
	opts.From, opts.To = pos[0], pos[1]
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := app.Migrate(ctx, cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "bot migrate: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "migrated %s to %s (%d incidents, %d timeline events, %d idempotency keys, %d pending jobs, %d failed jobs, %d document versions); checked: %s\n",
		opts.From, res.To, res.Records["Incident"], res.Records["Event"], res.Records["Key"], res.Records["Job"], res.Records["Dead"], res.Records["Doc"], describe(res.Stats))
	if res.Previous != "" {
		fmt.Fprintf(stdout, "what %s held before is kept as %s\n", res.To, res.Previous)
	}
	return exitOK
}
