package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
)

func incidentsCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var openOnly, asJSON bool
	if !subFlags("incidents", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&openOnly, "open", false, "only open incidents")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	incs, err := app.AdminCLI(cfg).Incidents(ctx, openOnly)
	if err != nil {
		fmt.Fprintf(stderr, "bot incidents: %v\n", err)
		return exitFail
	}
	if asJSON {
		return printJSON("incidents", incs, stdout, stderr)
	}
	if len(incs) == 0 {
		fmt.Fprintln(stdout, "no incidents")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEV\tSTATUS\tDECLARED\tCHANNEL\tTITLE")
	for _, inc := range incs {
		ch := inc.Chat.ChannelName
		if ch == "" {
			ch = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID(), inc.Severity, inc.Status,
			inc.DeclaredAt.In(cfg.Location).Format("2006-01-02 15:04"), ch, inc.Title)
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}
