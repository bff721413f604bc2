package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrateCommandLine: usage mistakes are exit 2 with the syntax; a
// store name that is neither bolt nor etcd, or etcd without endpoints, is
// a clear error that changes nothing.
func TestMigrateCommandLine(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BOT_DB": filepath.Join(dir, "bot.db")}
	for _, args := range [][]string{{"migrate"}, {"migrate", "bolt"}, {"migrate", "bolt", "etcd", "extra"}, {"migrate", "--forse", "bolt", "etcd"}} {
		_, stderr, code := runBot(t, env, "", args...)
		if code != exitConfig || !strings.Contains(stderr, "usage: bot migrate [--force] FROM TO") {
			t.Errorf("bot %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
	_, stderr, code := runBot(t, env, "", "migrate", "bolt", "ectd")
	if code != exitFail || !strings.Contains(stderr, `TO "ectd" names no store`) {
		t.Errorf("bad store name: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "bot.db")); err == nil {
		t.Error("a refused migration created BOT_DB")
	}
	_, stderr, code = runBot(t, env, "", "migrate", "etcd", "bolt")
	if code != exitFail || !strings.Contains(stderr, "BOT_ETCD_ENDPOINTS is not set") {
		t.Errorf("etcd without endpoints: exit %d, stderr %q", code, stderr)
	}
}
