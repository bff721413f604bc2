package runbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demoRunbook has one parameter of every type; the grammar tests bind
// against it exactly as Engine.Submit does.
const demoRunbook = `apiVersion: incidentbot/v1
kind: Runbook
id: demo
title: Demo
risk: low
confirm: false
params:
  - name: context
    type: enum
    values: ['staging', 'prod-eu', 'prod-us']
    required: true
  - name: site
    type: enum
    values: { www: 'E1AAAAAAAAAAAA', static: 'E2BBBBBBBBBBBB' }
    default: www
  - name: deployment
    type: string
    pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
    max_length: 63
    required: true
  - name: replicas
    type: int
    min: 1
    max: 30
    default: '3'
  - name: since
    type: duration
    min: 1m
    max: 6h
    default: 15m
  - name: msg
    type: string
    pattern: '^[!-~]{1,100}$'
    default: hello
access:
  requesters: { user_groups: ['SREQUESTERS'], incident_roles: ['commander'] }
limits:
  timeout: 1m
steps:
  - name: show
    argv: ['/bin/echo', '--context={{context}}', '--site={{site}}', 'deployment/{{deployment}}',
           '--replicas={{replicas}}', '--since={{since}}', '--msg={{msg}}']
    timeout: 30s
`

// loadOne loads a single runbook document, failing the test on errors.
func loadOne(t testing.TB, id, body string) *Runbook {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadDir(dir, LoadOptions{CheckProgram: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if r.HasErrors() || len(r.Runbooks) != 1 {
		t.Fatalf("runbook did not load:\n%s", r)
	}
	return r.Runbooks[0]
}

// parseBind is the chat path without the engine: parse, look up by exact
// key, bind.
func parseBind(rb *Runbook, text string) (Command, Params, error) {
	cmd, err := ParseCommand(text)
	if err != nil {
		return cmd, nil, err
	}
	if cmd.RunbookID != rb.ID {
		return cmd, nil, userError(KindUnknown, "unknown runbook")
	}
	ps, err := rb.BindCommand(cmd)
	return cmd, ps, err
}

const demoRequired = "demo context=staging deployment=api "

// grammarRejects are chat inputs every runbook path must refuse with a
// clear message; the engine test replays them to show nothing executes.
var grammarRejects = []struct {
	name, text, want string
}{
	// Shell metacharacters and command substitution never match a
	// sane pattern.
	{"semicolon", demoRequired + "deployment=api;rm", "given more than once"},
	{"semicolon value", "demo context=staging deployment=api;reboot", "must match"},
	{"pipe", "demo context=staging deployment=api|cat", "must match"},
	{"command substitution", "demo context=staging deployment=$(id)", "must match"},
	{"backticks", "demo context=staging deployment=`id`", "must match"},
	{"and-and", "demo context=staging deployment=a&&b", "must match"},
	{"newline", "demo context=staging deployment=api\nid", "control character U+000A"},
	{"tab", "demo context=staging deployment=api\tid", "control character U+0009"},
	// Flag injection: a leading "-" is refused whatever the pattern.
	{"flag value", "demo context=staging deployment=-rf", "must not start with \"-\""},
	{"long flag value", "demo context=staging deployment=--kubeconfig=/x", "must not start with \"-\""},
	{"flag in permissive param", demoRequired + "msg=--upload-pack=x", "must not start with \"-\""},
	{"flag enum", "demo context=-staging deployment=api", "must not start with \"-\""},
	// Parameter set rules.
	{"unknown", demoRequired + "colour=red", "unknown parameter `\"colour\"`"},
	{"unknown case", demoRequired + "Replicas=3", "unknown parameter `\"Replicas\"`"},
	{"duplicate", demoRequired + "context=prod-eu", "context is given more than once"},
	{"empty", "demo context=staging deployment=", "`\"deployment\"` has an empty value"},
	{"missing name", demoRequired + "=x", "parameter name is missing"},
	{"missing required", "demo context=staging", "missing required parameter deployment"},
	{"reserved incident", demoRequired + "incident.id=INC9", "`\"incident.id\"` is filled in by the bot"},
	{"reserved channel", demoRequired + "incident.channel=C1", "filled in by the bot"},
	{"reserved requester", demoRequired + "requester.id=UBOSS", "filled in by the bot"},
	{"reserved run", demoRequired + "run.id=x", "filled in by the bot"},
	{"reserved namespace", demoRequired + "incident.severity=1", "filled in by the bot"},
	{"bare word", demoRequired + "now", "word 4 is not name=value"},
	// Enum evasion: exact, case-sensitive, raw bytes.
	{"enum case", "demo context=Staging deployment=api", "must be exactly one of: staging, prod-eu, prod-us"},
	{"enum upper", "demo context=STAGING deployment=api", "must be exactly one of"},
	{"enum underscore", "demo context=prod_eu deployment=api", "must be exactly one of"},
	{"enum trailing dot", "demo context=prod-eu. deployment=api", "must be exactly one of"},
	{"enum leading space", "demo context= staging deployment=api", "`\"context\"` has an empty value"},
	{"enum mapped value", "demo context=staging deployment=api site=E1AAAAAAAAAAAA", "must be exactly one of: www, static"},
	// Unicode: look-alikes, invisible, controls, bidi.
	{"cyrillic a", "demo context=st\u0430ging deployment=api", "non-ASCII character U+0430"},
	{"cyrillic e in name", "demo context=staging deployment=\u0435pi", "non-ASCII character U+0435"},
	{"zero width space", "demo context=staging\u200b deployment=api", "U+200B"},
	{"word joiner", "demo context=staging deployment=a\u2060pi", "U+2060"},
	{"bom", "demo context=\ufeffstaging deployment=api", "U+FEFF"},
	{"bidi override", "demo context=staging deployment=a\u202epi", "U+202E"},
	{"nul", "demo context=staging deployment=a\x00pi", "control character U+0000"},
	{"escape", "demo context=staging deployment=a\x1b[31m", "control character U+001B"},
	{"non-breaking space", "demo context=staging deployment=a\u00a0pi", "U+00A0"},
	{"fullwidth", "demo context=staging deployment=\uff41pi", "U+FF41"},
	{"invalid utf8", "demo context=staging deployment=a\xffpi", "not valid UTF-8"},
	// Numbers: canonical decimal only, inside min/max.
	{"plus", demoRequired + "replicas=+5", "plain digits"},
	{"leading zero", demoRequired + "replicas=05", "plain digits"},
	{"exponent", demoRequired + "replicas=1e3", "plain digits"},
	{"hex", demoRequired + "replicas=0x10", "plain digits"},
	{"decimal point", demoRequired + "replicas=5.0", "plain digits"},
	{"negative", demoRequired + "replicas=-1", "must not start with \"-\""},
	{"overflow", demoRequired + "replicas=99999999999999999999", "plain digits"},
	{"eleven digits", demoRequired + "replicas=10000000000", "plain digits"},
	{"below min", demoRequired + "replicas=0", "must be from 1 to 30"},
	{"above max", demoRequired + "replicas=31", "must be from 1 to 30"},
	{"int spaces", demoRequired + "replicas=5\u2003", "U+2003"},
	// Durations: positive, bounded, Go syntax starting with a digit.
	{"zero duration", demoRequired + "since=0s", "longer than zero"},
	{"bare zero", demoRequired + "since=0", "longer than zero"},
	{"negative duration", demoRequired + "since=-5m", "must not start with \"-\""},
	{"plus duration", demoRequired + "since=+5m", "duration like"},
	{"over max", demoRequired + "since=7h", "must be from 1m to 6h"},
	{"under min", demoRequired + "since=30s", "must be from 1m to 6h"},
	{"no unit", demoRequired + "since=15", "duration like"},
	{"days", demoRequired + "since=1d", "duration like"},
	{"duration overflow", demoRequired + "since=9999999999999h", "duration like"},
	// Flags: only exactly --dry-run.
	{"em dash", demoRequired + "\u2014dry-run", "not a recognised option"},
	{"en dash", demoRequired + "\u2013dry-run", "not a recognised option"},
	{"dry-run=false", demoRequired + "--dry-run=false", "takes no value"},
	{"dry-run=true", demoRequired + "--dry-run=true", "takes no value"},
	{"single dash", demoRequired + "-dry-run", "not a recognised option"},
	{"dryrun", demoRequired + "--dryrun", "not a recognised option"},
	{"upper", demoRequired + "--DRY-RUN", "not a recognised option"},
	{"twice", demoRequired + "--dry-run --dry-run", "more than once"},
	// Limits before parsing.
	{"oversized", demoRequired + "msg=" + strings.Repeat("x", MaxCommandBytes), "too long"},
	{"too many tokens", demoRequired + strings.Repeat("a=b ", 15), "too many words"},
	// Slack formatting.
	{"user mention", "demo context=staging deployment=<@U123ABC>", "Slack mention or link"},
	{"here", "demo context=staging deployment=<!here>", "Slack mention or link"},
	{"channel", "demo context=staging deployment=<#C123|general>", "Slack mention or link"},
	{"disagreeing link", "demo context=staging deployment=<http://evil.example|api>", "Slack mention or link"},
	{"mailto", "demo context=staging deployment=<mailto:a@b.c|a@b.c>", "Slack mention or link"},
	{"unterminated", "demo context=staging deployment=<http://x", "unterminated"},
	{"stray gt", "demo context=staging deployment=a>b", "stray"},
	{"entity decoded once", "demo context=staging deployment=&amp;lt;", "\"&amp;lt;\""},
	{"decoded lt", "demo context=staging deployment=&lt;x&gt;", "must match"},
	{"long echo", "demo context=staging deployment=" + strings.Repeat("a", 200), "is 200 characters long"},
}

func TestGrammarRejects(t *testing.T) {
	rb := loadOne(t, "demo", demoRunbook)
	for _, tc := range grammarRejects {
		t.Run(tc.name, func(t *testing.T) {
			_, ps, err := parseBind(rb, tc.text)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tc.text, ps)
			}
			msg := mustUserError(t, err, KindInvalid)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
			if !strings.Contains(msg, "Nothing was run") {
				t.Fatalf("message does not say nothing ran: %q", msg)
			}
			for _, bad := range []string{"<@", "<!", "<#", "\x00", "\u202e", "\u200b"} {
				if strings.Contains(msg, bad) {
					t.Fatalf("message echoes %q unescaped: %q", bad, msg)
				}
			}
		})
	}
}

