// Package templates carries the built-in Markdown templates of the
// postmortem draft and the weekly digest inside the binary, and renders
// either an operator's copy from BOT_TEMPLATES_DIR or, when that copy is
// missing or broken, the built-in one.
//
// The .tmpl files next to this one are the defaults: copy one into
// BOT_TEMPLATES_DIR under the same name to change it. They are Go
// text/template files; the data they receive is documented by the packages
// that render them (internal/postmortem, internal/digest).
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed *.tmpl
var builtin embed.FS

// File names of the templates, the same in BOT_TEMPLATES_DIR.
const (
	Postmortem = "postmortem.md.tmpl"
	Digest     = "digest.md.tmpl"
)

// MaxOutput caps what one rendering may produce. A template that loops over
// the timeline inside a loop over the timeline would otherwise fill memory.
const MaxOutput = 8 << 20

// Error is a template that could not be read, parsed or executed. Template
// names the file (the operator's path, or the built-in name) and Line is the
// line text/template reported, 0 if none.
type Error struct {
	Template string
	Line     int
	Err      error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("template %s, line %d: %s", e.Template, e.Line, e.detail())
	}
	return fmt.Sprintf("template %s: %s", e.Template, e.detail())
}

func (e *Error) Unwrap() error { return e.Err }

// detail is the underlying message without text/template's own
// "template: NAME:LINE:COL: " prefix, which Error already says better.
func (e *Error) detail() string {
	msg := e.Err.Error()
	rest, ok := strings.CutPrefix(msg, "template: "+e.Template+":")
	if !ok {
		return msg
	}
	// Skip "LINE:" and an optional "COL:".
	for range 2 {
		i := strings.IndexByte(rest, ':')
		if i <= 0 {
			break
		}
		if _, err := strconv.Atoi(rest[:i]); err != nil {
			break
		}
		rest = rest[i+1:]
	}
	return strings.TrimSpace(rest)
}

// newError wraps a text/template error, finding the line it names.
func newError(name string, err error) *Error {
	e := &Error{Template: name, Err: err}
	if rest, ok := strings.CutPrefix(err.Error(), "template: "+name+":"); ok {
		digits := rest
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			digits = rest[:i]
		}
		if n, err := strconv.Atoi(digits); err == nil {
			e.Line = n
		}
	}
	return e
}

// Builtin returns the text of a built-in template.
func Builtin(name string) (string, error) {
	b, err := builtin.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("no built-in template %s: %w", name, err)
	}
	return string(b), nil
}

// Render executes template name with data and funcs. It uses dir/name when
// dir is set and the file exists, and the built-in template otherwise. When
// the operator's file cannot be read, parsed or executed, or renders
// nothing, Render falls back to the built-in template and returns the
// problem as warn (an *Error naming the file and line), so a broken custom
// template never yields an empty document. err is set only when the
// built-in template fails too, which is a bug.
func Render(dir, name string, funcs template.FuncMap, data any) (out []byte, warn error, err error) {
	if dir != "" {
		path := filepath.Join(dir, name)
		text, rerr := os.ReadFile(path)
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
			// No override: the built-in template is the intended one.
		case rerr != nil:
			warn = &Error{Template: path, Err: rerr}
		default:
			out, werr := execute(path, string(text), funcs, data)
			if werr == nil {
				return out, nil, nil
			}
			warn = werr
		}
	}
	text, err := Builtin(name)
	if err != nil {
		return nil, warn, err
	}
	out, err = execute(name, text, funcs, data)
	if err != nil {
		return nil, warn, err
	}
	return out, warn, nil
}

func execute(name, text string, funcs template.FuncMap, data any) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, newError(name, err)
	}
	var buf limitedBuffer
	if err := t.Execute(&buf, data); err != nil {
		if errors.Is(err, errTooLong) {
			return nil, &Error{Template: name, Err: fmt.Errorf("the output is larger than %d MiB", MaxOutput>>20)}
		}
		return nil, newError(name, err)
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		return nil, &Error{Template: name, Err: errors.New("the template rendered nothing")}
	}
	return buf.Bytes(), nil
}

var errTooLong = errors.New("template output too long")

// limitedBuffer is a bytes.Buffer that refuses to grow past MaxOutput.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxOutput {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

// Funcs are the functions the templates may call besides text/template's
// built-ins:
//
//	indent N TEXT   indent every line after the first by N spaces (multi-line
//	                text inside a list item)
//	cell TEXT       make escaped TEXT safe inside a Markdown table cell (| and
//	                line breaks)
//	quote TEXT      render TEXT as a Markdown blockquote
//	join LIST SEP   strings.Join
//	md TEXT         escape raw text for Markdown (Text): no structure survives
//	line TEXT       the same on one line (Line), for headings
//	code TEXT       a code span (Code)
//	duration D      a time.Duration for people: "45s", "4m 12s", "1h 23m", "2d 3h"
//	add A B, sub A B   integer arithmetic (numbered lists, "and 3 more")
func Funcs() template.FuncMap {
	return template.FuncMap{
		"indent":   indent,
		"cell":     cell,
		"quote":    quote,
		"join":     strings.Join,
		"md":       Text,
		"line":     Line,
		"code":     Code,
		"duration": Duration,
		"add":      func(a, b int) int { return a + b },
		"sub":      func(a, b int) int { return a - b },
	}
}

func indent(n int, s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "<br>")
}

func quote(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return strings.Join(lines, "\n")
}

// Duration renders a duration for people, to the second below an hour and
// to the minute above: "45s", "4m 12s", "1h 23m", "2d 3h".
func Duration(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%s%ds", neg, int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%s%dm %ds", neg, int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%s%dh %dm", neg, int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%s%dd %dh", neg, int(d.Hours())/24, int(d.Hours())%24)
}
