package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/shell"
)

// handoverCmd: bot handover. Prints the on-call handover of the current
// shift (since the last BOT_HANDOVER_SCHEDULE activation, or the last 24
// hours) from the database, or through the running bot when it holds the
// database.
func handoverCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	if !subFlags("handover", &configPath, args, stderr, nil) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reply, err := app.AdminCLI(cfg).Handover(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bot handover: %s\n", cliErrorText(err))
		return exitFail
	}
	if _, err := fmt.Fprintln(stdout, shell.Plain(reply.Text)); err != nil {
		return exitFail
	}
	return exitOK
}
