package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// TestHelpExitsZero: asking for help is not an error.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, code := runBot(t, nil, "", args...)
		if code != 0 || !strings.HasPrefix(out, "usage: bot") {
			t.Errorf("bot %v: exit %d\n%s", args, code, out)
		}
	}
	if _, errOut, code := runBot(t, nil, "", "--frobnicate"); code != 2 || !strings.Contains(errOut, "usage: bot") {
		t.Errorf("an unknown flag: exit %d\n%s", code, errOut)
	}
}

// TestShellUsesItsOwnDatabase: trying the shell on a machine configured
// for a real bot (BOT_DB set) adds nothing to that bot's database.
func TestShellUsesItsOwnDatabase(t *testing.T) {
	env := map[string]string{"BOT_DB": t.TempDir() + "/real.db", "XDG_STATE_HOME": t.TempDir()}
	_, errOut, code := runBot(t, env, "/incident declare sev2 just trying\n", "shell", "--user", "alice")
	if code != 0 || !strings.Contains(errOut, "using its own database "+env["XDG_STATE_HOME"]+"/incident-bot/shell.db") {
		t.Fatalf("shell: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(env["BOT_DB"]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the shell touched the real database: %v", err)
	}
	// The shell's own database keeps its incidents between sessions.
	out, _, _ := runBot(t, env, "/incident list all\n", "shell", "--user", "alice")
	if !strings.Contains(out, "just trying") {
		t.Fatalf("second session:\n%s", out)
	}
}
