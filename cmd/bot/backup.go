package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
)

// backupCmd: bot backup [--force] FILE. A consistent hot backup, taken
// from the running bot when it holds the database, and checked before
// reporting success. An existing FILE is replaced only with --force.
func backupCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var opts admin.BackupOptions
	file, ok := oneFileArg("backup [--force]", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&opts.Force, "force", false, "replace FILE if it exists")
	})
	if !ok {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	st, err := app.AdminCLI(cfg).Backup(context.Background(), file, opts)
	if err != nil {
		fmt.Fprintf(stderr, "bot backup: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "backup written to %s and checked: %s\n", file, describe(st))
	return exitOK
}

// restoreCmd: bot restore FILE. Checks the backup, then replaces BOT_DB,
// keeping the old file under a new name (BOT_DB.before-restore-<UTC time>)
// that it prints. The bot must be stopped.
func restoreCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	file, ok := oneFileArg("restore", &configPath, args, stderr, nil)
	if !ok {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	if cfg.Store == config.StoreEtcd {
		fmt.Fprintln(stderr, "bot restore: BOT_STORE=etcd: restore the etcd cluster with `etcdctl snapshot restore` (see deploy/README.md); bot restore replaces a bbolt file")
		return exitFail
	}
	r, err := boltstore.Restore(file, cfg.DB, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "bot restore: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "restored %s from %s: %s\n", cfg.DB, file, describe(admin.Stats(r.Stats)))
	if r.Previous != "" {
		fmt.Fprintf(stdout, "the previous database is kept as %s\n", r.Previous)
	}
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
		st  admin.Stats
		err error
	)
	if file != "" {
		var bst boltstore.Stats
		bst, err = boltstore.CheckFile(file, 0)
		st = admin.Stats(bst)
	} else {
		cfg, ok := loadConfig(configPath, stderr)
		if !ok {
			return exitConfig
		}
		file = cfg.DB
		if cfg.Store == config.StoreEtcd {
			file = "etcd " + strings.Join(cfg.Etcd.Endpoints, ",") + " " + cfg.Etcd.Prefix
		}
		st, err = app.AdminCLI(cfg).Check(context.Background())
	}
	if err != nil {
		fmt.Fprintf(stderr, "bot check: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s is consistent: %s\n", file, describe(st))
	return exitOK
}

// oneFileArg parses `bot NAME [flags] FILE`; synopsis is NAME with its
// flags, for the usage line.
func oneFileArg(synopsis string, configPath *string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (string, bool) {
	if len(args) == 0 || args[len(args)-1] == "" || args[len(args)-1][0] == '-' {
		fmt.Fprintf(stderr, "usage: bot %s FILE\n", synopsis)
		return "", false
	}
	file := args[len(args)-1]
	name, _, _ := strings.Cut(synopsis, " ")
	return file, subFlags(name, configPath, args[:len(args)-1], stderr, define)
}

func describe(st admin.Stats) string {
	return fmt.Sprintf("schema %d, %d incidents, %d timeline events, %d pending jobs, %d failed jobs, %.1f MiB",
		st.SchemaVersion, st.Incidents, st.Events, st.Jobs, st.DeadJobs, float64(st.SizeBytes)/(1<<20))
}