func TestBindErrorsShowUsageAndCutEchoes(t *testing.T) {
	rb := loadOne(t, "demo", demoRunbook)
	_, _, err := parseBind(rb, "demo context=staging deployment="+strings.Repeat("Q", 300))
	msg := mustUserError(t, err, KindInvalid)
	if !strings.Contains(msg, "Usage: `/incident run demo context=CONTEXT") {
		t.Fatalf("no usage in %q", msg)
	}
	if !strings.Contains(msg, "\""+strings.Repeat("Q", maxEcho)+"\"…") || strings.Contains(msg, strings.Repeat("Q", maxEcho+1)) {
		t.Fatalf("echo not cut to %d characters: %q", maxEcho, msg)
	}
	_, _, err = parseBind(rb, "demo context=staging deployment=&lt;!here&gt;")
	msg = mustUserError(t, err, KindInvalid)
	if strings.Contains(msg, "<!here>") || !strings.Contains(msg, "&lt;!here&gt;") {
		t.Fatalf("echo not escaped: %q", msg)
	}
}

func TestGrammarAccepts(t *testing.T) {
	rb := loadOne(t, "demo", demoRunbook)
	cases := []struct {
		name, text string
		want       map[string]string // name -> label (value for mapped enum checked below)
		dryRun     bool
	}{
		{"defaults", "demo context=staging deployment=api", map[string]string{"context": "staging", "site": "www", "replicas": "3", "since": "15m", "msg": "hello"}, false},
		{"extra spaces", "  demo   context=prod-eu  deployment=api  ", map[string]string{"context": "prod-eu"}, false},
		{"dry run anywhere", "demo --dry-run context=staging deployment=api", nil, true},
		{"int bounds", demoRequired + "replicas=1", map[string]string{"replicas": "1"}, false},
		{"int max", demoRequired + "replicas=30", map[string]string{"replicas": "30"}, false},
		{"fractional hours", demoRequired + "since=1.5h", map[string]string{"since": "1h30m"}, false},
		{"canonical minutes", demoRequired + "since=15m0s", map[string]string{"since": "15m"}, false},
		{"canonical hours", demoRequired + "since=1h0m0s", map[string]string{"since": "1h"}, false},
		{"seconds", demoRequired + "since=90s", map[string]string{"since": "1m30s"}, false},
		{"max duration", demoRequired + "since=6h", map[string]string{"since": "6h"}, false},
		{"metachars as literal", demoRequired + "msg=$(touch${IFS}/tmp/x);`id`|&&", map[string]string{"msg": "$(touch${IFS}/tmp/x);`id`|&&"}, false},
		{"entities decoded once", demoRequired + "msg=a&amp;b&lt;c&gt;&amp;lt;", map[string]string{"msg": "a&b<c>&lt;"}, false},
		{"auto link unwrapped", demoRequired + "msg=<http://example.com|example.com>", map[string]string{"msg": "example.com"}, false},
		{"url without label", demoRequired + "msg=<https://example.com/x?a=1&amp;b=2>", map[string]string{"msg": "https://example.com/x?a=1&b=2"}, false},
		{"label without scheme", demoRequired + "msg=<https://example.com/p|example.com/p>", map[string]string{"msg": "example.com/p"}, false},
		{"mapped enum", demoRequired + "site=static", map[string]string{"site": "static"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, ps, err := parseBind(rb, tc.text)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if cmd.DryRun != tc.dryRun {
				t.Fatalf("dry run = %v", cmd.DryRun)
			}
			for name, want := range tc.want {
				v, ok := ps.Get(name)
				if !ok || v.Label != want {
					t.Fatalf("%s = %+v, want label %q", name, v, want)
				}
			}
		})
	}
	_, ps, _ := parseBind(rb, demoRequired+"site=static")
	if v, _ := ps.Get("site"); v.Value != "E2BBBBBBBBBBBB" || v.Display() != "site=static (E2BBBBBBBBBBBB)" {
		t.Fatalf("mapped enum value %+v", v)
	}
	if v, _ := ps.Get("site"); v.Defaulted {
		t.Fatal("given value marked defaulted")
	}
	_, ps, _ = parseBind(rb, demoRequired)
	if v, _ := ps.Get("replicas"); !v.Defaulted {
		t.Fatal("absent value not marked defaulted")
	}
}

