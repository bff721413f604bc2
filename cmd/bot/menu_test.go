package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// `/incident` typed alone in the shell shows the menu Slack shows as
// buttons, as text with what to type.
func TestShellIncidentAloneShowsTheMenu(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.db")
	out, errOut, code := runBot(t, map[string]string{"BOT_DB": db}, "/incident\n/incident   \n", "shell", "--db", db, "--user", "alice")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(out, "What do you want to do?"); n != 2 {
		t.Errorf("the menu shows %d times, want 2:\n%s", n, out)
	}
	for _, want := range []string{"Declare an incident: `declare [sev1-4] <title>`", "List open incidents: `list`", "My incidents: `list mine`", "Help: `help`"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
}
