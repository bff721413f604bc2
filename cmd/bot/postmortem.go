package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// postmortemCmd: bot postmortem INC-n [-o FILE]. Prints (or writes) the
// incident's postmortem draft as `/incident postmortem` renders it, without
// storing a version; it works while `bot serve` runs.
func postmortemCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	const usageLine = "usage: bot postmortem INC-n [-o FILE]"
	var outFile string
	fs := flag.NewFlagSet("bot postmortem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&configPath, "config", configPath, "YAML configuration file")
	fs.StringVar(&outFile, "o", "", "write the draft to `FILE` instead of printing it")
	// The incident may come before or after the flags.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitConfig
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintln(stderr, usageLine)
		return exitConfig
	}
	n, ok := incident.ParseID(positional[0])
	if !ok {
		fmt.Fprintf(stderr, "bot postmortem: %q is not an incident id like INC-7\n%s\n", positional[0], usageLine)
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := app.AdminCLI(cfg).Postmortem(ctx, n)
	if err != nil {
		fmt.Fprintf(stderr, "bot postmortem: %s\n", cliErrorText(err))
		return exitFail
	}
	if d.Warning != "" {
		fmt.Fprintf(stderr, "bot postmortem: warning: the custom template failed, so the built-in one was used: %s\n", d.Warning)
	}
	if outFile == "" {
		if _, err := io.WriteString(stdout, d.Draft); err != nil {
			return exitFail
		}
		return exitOK
	}
	if err := os.WriteFile(outFile, []byte(d.Draft), 0o644); err != nil {
		fmt.Fprintf(stderr, "bot postmortem: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "wrote the postmortem draft of %s to %s\n", d.Incident, outFile)
	return exitOK
}

// cliErrorText is the message for an error on the command line: a domain
// error's message, or the error itself (the operator may see the details).
func cliErrorText(err error) string {
	if incident.ErrorCode(err) != incident.EINTERNAL {
		return incident.ErrorMessage(err)
	}
	return err.Error()
}
