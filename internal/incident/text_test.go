package incident_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/incidentbot/incident-bot/internal/incident"
)

func TestCleanText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"db down", "db down"},
		{"R&D <b> 100%", "R&D <b> 100%"},
		{"nul\x00here", "nulhere"},
		{"\x1b[2Jcleared", "[2Jcleared"},
		{"\x1b]8;;https://evil.example\x07link\x1b]8;;\x07", "]8;;https://evil.examplelink]8;;"},
		{"bell\x07 del\x7f c1\u0085\u009b", "bell del c1"},
		{"admin\u202egnp.exe", "admingnp.exe"},
		{"\u2066isolate\u2069 \u200emark\u200f \u061c", "isolate mark "},
		{"line1\r\nline2\rline3\u2028line4\u2029line5", "line1\nline2\nline3\nline4\nline5"},
		{"tab\there", "tab here"},
		{"bad \xff byte", "bad \ufffd byte"},
		{"emoji 👩‍🚒 and ZWJ kept, 日本語", "emoji 👩‍🚒 and ZWJ kept, 日本語"},
	} {
		got := incident.CleanText(c.in)
		if got != c.want {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := incident.CleanText(got); again != got {
			t.Errorf("CleanText is not idempotent on %q: %q", got, again)
		}
	}
}

func TestCleanLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Checkout   down ", "Checkout down"},
		{"title\n# Heading\r\n```", "title # Heading ```"},
		{"a\x1b[2J\tb\u2028c", "a[2J b c"},
	} {
		if got := incident.CleanLine(c.in); got != c.want {
			t.Errorf("CleanLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzCleanText: whatever comes in, what comes out is valid UTF-8 with no
// control character but newline and no bidirectional formatting
// character, and cleaning it again changes nothing.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "ok", "\x00\x1b[31m\u202e\r\n\t\xff\xfe", "\u2028\u2029\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := incident.CleanText(s)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 out of %q: %q", s, got)
		}
		for _, r := range got {
			if r != '\n' && (unicode.IsControl(r) || incident.IsBidiControl(r)) {
				t.Fatalf("%U survives in %q (from %q)", r, got, s)
			}
		}
		if again := incident.CleanText(got); again != got {
			t.Fatalf("not idempotent: %q -> %q", got, again)
		}
		if line := incident.CleanLine(s); strings.ContainsAny(line, "\n\t") {
			t.Fatalf("CleanLine(%q) = %q keeps a line break", s, line)
		}
	})
}
