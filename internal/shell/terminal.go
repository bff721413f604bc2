package shell

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// TerminalWriter is what every byte the CLI prints goes through (stdout
// and stderr of every `bot` command, the shell included): text that came from outside (a title, a
// note, an alert) must not drive the operator's terminal. Control
// characters other than newline and tab, and bidirectional formatting
// characters, are written as \uXXXX, and a byte that is not UTF-8 as \xNN,
// so "\x1b[2J" prints as the six characters `\u001b[2J` instead of clearing
// the screen. The escapes are valid inside JSON strings (and encoding/json
// already escapes C0 itself), so `--json` output stays valid JSON that
// decodes to the same text.
type TerminalWriter struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // the start of a character split across writes
}

// NewTerminalWriter returns a TerminalWriter writing to w.
func NewTerminalWriter(w io.Writer) *TerminalWriter { return &TerminalWriter{w: w} }

// Write escapes p and writes it; it reports len(p) on success.
func (t *TerminalWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf := p
	if len(t.pending) > 0 {
		buf = append(t.pending, p...)
		t.pending = nil
	}
	out := make([]byte, 0, len(buf)+16)
	for i := 0; i < len(buf); {
		c := buf[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				out = fmt.Appendf(out, `\u%04x`, c)
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && n <= 1 {
			if !utf8.FullRune(buf[i:]) {
				// Wait for the rest of the character.
				t.pending = append([]byte(nil), buf[i:]...)
				break
			}
			out = fmt.Appendf(out, `\x%02x`, c)
			i++
			continue
		}
		if unicode.IsControl(r) || incident.IsBidiControl(r) || r == '\u2028' || r == '\u2029' {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, buf[i:i+n]...)
		}
		i += n
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is left of a character cut off at the end, escaped.
func (t *TerminalWriter) Flush() error {
	t.mu.Lock()
	rest := t.pending
	t.pending = nil
	t.mu.Unlock()
	var out []byte
	for _, c := range rest {
		out = fmt.Appendf(out, `\x%02x`, c)
	}
	if len(out) == 0 {
		return nil
	}
	_, err := t.w.Write(out)
	return err
}

// IncidentTable prints incidents as the table of `bot incidents`: one line
// each (a line break or tab in a title, from a database written before
// titles were cleaned, cannot forge a row or a column), times in loc.
func IncidentTable(w io.Writer, incs []*incident.Incident, loc *time.Location) error {
	cell := strings.NewReplacer("\n", " ", "\r", " ", "\t", " ", "\u2028", " ", "\u2029", " ")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEV\tSTATUS\tDECLARED\tCHANNEL\tTITLE")
	for _, inc := range incs {
		ch := inc.Chat.ChannelName
		if ch == "" {
			ch = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID(), inc.Severity, inc.Status,
			inc.DeclaredAt.In(loc).Format("2006-01-02 15:04"), cell.Replace(ch), cell.Replace(inc.Title))
	}
	return tw.Flush()
}
