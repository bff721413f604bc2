package runbook

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Redacted replaces every secret and token-shaped string.
const Redacted = "[REDACTED]"

// builtinPatterns are masked in all output and logs (§4.7). Each has a
// literal prefix (which Go's regexp uses to skip ahead quickly) or a hint
// that must occur for a match to be possible, so floods of ordinary output
// cost little.
var builtinPatterns = []redactPattern{
	{re: regexp.MustCompile(`xox[abposre]-[0-9A-Za-z-]+`)},
	{re: regexp.MustCompile(`xapp-[0-9A-Za-z-]+`)},
	{re: regexp.MustCompile(`AKIA[0-9A-Z]{16}`)},
	{re: regexp.MustCompile(`ASIA[0-9A-Z]{16}`)},
	{re: regexp.MustCompile(`gh[pousr]_[0-9A-Za-z]{20,}`)},
	{re: regexp.MustCompile(`github_pat_[0-9A-Za-z_]{20,}`)},
	{re: regexp.MustCompile(`eyJ[0-9A-Za-z_-]{5,}\.eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*`)},
	// PEM private keys span lines; an unterminated block is masked to the
	// end of the text, and the streaming writer holds it until it ends.
	{re: regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)`)},
	{re: regexp.MustCompile(`(?i)authorization[ \t]*:[ \t]*(?:(?:bearer|basic|token|digest)[ \t]+)?[^\s]+`), hint: foldHint("authorization")},
	{re: regexp.MustCompile(`(?i)bearer[ \t]+[0-9A-Za-z._~+/-]{16,}=*`), hint: foldHint("bearer")},
	// scheme://user:password@ userinfo.
	{re: regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@`), hint: literalHint("://")},
}

type redactPattern struct {
	re   *regexp.Regexp
	hint func([]byte) bool // nil: always run the regexp
}

// withPrefixHint gives a pattern without a hint one built from its literal
// prefix. Go's regexp only skips ahead to a prefix at positions that do not
// start with its first byte, so a flood of that byte ("xxxx" for "xox…")
// would otherwise run the slow NFA over every position.
func withPrefixHint(p redactPattern) redactPattern {
	if prefix, _ := p.re.LiteralPrefix(); p.hint == nil && prefix != "" {
		p.hint = literalHint(prefix)
	}
	return p
}

func literalHint(s string) func([]byte) bool {
	needle := []byte(s)
	return func(b []byte) bool { return bytes.Contains(b, needle) }
}

// foldHint reports whether the ASCII word occurs in any letter case.
func foldHint(word string) func([]byte) bool {
	lower := []byte(word)
	return func(b []byte) bool {
		first := [2]byte{lower[0], lower[0] - 'a' + 'A'}
		for i := 0; i+len(lower) <= len(b); {
			j := indexEither(b[i:], first[0], first[1])
			if j < 0 || i+j+len(lower) > len(b) {
				return false
			}
			i += j
			if bytes.EqualFold(b[i:i+len(lower)], lower) {
				return true
			}
			i++
		}
		return false
	}
}

func indexEither(b []byte, x, y byte) int {
	i, j := bytes.IndexByte(b, x), bytes.IndexByte(b, y)
	switch {
	case i < 0:
		return j
	case j < 0 || i < j:
		return i
	}
	return j
}

// minEncodedCore is the shortest piece of a secret's base64 encoding inside
// longer encoded text that is masked: shorter pieces would match ordinary
// base64 by chance.
const minEncodedCore = 8

// encodings returns a secret and the forms a program is likely to print it
// in: base64 (standard and URL alphabets, with and without padding, and the
// part of it that is the same wherever the secret sits inside longer
// encoded text, as in "user:secret" of HTTP basic auth), hex in both
// cases, URL-encoding (query, path, and every byte as %XX) and reversed.
// What masking cannot catch is listed in the README.
func encodings(secret string) []string {
	if secret == "" {
		return nil
	}
	b := []byte(secret)
	out := []string{secret, reverse(secret),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(secret), url.PathEscape(secret), percentAll(b, "%%%02X"), percentAll(b, "%%%02x")}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString(b), enc.WithPadding(base64.NoPadding).EncodeToString(b))
		// Inside longer text the secret starts 0, 1 or 2 bytes into a
		// 3-byte group; for each, keep the characters that depend on the
		// secret alone.
		for k := range 3 {
			shifted := enc.WithPadding(base64.NoPadding).EncodeToString(append(make([]byte, k), b...))
			from := (8*k + 5) / 6 // first character with no prefix bits
			to := 8 * (k + len(b)) / 6
			if to-from >= minEncodedCore {
				out = append(out, shifted[from:to])
			}
		}
	}
	return out
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

func percentAll(b []byte, format string) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, format, c)
	}
	return sb.String()
}

// Redactor masks exact secret values (and their common encodings), the
// built-in token patterns and any extra patterns. The same Redactor type serves run output, chat, audit and
// the bot's own logs. It is immutable and safe for concurrent use.
type Redactor struct {
	secrets   [][]byte // longest first
	patterns  []redactPattern
	maxSecret int
}

