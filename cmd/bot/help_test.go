package main

import (
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
