package runbook

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// headBytes is how much of the start of the output is always kept (§4.7).
const headBytes = 64 << 10

// OutputStats describes a run's captured output for audit.
type OutputStats struct {
	// BytesRaw is what the processes wrote to stdout and stderr.
	BytesRaw int64 `json:"bytes_raw"`
	// BytesTotal is the size of the sanitised, redacted stream.
	BytesTotal int64 `json:"bytes_total"`
	// BytesDropped is how much of that stream was not retained.
	BytesDropped int64 `json:"bytes_dropped"`
	// SHA256 is the hex digest of the retained, redacted output text.
	SHA256 string `json:"sha256"`
}

// outputSink receives everything a run's processes write (stdout and stderr
// share one pipe, so they interleave in true order) and passes it through
// sanitise → redact → capture. Redaction therefore happens before
// truncation. Write never fails, so a child can never block on a pipe the
// bot stopped reading. It is used by one goroutine at a time.
type outputSink struct {
	raw int64
	san *sanitizer
	red *RedactWriter
	cap *capture
}

func newOutputSink(r *Redactor, maxBytes int64) *outputSink {
	c := newCapture(maxBytes)
	red := r.NewWriter(c)
	return &outputSink{san: &sanitizer{dst: red}, red: red, cap: c}
}

func (o *outputSink) Write(p []byte) (int, error) {
	o.raw += int64(len(p))
	o.san.write(p)
	return len(p), nil
}

// endStep finishes a step's stream: a dangling escape sequence or partial
// UTF-8 sequence must not swallow the next step's output.
func (o *outputSink) endStep() { o.san.reset() }

// note writes a line of the bot's own (e.g. a step header) into the output.
func (o *outputSink) note(line string) {
	o.san.reset()
	o.san.write([]byte(line + "\n"))
}

// finish flushes everything and returns the retained text and its stats.
func (o *outputSink) finish() (string, OutputStats) {
	o.san.reset()
	_ = o.red.Close()
	text, dropped := o.cap.result()
	sum := sha256.Sum256([]byte(text))
	return text, OutputStats{BytesRaw: o.raw, BytesTotal: o.cap.total, BytesDropped: dropped, SHA256: hex.EncodeToString(sum[:])}
}

// capture keeps the first head bytes and the last tail bytes of what it is
// given and counts the rest. Write never fails.
type capture struct {
	headMax, tailMax int
	head, tail       []byte
	total            int64
}

// newCapture splits maxBytes into a head of 64 KiB and a tail of the rest.
// For captures under 128 KiB the head is half, so the tail (what chat
// usually shows) is never empty.
func newCapture(maxBytes int64) *capture {
	head := min(int64(headBytes), maxBytes/2)
	return &capture{headMax: int(head), tailMax: int(maxBytes - head)}
}

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	c.total += int64(n)
	if room := c.headMax - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 || c.tailMax == 0 {
		return n, nil
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*c.tailMax {
		c.tail = c.tail[:copy(c.tail, c.tail[len(c.tail)-c.tailMax:])]
	}
	return n, nil
}

// result returns head, a marker if anything was dropped, and tail; and the
// number of bytes dropped. Cuts are moved to UTF-8 boundaries.
func (c *capture) result() (string, int64) {
	tail := c.tail
	if len(tail) > c.tailMax {
		tail = tail[len(tail)-c.tailMax:]
	}
	dropped := c.total - int64(len(c.head)) - int64(len(tail))
	if dropped == 0 {
		return string(c.head) + string(tail), 0
	}
	head := trimPartialEnd(c.head)
	tail = trimPartialStart(tail)
	dropped = c.total - int64(len(head)) - int64(len(tail))
	return string(head) + "\n[… " + strconv.FormatInt(dropped, 10) + " bytes dropped …]\n" + string(tail), dropped
}

func trimPartialEnd(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}

func trimPartialStart(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	return b
}

// sanitizer turns process output into plain text: ANSI/VT escape
// sequences are removed, control characters other than newline and tab are
// dropped (NUL included), invalid UTF-8 becomes U+FFFD, and C1 controls and
// bidi overrides are dropped. State carries across writes, so sequences
// split between reads are handled.
type sanitizer struct {
	dst     *RedactWriter
	state   escState
	escLen  int
	partial []byte // an incomplete UTF-8 sequence from the previous write
	out     []byte
}

type escState int

const (
	escNone   escState = iota
	escStart           // after ESC
	escCSI             // ESC [ ... final byte 0x40-0x7e
	escString          // OSC/DCS/PM/APC/SOS ... BEL or ESC \
	escStringEsc
)

// maxEscape bounds an escape sequence; past it the sanitizer gives up on
// the sequence (its bytes are dropped) and resumes normal text.
const maxEscape = 512

func (s *sanitizer) write(p []byte) {
	if len(s.partial) > 0 {
		p = append(s.partial, p...)
		s.partial = nil
	}
	out := s.out[:0]
	for i := 0; i < len(p); {
		if s.state != escNone {
			s.escape(p[i])
			i++
			continue
		}
		// Fast path: a run of printable ASCII, newlines and tabs.
		j := i
		for j < len(p) && (p[j] >= 0x20 && p[j] < 0x7f || p[j] == '\n' || p[j] == '\t') {
			j++
		}
		out = append(out, p[i:j]...)
		if i = j; i >= len(p) {
			break
		}
		c := p[i]
		if c < 0x80 {
			if c == 0x1b {
				s.state, s.escLen = escStart, 0
			}
			i++ // other controls and DEL are dropped
			continue
		}
		if !utf8.FullRune(p[i:]) {
			s.partial = append([]byte(nil), p[i:]...)
			break
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, "\uFFFD"...)
		case droppedRune(r):
		default:
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	s.out = out
	_, _ = s.dst.Write(out)
}

// escape consumes one byte of an escape sequence.
func (s *sanitizer) escape(c byte) {
	s.escLen++
	if s.escLen > maxEscape {
		s.state = escNone
		return
	}
	switch s.state {
	case escStart:
		switch c {
		case '[':
			s.state = escCSI
		case ']', 'P', '_', '^', 'X':
			s.state = escString
		default:
			s.state = escNone // two-byte sequence such as ESC c or ESC 7
		}
	case escCSI:
		if c >= 0x40 && c <= 0x7e {
			s.state = escNone
		}
	case escString:
		switch c {
		case 0x07:
			s.state = escNone
		case 0x1b:
			s.state = escStringEsc
		}
	case escStringEsc:
		if c == '\\' {
			s.state = escNone
		} else {
			s.state = escString
		}
	}
}

// reset ends the current stream: a partial UTF-8 sequence becomes U+FFFD
// and any unfinished escape sequence is abandoned.
func (s *sanitizer) reset() {
	if len(s.partial) > 0 {
		s.partial = nil
		_, _ = s.dst.Write([]byte("\uFFFD"))
	}
	s.state = escNone
}

// droppedRune reports C1 controls and bidi/format characters that would make
// output display differently from what it says.
func droppedRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xfeff:
		return true
	}
	return false
}