// RedactorConfig lists what a Redactor masks besides the built-in patterns.
type RedactorConfig struct {
	// Secrets are masked wherever their exact value occurs. Empty strings
	// are ignored.
	Secrets []string
	// Patterns are extra RE2 patterns (unanchored) whose matches are masked.
	Patterns []string
}

// NewRedactor builds a Redactor. The app can use it for its own logs with
// the bot's tokens as Secrets.
func NewRedactor(cfg RedactorConfig) (*Redactor, error) {
	var extra []*regexp.Regexp
	for _, p := range cfg.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("compiling redaction pattern: %w", err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("redaction pattern %q matches the empty string", p)
		}
		extra = append(extra, re)
	}
	return newRedactor(cfg.Secrets, extra), nil
}

func newRedactor(secrets []string, extra []*regexp.Regexp) *Redactor {
	r := &Redactor{}
	for _, p := range builtinPatterns {
		r.patterns = append(r.patterns, withPrefixHint(p))
	}
	seen := map[string]bool{}
	for _, secret := range secrets {
		for _, s := range encodings(secret) {
			if s == "" || seen[s] {
				continue
			}
			seen[s] = true
			r.secrets = append(r.secrets, []byte(s))
			r.maxSecret = max(r.maxSecret, len(s))
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	for _, re := range extra {
		r.patterns = append(r.patterns, withPrefixHint(redactPattern{re: re}))
	}
	return r
}

// Redact masks s.
func (r *Redactor) Redact(s string) string {
	b := []byte(s)
	return string(applySpans(nil, b, r.spans(b)))
}

type span struct{ start, end int }

// spans finds every region to mask in b, sorted and merged.
func (r *Redactor) spans(b []byte) []span {
	var out []span
	for _, s := range r.secrets {
		for off := 0; ; {
			i := bytes.Index(b[off:], s)
			if i < 0 {
				break
			}
			out = append(out, span{off + i, off + i + len(s)})
			off += i + len(s)
		}
	}
	for _, p := range r.patterns {
		if p.hint != nil && !p.hint(b) {
			continue
		}
		for _, m := range p.re.FindAllIndex(b, -1) {
			if m[1] > m[0] {
				out = append(out, span{m[0], m[1]})
			}
		}
	}
	if len(out) < 2 {
		return out
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	merged := out[:1]
	for _, s := range out[1:] {
		last := &merged[len(merged)-1]
		if s.start <= last.end {
			last.end = max(last.end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// applySpans appends b to dst with every span replaced by Redacted.
func applySpans(dst, b []byte, spans []span) []byte {
	prev := 0
	for _, s := range spans {
		dst = append(dst, b[prev:s.start]...)
		dst = append(dst, Redacted...)
		prev = s.end
	}
	return append(dst, b[prev:]...)
}

// Streaming parameters. The writer holds back the last holdback bytes (and
// never cuts inside a match) so a secret or token split across read chunks
// is still seen whole; it prefers to cut after a newline.
const (
	redactHoldback   = 8 << 10
	redactMaxPending = 1 << 20
)

// RedactWriter redacts a stream before passing it on. Write never fails
// and never blocks on anything but dst; call Close to flush the tail.
// A single match longer than 1 MiB is masked up to that point and the rest
// is treated as new text: real tokens are far shorter.
type RedactWriter struct {
	r    *Redactor
	dst  io.Writer
	buf  []byte
	hold int
	out  []byte
}

// NewWriter returns a streaming redactor writing to dst.
func (r *Redactor) NewWriter(dst io.Writer) *RedactWriter {
	return &RedactWriter{r: r, dst: dst, hold: max(redactHoldback, 2*r.maxSecret)}
}

// Write buffers p and passes on everything that can no longer be part of a
// match. It always reports success: errors from dst are ignored so a
// process writing into it is never stopped.
func (w *RedactWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= 4*w.hold {
		w.flush(false)
	}
	return len(p), nil
}

// Close redacts and passes on whatever is buffered.
func (w *RedactWriter) Close() error {
	w.flush(true)
	return nil
}

func (w *RedactWriter) flush(final bool) {
	if len(w.buf) == 0 {
		return
	}
	spans := w.r.spans(w.buf)
	cut := len(w.buf)
	if !final {
		cut = w.safeCut(spans)
		if cut == 0 {
			if len(w.buf) < redactMaxPending {
				return
			}
			cut = len(w.buf) - w.hold
			spans = w.r.spans(w.buf[:cut])
		}
	}
	var keep []span
	for _, s := range spans {
		if s.end > cut {
			break
		}
		keep = append(keep, s)
	}
	w.out = applySpans(w.out[:0], w.buf[:cut], keep)
	_, _ = w.dst.Write(w.out) // see Write: never propagate
	w.buf = w.buf[:copy(w.buf, w.buf[cut:])]
}

// safeCut picks how much of the buffer can be emitted now: everything but
// the hold-back, ending after a newline where possible, and never inside a
// match.
func (w *RedactWriter) safeCut(spans []span) int {
	cut := len(w.buf) - w.hold
	if nl := bytes.LastIndexByte(w.buf[:cut], '\n'); nl >= 0 {
		cut = nl + 1
	}
	for _, s := range spans {
		if s.start < cut && s.end > cut {
			return s.start
		}
	}
	return cut
}
