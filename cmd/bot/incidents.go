package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/shell"
)

// incidentsCmd: bot incidents [--open] [--json] [filters], where the
// filters are the words `list` takes (all, sev1, service=NAME, since=7d,
// page=N; not mine, which needs a chat user). Without --open or filters it
// lists every incident, as it always has.
func incidentsCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var openOnly, asJSON bool
	fs := flag.NewFlagSet("bot incidents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&configPath, "config", configPath, "YAML configuration file")
	fs.BoolVar(&openOnly, "open", false, "only open incidents")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	words := fs.Args()
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			fmt.Fprintf(stderr, "bot incidents: put the flags (%s) before the filters\n", w)
			return exitConfig
		}
		if strings.EqualFold(w, "mine") {
			fmt.Fprintln(stderr, "bot incidents: `mine` needs a chat user; use it in Slack or the shell")
			return exitConfig
		}
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	if !openOnly {
		words = append([]string{"all"}, words...)
	}
	q, err := incident.ParseListQuery(words, time.Now(), cfg.Location)
	if err != nil {
		fmt.Fprintf(stderr, "bot incidents: %s\n", incident.ErrorMessage(err))
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := app.AdminCLI(cfg).Incidents(ctx, !q.All)
	if err != nil {
		fmt.Fprintf(stderr, "bot incidents: %s\n", cliErrorText(err))
		return exitFail
	}
	var incs []*incident.Incident
	for _, inc := range found {
		if q.Match(inc, "") {
			incs = append(incs, inc)
		}
	}
	if slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(strings.ToLower(w), "page=") }) {
		slices.SortFunc(incs, func(a, b *incident.Incident) int { return cmp.Compare(b.Number, a.Number) }) // newest first, as `list all`
		incs, _ = q.PageOf(incs)
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
