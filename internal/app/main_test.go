package app_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builtBot is the bot binary, built once per test run for the tests that
// run replicas as real processes (see botBinary).
var builtBot struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// botBinary builds cmd/bot the first time a test asks for it and returns
// its path; TestMain removes it when the run ends.
func botBinary(t testing.TB) string {
	t.Helper()
	builtBot.once.Do(func() {
		builtBot.dir, builtBot.err = os.MkdirTemp("", "incident-bot-test-")
		if builtBot.err != nil {
			return
		}
		builtBot.path = filepath.Join(builtBot.dir, "bot")
		out, err := exec.Command("go", "build", "-o", builtBot.path, "github.com/incidentbot/incident-bot/cmd/bot").CombinedOutput()
		if err != nil {
			builtBot.err = fmt.Errorf("building the bot: %v\n%s", err, out)
		}
	})
	if builtBot.err != nil {
		t.Fatal(builtBot.err)
	}
	return builtBot.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBot.dir != "" {
		_ = os.RemoveAll(builtBot.dir)
	}
	os.Exit(code)
}
