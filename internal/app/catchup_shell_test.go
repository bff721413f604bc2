package app_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/shell"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// steppedInput hands the console one line per Read and runs before(line)
// first, so a script can move the clock between commands.
type steppedInput struct {
	lines  []string
	before func(line string)
}

func (s *steppedInput) Read(p []byte) (int, error) {
	if len(s.lines) == 0 {
		return 0, io.EOF
	}
	line := s.lines[0]
	s.lines = s.lines[1:]
	s.before(line)
	return copy(p, line+"\n"), nil
}

// TestCatchupInTheShell runs `/incident catchup` in `bot shell` against a
// real store with a clock the script moves: the plain-text catch-up, with
// and without a since, and the errors for a mistyped since.
func TestCatchupInTheShell(t *testing.T) {
	clock := incidenttest.NewClock(time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC))
	env := map[string]string{"BOT_DB": filepath.Join(t.TempDir(), "bot.db"), "BOT_ANNOUNCE_CHANNEL": "incidents"}
	cfg, err := config.Load("", config.Source{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile, Lstat: os.Lstat})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := app.Open(cfg, zap.NewNop(), app.Options{Clock: clock, Chat: shell.NewChat(&out)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	minutes := map[string]time.Duration{ // how long before each line
		"/incident note error rate at 40% <!channel>": 3 * time.Minute,
		"/incident sev 1":           2 * time.Minute,
		"/incident role comms @bob": 1 * time.Minute,
		"/incident update Rolling back the 13:55 deploy @everyone": 4 * time.Minute,
		"/incident impact EU customers cannot pay":                 1 * time.Minute,
		"/incident followup add a canary stage":                    5 * time.Minute,
		"/incident mitigate rollback finished":                     10 * time.Minute,
		"/incident catchup":                                        20 * time.Minute,
	}
	in := &steppedInput{lines: []string{
		"/incident declare sev2 Checkout is failing",
		"/incident note error rate at 40% <!channel>",
		"/incident sev 1",
		"/incident role comms @bob",
		"/incident update Rolling back the 13:55 deploy @everyone",
		"/incident impact EU customers cannot pay",
		"/incident followup add a canary stage",
		"/incident mitigate rollback finished",
		"/incident catchup",
		"/incident catchup 30m",
		"/incident catchup 14:20",
		"/incident catchup 30mm",
		"/incident catchup 25:00",
		"/incident catchup 2099-01-01T00:00:00Z",
	}, before: func(line string) { clock.Advance(minutes[line]) }}
	if err := a.Shell(context.Background(), app.ShellOptions{In: in, Out: &out, User: "alice", Echo: true}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// From the first catch-up on: what the person saw.
	got = got[strings.Index(got, "#inc-1-checkout-is-failing> /incident catchup\n"):]
	incidenttest.Golden(t, "shell-catchup.golden", []byte(got), *updateGolden)
	for _, bad := range []string{"<!channel>", "<@"} {
		if strings.Contains(got, bad) {
			t.Errorf("the shell shows markup %q:\n%s", bad, got)
		}
	}
}
