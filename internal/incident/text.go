package incident

import (
	"strings"
	"unicode/utf8"
)

// CleanText makes text typed outside the bot (by a person in chat, in an
// alert, in a webhook) safe to store and repeat. Every entry point passes
// such text through it once, before the use cases see it:
//
//   - invalid UTF-8 becomes U+FFFD;
//   - CR LF, a lone CR and the Unicode line and paragraph separators become
//     a newline, and a tab becomes a space;
//   - every other control character (C0 such as NUL and ESC, DEL, C1) is
//     removed, so no terminal escape sequence survives;
//   - bidirectional formatting characters (embeddings, overrides, isolates
//     and the implicit marks) are removed, so text cannot display in an
//     order other than the one it is stored in.
//
// It changes nothing else: markup (mentions, links) is for the renderers to
// escape for their medium. It is idempotent.
func CleanText(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '\r' && strings.HasPrefix(s[i+n:], "\n") {
			i += n // CR LF: the LF follows
			continue
		}
		i += n
		switch {
		case r == '\n', r == '\r', r == '\u2028', r == '\u2029':
			b.WriteByte('\n')
		case r == '\t':
			b.WriteByte(' ')
		case dropped(r):
		default:
			b.WriteRune(r) // utf8.RuneError for a bad byte: U+FFFD
		}
	}
	return b.String()
}

// CleanLine is CleanText for a one-line value such as a title: line breaks
// become spaces, runs of spaces collapse, and the ends are trimmed, so the
// value cannot start a new line wherever it is shown.
func CleanLine(s string) string {
	return strings.Join(strings.Fields(CleanText(s)), " ")
}

// isClean reports whether CleanText would return s unchanged.
func isClean(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == '\u2028' || r == '\u2029' || dropped(r) {
			return false
		}
		i += n
	}
	return true
}

// dropped reports whether CleanText removes r: a control character other
// than the line breaks and tab it rewrites, or a bidirectional formatting
// character.
func dropped(r rune) bool {
	switch {
	case r < 0x20 && r != '\n' && r != '\r' && r != '\t':
		return true
	case r >= 0x7f && r <= 0x9f: // DEL and C1
		return true
	}
	return IsBidiControl(r)
}

// IsBidiControl reports whether r is a Unicode bidirectional formatting
// character (UAX #9): ALM, LRM, RLM, the embeddings and overrides
// U+202A–U+202E and the isolates U+2066–U+2069.
func IsBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
