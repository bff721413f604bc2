package main

import (
	"context"
	"fmt"
	"io"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/boltstore"
)

// backupCmd: bot backup FILE. A consistent hot backup, taken from the
// running bot when it holds the database, and checked before reporting
// success.
func backupCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	file, ok := oneFileArg("backup", &configPath, args, stderr)
	if !ok {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	st, err := app.Backup(context.Background(), cfg, file)
	if err != nil {
		fmt.Fprintf(stderr, "bot backup: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "backup written to %s and checked: %s\n", file, describe(st))
	return exitOK
}

// restoreCmd: bot restore FILE. Checks the backup, then replaces BOT_DB
// (keeping the old file as BOT_DB.before-restore). The bot must be stopped.
func restoreCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	file, ok := oneFileArg("restore", &configPath, args, stderr)
	if !ok {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	st, err := boltstore.Restore(file, cfg.DB)
	if err != nil {
		fmt.Fprintf(stderr, "bot restore: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "restored %s from %s: %s (the previous file is %s.before-restore, if there was one)\n", cfg.DB, file, describe(st), cfg.DB)
	return exitOK
}

// checkCmd: bot check [FILE]. Verifies a database file (default BOT_DB;
// through the running bot when it holds it).
func checkCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var file string
	if len(args) > 0 && args[len(args)-1] != "" && args[len(args)-1][0] != '-' {
		file, args = args[len(args)-1], args[:len(args)-1]
	}
	if !subFlags("check", &configPath, args, stderr, nil) {
		return exitConfig
	}
	var (
		st  boltstore.Stats
		err error
	)
	if file != "" {
		st, err = boltstore.CheckFile(file, 0)
	} else {
		cfg, ok := loadConfig(configPath, stderr)
		if !ok {
			return exitConfig
		}
		file = cfg.DB
		st, err = app.Check(context.Background(), cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bot check: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s is consistent: %s\n", file, describe(st))
	return exitOK
}

func oneFileArg(name string, configPath *string, args []string, stderr io.Writer) (string, bool) {
	if len(args) == 0 || args[len(args)-1] == "" || args[len(args)-1][0] == '-' {
		fmt.Fprintf(stderr, "usage: bot %s FILE\n", name)
		return "", false
	}
	file := args[len(args)-1]
	return file, subFlags(name, configPath, args[:len(args)-1], stderr, nil)
}

func describe(st boltstore.Stats) string {
	return fmt.Sprintf("schema %d, %d incidents, %d timeline events, %d pending jobs, %d failed jobs, %.1f MiB",
		st.SchemaVersion, st.Incidents, st.Events, st.Jobs, st.DeadJobs, float64(st.SizeBytes)/(1<<20))
}
