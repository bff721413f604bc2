package runbook

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBuiltinRedaction(t *testing.T) {
	r, err := NewRedactor(RedactorConfig{Secrets: []string{"7c9e6679-7425-40de"}, Patterns: []string{`card=[0-9]{4}`}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"slack xoxb-1234-5678-abcdEFGH":                                                    "slack [REDACTED]",
		"app xapp-1-A0B1C2-123-abc":                                                        "app [REDACTED]",
		"aws AKIAIOSFODNN7EXAMPLE ok":                                                      "aws [REDACTED] ok",
		"gh ghp_abcdefghijklmnopqrstuvwxyz0123":                                            "gh [REDACTED]",
		"fine-grained github_pat_11ABCDEFG0123456789_abcdefghij":                           "fine-grained [REDACTED]",
		"Authorization: Bearer abc.def.ghi":                                                "[REDACTED]",
		"authorization:basic dXNlcjpwYXNz":                                                 "[REDACTED]",
		"curl -H 'X: bearer abcdefghijklmnop0123'":                                         "curl -H 'X: [REDACTED]'",
		"url https://user:p4ss@db.example.com/x":                                           "url [REDACTED]db.example.com/x",
		"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-here x":                       "jwt [REDACTED] x",
		"guid 7c9e6679-7425-40de here":                                                     "guid [REDACTED] here",
		"card=1234 ok":                                                                     "[REDACTED] ok",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nafter": "[REDACTED]\nafter",
		"-----BEGIN OPENSSH PRIVATE KEY-----\ncut off":                                     "[REDACTED]",
		"plain text stays":                                                                 "plain text stays",
	}
	for in, want := range cases {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := NewRedactor(RedactorConfig{Patterns: []string{"x*"}}); err == nil {
		t.Fatal("pattern matching the empty string accepted")
	}
	if _, err := NewRedactor(RedactorConfig{Patterns: []string{"("}}); err == nil {
		t.Fatal("invalid pattern accepted")
	}
}

// streamRedact feeds text to a RedactWriter in chunks of size n.
func streamRedact(r *Redactor, text string, n int) string {
	var out bytes.Buffer
	w := r.NewWriter(&out)
	for i := 0; i < len(text); i += n {
		end := min(i+n, len(text))
		w.Write([]byte(text[i:end]))
	}
	w.Close()
	return out.String()
}

func TestStreamingRedactionAcrossChunkBoundaries(t *testing.T) {
	secret := "s3cr3t-" + strings.Repeat("k", 40)
	r := newRedactor([]string{secret}, nil)
	filler := strings.Repeat("line of ordinary output\n", 2000) // > hold-back, so flushes happen
	text := filler + "a " + secret + " b\n" + filler + "token xoxb-123-456-abcdef end\n" + filler +
		"-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("QUJD\n", 100) + "-----END PRIVATE KEY-----\n" + filler + secret
	want := r.Redact(text)
	for _, n := range []int{1, 2, 3, 7, 64, 4096, 32 << 10, len(text)} {
		got := streamRedact(r, text, n)
		if got != want {
			t.Fatalf("chunk size %d: streaming differs from whole-text redaction", n)
		}
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "QUJD") || strings.Contains(got, "xoxb") {
			t.Fatalf("chunk size %d leaked", n)
		}
	}
	// A line without newlines longer than the hold-back still streams.
	long := strings.Repeat("x", 3*redactMaxPending) + secret + strings.Repeat("y", 100)
	if got := streamRedact(r, long, 32<<10); strings.Contains(got, "s3cr3t") || len(got) != len(long)-len(secret)+len(Redacted) {
		t.Fatal("long line redaction failed")
	}
}

func TestSanitizer(t *testing.T) {
	cases := map[string]string{
		"\x1b[1;31mred\x1b[0m":         "red",
		"a\x1b]0;title\x07b":           "ab",
		"a\x1b]8;;http://x\x1b\\link":  "alink",
		"a\x1bcb":                      "ab",
		"nul\x00bell\x07del\x7fcr\r\n": "nulbelldelcr\n",
		"tab\tkept\n":                  "tab\tkept\n",
		"bad \xff\xfe utf8":            "bad \uFFFD\uFFFD utf8",
		"bidi \u202egnp\u202c ok":      "bidi gnp ok",
		"c1 \u009b31m":                 "c1 31m",
		"emoji 🚒 and é kept":           "emoji 🚒 and é kept",
		"truncated rune \xe2\x82":      "truncated rune \uFFFD",
	}
	for in, want := range cases {
		for _, n := range []int{1, 2, len(in)} {
			var out bytes.Buffer
			red := newRedactor(nil, nil).NewWriter(&out)
			s := &sanitizer{dst: red}
			for i := 0; i < len(in); i += n {
				s.write([]byte(in[i:min(i+n, len(in))]))
			}
			s.reset()
			red.Close()
			if out.String() != want {
				t.Errorf("sanitize(%q) in chunks of %d = %q, want %q", in, n, out.String(), want)
			}
			if !utf8.Valid(out.Bytes()) {
				t.Errorf("sanitize(%q) produced invalid UTF-8", in)
			}
		}
	}
}

func TestSanitizerBoundsEscapeSequences(t *testing.T) {
	var out bytes.Buffer
	red := newRedactor(nil, nil).NewWriter(&out)
	s := &sanitizer{dst: red}
	s.write([]byte("\x1b[" + strings.Repeat("1;", 600) + "mX"))
	s.reset()
	red.Close()
	// The runaway sequence is abandoned after maxEscape bytes; text resumes.
	if got := out.String(); !strings.HasSuffix(got, "mX") || len(got) > 2*600-maxEscape+2 || strings.Contains(got, "\x1b") {
		t.Fatalf("got %q", got)
	}
}

func TestCaptureKeepsHeadAndTail(t *testing.T) {
	c := newCapture(128 << 10)
	var all bytes.Buffer
	for i := 0; i < 20000; i++ {
		line := strings.Repeat("é", i%7) + "line " + strings.Repeat("x", i%50) + "\n"
		all.WriteString(line)
		c.Write([]byte(line))
	}
	text, dropped := c.result()
	if c.total != int64(all.Len()) || !utf8.ValidString(text) {
		t.Fatalf("total %d, valid %v", c.total, utf8.ValidString(text))
	}
	head, tail, ok := strings.Cut(text, "\n[… ")
	if !ok || !strings.HasPrefix(all.String(), head) || !strings.HasSuffix(all.String(), tail[strings.Index(tail, "…]\n")+len("…]\n"):]) {
		t.Fatal("head/tail do not match the input")
	}
	if int64(len(head))+int64(len(tail[strings.Index(tail, "…]\n")+len("…]\n"):]))+dropped != c.total {
		t.Fatal("dropped count does not add up")
	}
	small := newCapture(8 << 10)
	small.Write([]byte("short"))
	if text, dropped := small.result(); text != "short" || dropped != 0 {
		t.Fatalf("small capture %q %d", text, dropped)
	}
}

func TestChatFormattingIsInert(t *testing.T) {
	out := "ok\n<!channel> <@U123> &amp; ```inject``` @here\n"
	text := formatOutput(out, 0, ChatOutput{Show: ShowTail, MaxLines: 10, MaxChars: 2800}, 2800, "RUN1")
	for _, bad := range []string{"<!channel>", "<@U123>", "``````", "```inject```"} {
		if strings.Contains(text, bad) {
			t.Fatalf("chat text contains %q: %s", bad, text)
		}
	}
	if !strings.Contains(text, "&lt;!channel&gt;") || !strings.Contains(text, "&amp;amp;") || strings.Count(text, "```") != 2 {
		t.Fatalf("chat text %s", text)
	}
	if strings.Contains(text, "truncated") {
		t.Fatal("nothing was cut but a note was added")
	}
	long := strings.Repeat("0123456789\n", 1000)
	text = formatOutput(long, 500, ChatOutput{Show: ShowTail, MaxLines: 30, MaxChars: 400}, 400, "RUN2")
	if utf8.RuneCountInString(text) > 400 || !strings.Contains(text, "bytes truncated; full output stored with run RUN2]") {
		t.Fatalf("chat text (%d chars): %s", utf8.RuneCountInString(text), text)
	}
	if got := formatOutput("x", 0, ChatOutput{Show: ShowNone}, 100, "R"); got != "" {
		t.Fatalf("show none produced %q", got)
	}
	head := formatOutput("first\nsecond\nthird\n", 0, ChatOutput{Show: ShowHead, MaxLines: 1, MaxChars: 400}, 400, "R")
	if !strings.Contains(head, "first") || strings.Contains(head, "third") {
		t.Fatalf("head %s", head)
	}
}

func TestEchoAndEscape(t *testing.T) {
	if got := EscapeSlack("<!here> & <@U1>"); got != "&lt;!here&gt; &amp; &lt;@U1&gt;" {
		t.Fatal(got)
	}
	if got := echo("d\u0430\u200bx"); got != "`\"d\\u0430\\u200bx\"`" {
		t.Fatalf("echo = %s", got)
	}
	if got := echo("<@U1>"); got != "`\"&lt;@U1&gt;\"`" {
		t.Fatalf("echo = %s", got)
	}
}

// A secret printed encoded is masked too: base64 (both alphabets, with and
// without padding, and inside longer encoded text), hex in both cases,
// URL-encoded and reversed.
func TestEncodedSecretsAreMasked(t *testing.T) {
	secret := "pa55/w+rd?&=ü~x" // characters every encoding treats differently
	r := newRedactor([]string{secret}, nil)
	b := []byte(secret)
	encoded := map[string]string{
		"base64":             base64.StdEncoding.EncodeToString(b),
		"base64 raw":         base64.RawStdEncoding.EncodeToString(b),
		"base64url":          base64.URLEncoding.EncodeToString(b),
		"base64url raw":      base64.RawURLEncoding.EncodeToString(b),
		"basic auth":         base64.StdEncoding.EncodeToString([]byte("admin:" + secret)),
		"inside, offset 1":   base64.StdEncoding.EncodeToString([]byte("x" + secret + "tail")),
		"inside, offset 2":   base64.RawURLEncoding.EncodeToString([]byte("{\"k\":\"" + secret + "\"}")),
		"hex":                hex.EncodeToString(b),
		"HEX":                strings.ToUpper(hex.EncodeToString(b)),
		"query escape":       url.QueryEscape(secret),
		"path escape":        url.PathEscape(secret),
		"every byte escaped": everyByte(b),
		"reversed":           reverse(secret),
	}
	for name, enc := range encoded {
		line := "before " + enc + " after"
		got := r.Redact(line)
		// Inside longer encoded text a few characters at each end mix
		// with their neighbours; the secret's own part must be gone.
		if name == "basic auth" || strings.HasPrefix(name, "inside") {
			if got == line || !strings.Contains(got, Redacted) {
				t.Errorf("%s: %q not masked: %q", name, enc, got)
			}
			continue
		}
		if got != "before "+Redacted+" after" {
			t.Errorf("%s: Redact(%q) = %q", name, line, got)
		}
		// Streaming, split anywhere, gives the same.
		if s := streamRedact(r, strings.Repeat("filler\n", 3000)+line, 7); !strings.HasSuffix(s, "before "+Redacted+" after") {
			t.Errorf("%s: streamed output ends %q", name, s[len(s)-60:])
		}
	}
	// Ordinary output stays.
	if got := r.Redact("ordinary base64 aGVsbG8gd29ybGQ= and hex 68656c6c6f"); strings.Contains(got, Redacted) {
		t.Errorf("false positive: %q", got)
	}
}

func everyByte(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02x", c)
	}
	return s.String()
}