func TestSecretParameterNeverEchoed(t *testing.T) {
	rb := loadOne(t, "sec", `apiVersion: incidentbot/v1
kind: Runbook
id: sec
title: Secret
risk: low
confirm: false
params:
  - name: token
    type: string
    pattern: '^[A-Za-z0-9]{8,32}$'
    secret: true
    required: true
access: { requesters: { users: ['UREQ'] } }
limits: { timeout: 1m }
steps:
  - { name: s, argv: ['/bin/true', '--token={{token}}'], timeout: 10s }
`)
	for _, text := range []string{"sec sup3rS3cret other", "sec token=sup3rS3cret;x", "sec token=sup3rS3cret token=sup3rS3cret2", "sec token=-sup3rS3cret"} {
		_, _, err := parseBind(rb, text)
		msg := mustUserError(t, err, KindInvalid)
		if strings.Contains(msg, "sup3r") {
			t.Fatalf("secret echoed: %q", msg)
		}
	}
	_, ps, err := parseBind(rb, "sec sup3rS3cret") // the one required parameter, without its name
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ps.Get("token"); v.Display() != "token=•••" {
		t.Fatalf("display %q", v.Display())
	}
	if strings.Contains(rb.Usage(), "default") {
		t.Fatal("usage shows a default for a secret")
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[string]string{"15m0s": "15m", "1h0m0s": "1h", "1h30m0s": "1h30m", "1m30s": "1m30s", "500ms": "500ms", "1.5s": "1.5s", "2h0m1s": "2h0m1s"} {
		d, err := parsePositiveDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", in, got, want)
		}
	}
}
