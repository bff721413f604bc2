package runbook

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// fuzzRunbook binds one parameter of every kind, including a secret and a
// unicode free-text field, to a representative argv.
const fuzzRunbook = `apiVersion: incidentbot/v1
kind: Runbook
id: fz
title: Fuzz
risk: low
confirm: false
params:
  - { name: context, type: enum, values: ['staging', 'prod-eu', 'prod-us'], required: true }
  - { name: site, type: enum, values: { www: 'E1AAAAAAAAAAAA', static: 'E2BBBBBBBBBBBB' }, default: www }
  - { name: deployment, type: string, pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$', max_length: 63, default: api }
  - { name: path, type: string, pattern: '^/[A-Za-z0-9._~/-]{0,200}\*?$', max_length: 202, default: / }
  - { name: replicas, type: int, min: 1, max: 30, default: '3' }
  - { name: since, type: duration, min: 1m, max: 6h, default: 15m }
  - { name: token, type: string, pattern: '^[A-Za-z0-9]{8,32}$', secret: true, required: true }
  - { name: note, type: string, pattern: '^[\p{L}\p{N} .,_-]{1,40}$', max_length: 40, allow_unicode: true, default: none }
  - { name: free, type: string, pattern: '^[!-~]{1,80}$', max_length: 80, default: x }
access: { requesters: { users: ['UREQ'] } }
limits: { timeout: 1m, concurrency_key: '{{context}}/{{deployment}}' }
steps:
  - name: act
    argv: ['/bin/echo', '--context={{context}}', '--site={{site}}', 'deployment/{{deployment}}', '--paths={{path}}',
           '--replicas={{replicas}}', '--since={{since}}', '--token={{token}}', '--note={{note}}', '--', '{{free}}',
           '{{incident.id}}', '{{run.id}}']
    timeout: 30s
`

// secretMarker is planted in secret values by the seeds.
const secretMarker = "QX7Z"

// FuzzParseAndValidate checks the core safety invariant: whatever the chat
// text, the executor is reached only with values that satisfy every
// declared constraint, none starting with "-" or containing a forbidden
// code point, each placeholder rendering into exactly one argv element.
func FuzzParseAndValidate(f *testing.F) {
	rb := loadOne(f, "fz", fuzzRunbook)
	for _, seed := range []string{
		"fz context=staging token=abcdefgh1",
		"fz context=prod-eu site=static deployment=web-1 path=/static/* replicas=30 since=1.5h token=Zz0123456789 note=café_1 free=$(id);`x`|&& --dry-run",
		"fz context=Staging token=abcdefgh1",
		"fz context=st\u0430ging token=abcdefgh1",
		"fz context=staging token=abcdefgh1 replicas=+5",
		"fz context=staging token=abcdefgh1 replicas=05",
		"fz context=staging token=abcdefgh1 replicas=0x10",
		"fz context=staging token=abcdefgh1 since=0s",
		"fz context=staging token=abcdefgh1 since=15m0s",
		"fz context=staging token=abcdefgh1 free=-rf",
		"fz context=staging token=abcdefgh1 note=a\u202eb",
		"fz context=staging token=abcdefgh1 note=\u200b",
		"fz context=staging token=abcdefgh1 free=<http://example.com|example.com>",
		"fz context=staging token=abcdefgh1 free=&amp;lt;",
		"fz context=staging token=abcdefgh1 incident.id=1",
		"fz context=staging token=abcdefgh1 \u2014dry-run",
		"fz context=staging token=abcdefgh1 --dry-run=false",
		"../fz context=staging token=abcdefgh1",
		"fz context=staging token=QX7Zsecret;rm",
		"fz context=staging token=QX7Zsecret token=QX7",
		"fz context=Staging token=-QX7Zsecret",
		"fz context=staging token=QX7Z​secret",
	} {
		f.Add(seed)
	}
	patterns := map[string]*regexp.Regexp{}
	for _, p := range rb.Params {
		if p.Pattern != "" {
			patterns[p.Name] = regexp.MustCompile(`^(?:` + p.Pattern + `)$`)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := ParseCommand(text)
		if err != nil {
			assertSafeMessage(t, err)
			return
		}
		if cmd.RunbookID != rb.ID {
			return // the engine answers "unknown runbook": a map miss
		}
		ps, err := rb.BindCommand(cmd)
		if err != nil {
			msg := assertSafeMessage(t, err)
			// A marker that only the secret value carries must never
			// appear in the message (the seeds plant it).
			for _, a := range cmd.Args {
				if a.Name == "token" && strings.Contains(a.Value, secretMarker) && strings.Count(text, secretMarker) == 1 &&
					strings.Contains(msg, secretMarker) {
					t.Fatalf("secret value echoed: %q", msg)
				}
			}
			return
		}
		if len(ps) != len(rb.Params) {
			t.Fatalf("bound %d of %d parameters", len(ps), len(rb.Params))
		}
		values := map[string]string{ReservedIncidentID: "INC1", ReservedRunID: "01ABC", ReservedIncidentChannel: "C1", ReservedRequesterID: "UREQ"}
		for i, v := range ps {
			p := &rb.Params[i]
			if v.Name != p.Name {
				t.Fatalf("parameter order: %s != %s", v.Name, p.Name)
			}
			assertSatisfies(t, p, v, patterns[p.Name])
			values[v.Name] = v.Value
		}
		for _, st := range rb.Steps {
			for i, tpl := range st.argv {
				el, err := tpl.render(values)
				if err != nil {
					t.Fatalf("render: %v", err)
				}
				if i > 0 && strings.HasPrefix(el, "-") && !strings.HasPrefix(st.Argv[i], "-") {
					t.Fatalf("argv[%d] %q starts with '-' from a value", i, el)
				}
				assertNoForbidden(t, el)
			}
		}
	})
}

