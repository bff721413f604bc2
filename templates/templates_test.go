package templates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinTemplatesParse(t *testing.T) {
	for _, name := range []string{Postmortem, Digest} {
		text, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(text) < 200 {
			t.Errorf("%s is suspiciously short (%d bytes)", name, len(text))
		}
	}
	if _, err := Builtin("nope.tmpl"); err == nil {
		t.Error("a missing built-in template is not an error")
	}
}

func TestRenderPrefersTheOperatorsCopy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, Digest), []byte("custom {{.}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, warn, err := Render(dir, Digest, Funcs(), "data")
	if err != nil || warn != nil || string(out) != "custom data\n" {
		t.Errorf("Render = %q, %v, %v", out, warn, err)
	}
}

func TestErrorNamesTemplateAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, Digest)
	if err := os.WriteFile(path, []byte("line one\nline two\n  {{.Missing.Field}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, warn, err := Render(dir, Digest, Funcs(), struct{ Present int }{})
	if err == nil {
		// The built-in digest template cannot run on this data either: err
		// is the bug case, and warn still names the operator's file.
		t.Fatal("the built-in template ran on the wrong data")
	}
	var te *Error
	if !errors.As(warn, &te) || te.Template != path || te.Line != 3 {
		t.Fatalf("warn = %#v", warn)
	}
	want := "template " + path + ", line 3: executing"
	if !strings.HasPrefix(warn.Error(), want) {
		t.Errorf("warn = %q, want prefix %q", warn.Error(), want)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{45*time.Second + 400*time.Millisecond, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m 0s"},
		{4*time.Minute + 12*time.Second, "4m 12s"},
		{time.Hour + 23*time.Minute + 59*time.Second, "1h 23m"},
		{49*time.Hour + 30*time.Minute, "2d 1h"},
		{-(3*time.Minute + 5*time.Second), "-3m 5s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFuncs(t *testing.T) {
	if got := cell("a | b\r\nc "); got != `a \| b<br>c` {
		t.Errorf("cell = %q", got)
	}
	if got := indent(2, "one\ntwo\n"); got != "one\n  two" {
		t.Errorf("indent = %q", got)
	}
	if got := quote("one\n\ntwo"); got != "> one\n>\n> two" {
		t.Errorf("quote = %q", got)
	}
}
