package main

import (
	"fmt"
	"io"

	"github.com/incidentbot/incident-bot/internal/runbook"
)

// runbooksCmd: bot runbooks validate [DIR]. The same checks the bot runs
// when it loads the files, for teams' CI: one line per problem (file,
// field, reason), warnings for programs missing on this host, and a
// non-zero exit status when a file is invalid.
func runbooksCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(stderr, "usage: bot runbooks validate [DIR]")
		return exitConfig
	}
	args = args[1:]
	var dir string
	if len(args) > 0 && args[len(args)-1] != "" && args[len(args)-1][0] != '-' {
		dir, args = args[len(args)-1], args[:len(args)-1]
	}
	if !subFlags("runbooks validate", &configPath, args, stderr, nil) {
		return exitConfig
	}
	if dir == "" {
		cfg, ok := loadConfig(configPath, stderr)
		if !ok {
			return exitConfig
		}
		dir = cfg.RunbooksDir
	}
	report, hasErrors := runbook.ValidateDir(dir, runbook.LoadOptions{})
	fmt.Fprint(stdout, report)
	if hasErrors {
		return exitFail
	}
	return exitOK
}
