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

// `/home` in the shell shows what Slack's Home tab would: the open
// incidents, yours first, and your open follow-ups.
func TestShellHome(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.db")
	script := strings.Join([]string{
		"/incident declare sev3 Search slow",
		"/incident followup reindex nightly",
		"/incident followup assign 1 @alice",
		"/user alice",
		"/incident declare sev1 Checkout down",
		"/home",
	}, "\n") + "\n"
	out, errOut, code := runBot(t, map[string]string{"BOT_DB": db}, script, "shell", "--db", db, "--user", "bob")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	_, home, _ := strings.Cut(out, "> /home\n")
	mine, other := strings.Index(home, "INC-2 SEV1"), strings.Index(home, "INC-1 SEV3")
	if !strings.Contains(home, "Open incidents: 2, you hold a role in 1") || mine < 0 || other < mine ||
		!strings.Contains(home, "you are the commander") || !strings.Contains(home, "INC-1 #1 [open] reindex nightly · owner @alice") {
		t.Errorf("/home:\n%s", home)
	}
}
