package config

import (
	"os"
	"strings"
	"testing"
)

// TestEveryVariableIsDocumented keeps the README's configuration reference
// in step with the variables the bot reads: they are its public interface.
func TestEveryVariableIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, name := range append(EnvNames(), "BOT_CONFIG") {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README.md does not document %s", name)
		}
	}
}