func assertSafeMessage(t *testing.T, err error) string {
	t.Helper()
	ue, ok := AsUserError(err)
	if !ok {
		t.Fatalf("non-user error: %v", err)
	}
	for _, bad := range []string{"<@", "<!", "<#", "<http"} {
		if strings.Contains(ue.Message, bad) {
			t.Fatalf("message not inert: %q", ue.Message)
		}
	}
	if !utf8.ValidString(ue.Message) {
		t.Fatalf("message not valid UTF-8: %q", ue.Message)
	}
	return ue.Message
}

// assertSatisfies re-checks a bound value against its declaration without
// using the code under test.
func assertSatisfies(t *testing.T, p *Param, v Value, re *regexp.Regexp) {
	t.Helper()
	if v.Label == "" || v.Value == "" || v.Label[0] == '-' || v.Value[0] == '-' {
		t.Fatalf("%s: empty or dash-leading value %+v", p.Name, v)
	}
	if utf8.RuneCountInString(v.Label) > p.MaxLength {
		t.Fatalf("%s: %q longer than %d", p.Name, v.Label, p.MaxLength)
	}
	assertNoForbidden(t, v.Label)
	if !p.AllowUnicode {
		for i := 0; i < len(v.Label); i++ {
			if v.Label[i] < 0x21 || v.Label[i] > 0x7e {
				t.Fatalf("%s: non-printable-ASCII byte in %q", p.Name, v.Label)
			}
		}
	}
	switch p.Type {
	case TypeEnum:
		if !slices.Contains(p.Choices, Choice{Label: v.Label, Value: v.Value}) {
			t.Fatalf("%s: %+v is not a declared choice", p.Name, v)
		}
	case TypeInt:
		if !regexp.MustCompile(`^(0|[1-9][0-9]{0,9})$`).MatchString(v.Label) {
			t.Fatalf("%s: non-canonical int %q", p.Name, v.Label)
		}
		var n int64
		for _, c := range v.Label {
			n = n*10 + int64(c-'0')
		}
		if n < p.minInt || n > p.maxInt {
			t.Fatalf("%s: %d out of range", p.Name, n)
		}
	case TypeDuration:
		d, err := time.ParseDuration(v.Label)
		if err != nil || d < p.minDur || d > p.maxDur || formatDuration(d) != v.Label {
			t.Fatalf("%s: bad duration %q", p.Name, v.Label)
		}
	case TypeString:
		if !re.MatchString(v.Label) || v.Label != v.Value {
			t.Fatalf("%s: %q does not match %s", p.Name, v.Label, p.Pattern)
		}
	}
}

func assertNoForbidden(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 in %q", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) ||
			r == '\u2028' || r == '\u2029' || r == '\ufeff' || r == '\u200b' || r == '\u2060' || (r != ' ' && unicode.IsSpace(r)) {
			t.Fatalf("forbidden code point U+%04X in %q", r, s)
		}
	}
}
