// Command bot is the incident-management ChatOps bot. See README.md.
//
//	bot serve                     run the bot (HTTP server, job runner)
//	bot shell                     a local console that behaves like Slack
//	bot incidents [--open] [--json]
//	bot followups [--open] [--owner U] [--json]
//	bot version
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // BOT_TIMEZONE works in minimal images without zoneinfo

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/shell"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// shutdownLimit bounds a graceful shutdown; after it the process exits.
const shutdownLimit = 30 * time.Second

const usage = `usage: bot [--config FILE] <command> [flags]

commands:
  serve                          run the bot: HTTP server on BOT_ADDR, job runner
  shell [--user NAME] [--db FILE] local console that behaves like Slack (its own database)
  incidents [--open] [--json] [sev1] [service=NAME] [since=7d] [page=N]
                                 list incidents (works while serve runs)
  followups [--open] [--owner U] [--json]
                                 list follow-ups across incidents, oldest first
  doctor [--manifest FILE]       check the Slack and PagerDuty setup (and the app manifest)
  runbooks validate [DIR]        check runbook files (default BOT_RUNBOOKS_DIR)
  postmortem INC-n [-o FILE]     print or write an incident's postmortem draft
  digest [--week 2026-W47 | --from DATE --to DATE] [--post] [--chart FILE]
                                 print (or post) the incident digest of a period
  handover                       print the on-call handover of the current shift
  backup [--force] FILE          consistent hot backup of the database
  restore FILE                   restore a backup (with the bot stopped)
  check                          verify the database file
  migrate [--force] FROM TO      copy bolt:PATH into etcd or back (stop the bot first)
  version                        print the version

Configuration comes from environment variables and an optional YAML file
(--config or BOT_CONFIG); see README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exit codes
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Every byte the CLI prints goes through one terminal-escaping writer.
	tout, terr := shell.NewTerminalWriter(stdout), shell.NewTerminalWriter(stderr)
	defer func() { _ = tout.Flush(); _ = terr.Flush() }()
	stdout, stderr = tout, terr
	global := flag.NewFlagSet("bot", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {
		if !slices.ContainsFunc(args, isHelpFlag) {
			fmt.Fprint(stderr, usage)
		}
	}
	configPath := global.String("config", "", "YAML configuration file")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Asking for help is not a mistake: the usage (which the flag
			// package printed to stderr) also on stdout, and exit 0.
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return exitConfig
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitConfig
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	if _, known := subcommands[cmd]; (known || cmd == "serve" || cmd == "shell") && wantsHelp(rest) {
		// `bot <command> --help` is a question, not a mistake: the
		// command's usage on stdout, exit 0, as for `bot --help`.
		subHelp(*configPath, cmd, stdout)
		return exitOK
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "serve":
		return serve(*configPath, rest, stderr)
	case "shell":
		return runShell(*configPath, rest, stdin, stdout, stderr)
	}
	if sub, ok := subcommands[cmd]; ok {
		return sub(*configPath, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bot: unknown command %q\n\n%s", cmd, usage)
	return exitConfig
}

// subcommands are the commands that take (configPath, args, stdout, stderr),
// each in its own file.
var subcommands = map[string]func(configPath string, args []string, stdout, stderr io.Writer) int{
	"incidents":  incidentsCmd,
	"followups":  followupsCmd,
	"doctor":     doctorCmd,
	"runbooks":   runbooksCmd,
	"postmortem": postmortemCmd,
	"digest":     digestCmd,
	"handover":   handoverCmd,
	"backup":     backupCmd,
	"restore":    restoreCmd,
	"check":      checkCmd,
	"migrate":    migrateCmd,
}

// wantsHelp reports whether a command's arguments ask for help (a help
// flag before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

// subHelp prints a command's lines of the usage above and its flags to w
// (the command prints its flags when given -h).
func subHelp(configPath, cmd string, w io.Writer) {
	lines := strings.Split(usage, "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == cmd && strings.HasPrefix(l, "  ") {
			fmt.Fprintf(w, "usage: bot %s\n", strings.TrimSpace(l))
			for _, more := range lines[i+1:] {
				if !strings.HasPrefix(more, "        ") {
					break
				}
				fmt.Fprintf(w, "  %s\n", strings.TrimSpace(more))
			}
		}
	}
	var flags bytes.Buffer
	help := []string{"-h"}
	switch cmd {
	case "serve":
		serve(configPath, help, &flags)
	case "shell":
		runShell(configPath, help, strings.NewReader(""), &flags, &flags)
	default:
		subcommands[cmd](configPath, help, &flags, &flags)
	}
	// The flag package's "Usage of bot x:" (or the command's own usage
	// line, already printed above) becomes a plain heading.
	if _, defaults, ok := strings.Cut(flags.String(), "\n"); ok && strings.TrimSpace(defaults) != "" {
		fmt.Fprintf(w, "\nflags:\n%s", defaults)
	}
}

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--h" }

func versionString() string {
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	return fmt.Sprintf("incident-bot %s%s (%s %s/%s)", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// subFlags parses a subcommand's flags, accepting --config there too.
func subFlags(name string, configPath *string, args []string, stderr io.Writer, define func(*flag.FlagSet)) bool {
	fs := flag.NewFlagSet("bot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(configPath, "config", *configPath, "YAML configuration file")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bot %s: unexpected argument %q\n", name, fs.Arg(0))
		return false
	}
	return true
}

// printJSON writes v as indented JSON for `bot <name> --json`.
func printJSON(name string, v any, stdout, stderr io.Writer) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	// Text as it is ("R&D", not "R\u0026D"): this is for people and jq,
	// not for embedding in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "bot %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

func loadConfig(path string, stderr io.Writer) (config.Config, bool) {
	cfg, err := config.Load(path, config.OSSource())
	if err != nil {
		fmt.Fprintf(stderr, "bot: %v\n", err)
		return cfg, false
	}
	return cfg, true
}

func newLogger(cfg config.Config, w io.Writer, minLevel zapcore.Level) *zap.Logger {
	level, _ := zapcore.ParseLevel(cfg.LogLevel)
	level = max(level, minLevel)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level), zap.ErrorOutput(zapcore.AddSync(w)))
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one,
// or a shutdown that overruns shutdownLimit, exits at once.
func signalContext(log *zap.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			log.Info("signal received; shutting down", zap.String("signal", s.String()))
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal; exiting now", zap.String("signal", s.String()))
			os.Exit(exitFail)
		case <-time.After(shutdownLimit):
			log.Error("shutdown took too long; exiting now", zap.Duration("limit", shutdownLimit))
			os.Exit(exitFail)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}

func serve(configPath string, args []string, stderr io.Writer) int {
	if !subFlags("serve", &configPath, args, stderr, nil) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(cfg, stderr, zapcore.DebugLevel)
	defer func() { _ = log.Sync() }()
	ctx, stop := signalContext(log)
	defer stop()

	a, err := app.Open(cfg, log, app.Options{})
	if err != nil {
		log.Error("starting", zap.Error(err))
		return exitFail
	}
	serveErr := a.Serve(ctx, nil)
	if err := a.Close(); err != nil {
		log.Error("closing database", zap.Error(err))
	}
	if serveErr != nil {
		log.Error("serve failed", zap.Error(serveErr))
		return exitFail
	}
	return exitOK
}

func runShell(configPath string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	who := defaultUser()
	db := ""
	if !subFlags("shell", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&who, "user", who, "your user name in the shell")
		fs.StringVar(&db, "db", "", "the shell's database `file` (default: its own, never BOT_DB)")
	}) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	// Trying the bot must never add demo incidents to a real bot's data:
	// the shell uses a database of its own unless told otherwise.
	if db == "" {
		var err error
		if db, err = shellDB(); err != nil {
			fmt.Fprintf(stderr, "bot shell: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stderr, "bot shell: using its own database %s (--db FILE to choose another)\n", db)
	}
	cfg.DB, cfg.AdminSocket = db, db+".sock"
	if cfg.AnnounceChannel == "" {
		cfg.AnnounceChannel = "incidents" // so the shell shows announcements too
	}
	// The transcript goes to stdout; only warnings and errors are logged.
	log := newLogger(config.Config{LogFormat: "console", LogLevel: cfg.LogLevel}, stderr, zapcore.WarnLevel)
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := app.Open(cfg, log, app.Options{Chat: shell.NewChat(stdout)})
	if err != nil {
		fmt.Fprintf(stderr, "bot shell: %v\n", err)
		return exitFail
	}
	defer a.Close()
	err = a.Shell(ctx, app.ShellOptions{In: stdin, Out: stdout, User: who, Echo: !isTerminal(stdin)})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "bot shell: %v\n", err)
		return exitFail
	}
	return exitOK
}

// shellDB is the shell's own database: $XDG_STATE_HOME/incident-bot/shell.db,
// or ~/.local/state/incident-bot/shell.db.
func shellDB() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for the shell's database; choose one with --db: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "incident-bot")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s for the shell's database: %w", dir, err)
	}
	return filepath.Join(dir, "shell.db"), nil
}

func defaultUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "operator"
}

// isTerminal reports whether r is an interactive terminal (a character
// device), as opposed to a pipe or a file of scripted commands.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
