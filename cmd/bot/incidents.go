package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/shell"
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
	if err := shell.IncidentTable(stdout, incs, cfg.Location); err != nil {
		return exitFail
	}
	return exitOK
}
