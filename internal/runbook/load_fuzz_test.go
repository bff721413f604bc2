package runbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The runbook file loader's fuzz target: YAML bytes → strict decode → lint,
// through LoadDir as the bot and `bot runbooks validate` run it. The seeds
// run in the normal test suite; fuzz with
//
//	go test -run '^$' -fuzz '^FuzzLoadDir$' -fuzztime 60s ./internal/runbook/

// Independent restatements of the documented rules (RUNBOOKS.md §4.1,
// §4.2, §4.10), so a runbook that loads is checked against the spec rather
// than against the linter's own tables.
var (
	fzIDShape     = regexp.MustCompile(`^[a-z][a-z0-9-]{1,47}$`)
	fzParamShape  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	fzStepShape   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,47}$`)
	fzEnvShape    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,63}$`)
	fzUserShape   = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	fzGroupShape  = regexp.MustCompile(`^S[A-Z0-9]{2,20}$`)
	fzPlaceholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)
	fzReserved    = []string{"incident.id", "incident.channel", "requester.id", "run.id"}
	fzBotEnv      = []string{"PATH", "HOME", "TMPDIR", "LANG", "IFS", "BASH_ENV", "ENV"}
)

// fuzzRunbookSeeds are the shipped runbooks (by id) and edge cases (by
// name; their file is fuzzed.yaml, so only the edge case can fail them).
func fuzzRunbookSeeds(f testing.TB) (shipped, edge map[string]string) {
	seeds := map[string]string{}
	files, err := filepath.Glob(filepath.Join("..", "..", "runbooks", "*.yaml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no shipped runbooks to seed from: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds[strings.TrimSuffix(filepath.Base(p), ".yaml")] = string(b)
	}
	minimal := `apiVersion: incidentbot/v1
kind: Runbook
id: fuzzed
title: Minimal
risk: low
confirm: false
access: { requesters: { users: [UREQ] } }
limits: { timeout: 1m }
steps:
  - { name: run, argv: [/bin/echo, '{{incident.id}}'], timeout: 30s }
`
	shipped, seeds = seeds, map[string]string{"minimal": minimal}
	laughs := "apiVersion: &a [x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 9; i++ {
		name := string(rune('b' + i))
		laughs += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	for name, body := range map[string]string{
		"laughs":      laughs,
		"merge":       strings.Replace(minimal, "limits: { timeout: 1m }", "base: &b { timeout: 1m }\nlimits: { <<: *b }", 1),
		"anchor-key":  strings.Replace(minimal, "title: Minimal", "&k title: Minimal", 1),
		"deep":        strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
		"deep-map":    strings.Repeat("a: {", 5000) + strings.Repeat("}", 5000),
		"deep-block":  buildNested(200),
		"two-docs":    minimal + "---\n" + minimal,
		"empty":       "",
		"comment":     "# nothing\n",
		"null":        "~\n",
		"list":        "- a\n- b\n",
		"scalar":      "just text",
		"bom":         "\ufeff" + minimal,
		"nul":         strings.Replace(minimal, "/bin/echo", "/bin/ec\x00ho", 1),
		"nul-escape":  strings.Replace(minimal, "/bin/echo", `"/bin/ec\0ho"`, 1),
		"invalid-utf": strings.Replace(minimal, "Minimal", "Min\xff\xfeimal", 1),
		"tabs":        strings.ReplaceAll(minimal, "  - ", "\t- "),
		"unknown-key": minimal + "shell: true\n",
		"dup-key":     minimal + "risk: high\n",
		"huge-int":    minimal + "output: { chat: { max_lines: 99999999999999999999999 } }\n",
		"neg-int":     minimal + "output: { success_exit_codes: [-1, 256] }\n",
		"float-int":   minimal + "approval: { count: 1.5, approvers: { users: [UAPP] }, expires_after: 1h }\n",
		"wrong-types": minimal + "params: { name: x }\nenv: [A, B]\n",
		"bool-id":     strings.Replace(minimal, "id: fuzzed", "id: yes", 1),
		"steps-empty": strings.Replace(minimal, "steps:\n  - { name: run, argv: [/bin/echo, '{{incident.id}}'], timeout: 30s }", "steps: []", 1),
		"steps-null":  strings.Replace(minimal, "steps:\n  - { name: run, argv: [/bin/echo, '{{incident.id}}'], timeout: 30s }", "steps: ~", 1),
		"relative":    strings.Replace(minimal, "/bin/echo", "echo", 1),
		"dotdot":      strings.Replace(minimal, "/bin/echo", "/bin/../bin/echo", 1),
		"placeholder": strings.Replace(minimal, "/bin/echo", "/bin/{{x}}", 1),
		"undeclared":  strings.Replace(minimal, "{{incident.id}}", "{{nope}}", 1),
		"template":    strings.Replace(minimal, "{{incident.id}}", "{{ incident.id }}}}{{", 1),
		"missing":     strings.Replace(minimal, "/bin/echo", "/opt/missing/tool", 1),
		"env-path":    minimal + "env: { PATH: /tmp, LD_PRELOAD: x.so, ok_lower: y }\n",
		"high-risk":   strings.Replace(strings.Replace(minimal, "risk: low", "risk: high", 1), "confirm: false", "confirm: true", 1) + "params: [{ name: x, type: string, pattern: '.*', required: true }]\n",
		"secret-argv": minimal + "secrets: [{ env: TOKEN, ref: cdn/token }]\n",
		"big-pattern": minimal + "params: [{ name: x, type: string, pattern: '" + strings.Repeat("a", 600) + "', required: true }]\n",
		"bad-regexp":  minimal + "params: [{ name: x, type: string, pattern: '(?P<', required: true }]\n",
		"huge-repeat": minimal + "params: [{ name: x, type: string, pattern: 'a{1000}{1000}', required: true }]\n",
		"binary-tag":  minimal + "description: !!binary aGVsbG8=\n",
		"custom-tag":  minimal + "description: !shell rm\n",
		"long-line":   minimal + "description: " + strings.Repeat("x", MaxFileBytes) + "\n",
		"crlf":        strings.ReplaceAll(minimal, "\n", "\r\n"),
	} {
		seeds[name] = body
	}
	return shipped, seeds
}

// buildNested is a block-style mapping nested n levels deep.
func buildNested(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	b.WriteString(strings.Repeat(" ", n) + "v\n")
	return b.String()
}

// FuzzLoadDir writes the fuzzed bytes to <tmp>/<stem>.yaml and loads the
// directory. Invariants: no panic or hang (alias bombs are rejected, not
// expanded); the file either loads as exactly one runbook with no errors
// or is rejected with at least one; every problem names the file and a
// non-empty reason, every problem about a decoded mapping names a field,
// and reports are valid UTF-8; anchors and aliases are always rejected; a
// runbook that loads satisfies the documented lint rules (id = file stem,
// absolute clean argv[0] without placeholders, declared placeholders only,
// anchored RE2 patterns of at most 512 bytes, int and duration bounds,
// allowed requesters, risk minimums, no bot-owned env, bounded timeouts),
// renders every argv, and its version is the file's SHA-256.
func FuzzLoadDir(f *testing.F) {
	shipped, edge := fuzzRunbookSeeds(f)
	for _, stem := range slices.Sorted(maps.Keys(shipped)) {
		f.Add([]byte(shipped[stem]), stem)
	}
	for _, name := range slices.Sorted(maps.Keys(edge)) {
		f.Add([]byte(edge[name]), "fuzzed")
	}
	f.Fuzz(func(t *testing.T, data []byte, stem string) {
		if !fzFileName(stem) {
			stem = "fuzzed"
		}
		dir := t.TempDir()
		path := filepath.Join(dir, stem+".yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var checked []string
		r, err := LoadDir(dir, LoadOptions{CheckProgram: func(p string) error {
			checked = append(checked, p)
			if strings.Contains(p, "missing") {
				return errors.New("program " + p + " is not installed on this host")
			}
			return nil
		}})
		if err != nil {
			t.Fatalf("LoadDir: %v", err)
		}
		report := r.String()
		if !utf8.ValidString(report) {
			t.Fatalf("report is not valid UTF-8: %q", report)
		}
		decoded := fzDecodedMapping(data)
		for _, p := range slices.Concat(r.Errors, r.Warnings) {
			if p.File != path || strings.TrimSpace(p.Reason) == "" {
				t.Fatalf("problem without a file or reason: %#v", p)
			}
			if decoded && p.Field == "" && len(data) <= MaxFileBytes {
				t.Fatalf("problem about a decoded mapping names no field: %s", p)
			}
		}
		for _, p := range checked {
			if !filepath.IsAbs(p) {
				t.Fatalf("checked a relative program %q", p)
			}
		}
		if fzHasAnchor(data) && len(r.Runbooks) > 0 {
			t.Fatal("a file with YAML anchors or aliases loaded")
		}
		switch {
		case len(r.Runbooks) == 0:
			if len(r.Errors) == 0 || !slices.Equal(r.Rejected, []string{stem}) {
				t.Fatalf("nothing loaded, but errors %v and rejected %v", r.Errors, r.Rejected)
			}
			return
		case len(r.Runbooks) > 1 || len(r.Errors) > 0 || len(r.Rejected) > 0:
			t.Fatalf("loaded %d runbooks with errors %v", len(r.Runbooks), r.Errors)
		}
		fzCheckRunbook(t, r.Runbooks[0], stem, data)
	})
}

func fzFileName(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsAny(s, "/\x00") && !strings.HasPrefix(s, ".") && utf8.ValidString(s)
}

// fzDecodedMapping reports whether data is one YAML document holding a
// mapping, without anchors or aliases: the files whose problems are all
// about a field.
func fzDecodedMapping(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if dec.Decode(&root) != nil || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return false
	}
	var extra yaml.Node
	return errors.Is(dec.Decode(&extra), io.EOF) && !fzHasAnchor(data)
}

// fzHasAnchor reports whether data parses and uses an anchor or alias.
func fzHasAnchor(data []byte) bool {
	var root yaml.Node
	if yaml.NewDecoder(bytes.NewReader(data)).Decode(&root) != nil {
		return false
	}
	found := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Anchor != "" || n.Kind == yaml.AliasNode {
			found = true
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return found
}

// fzCheckRunbook checks a loaded runbook against the documented rules.
func fzCheckRunbook(t *testing.T, rb *Runbook, stem string, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	switch {
	case rb.ID != stem || !fzIDShape.MatchString(rb.ID):
		t.Fatalf("id %q from file %q", rb.ID, stem)
	case rb.Version != hex.EncodeToString(sum[:]):
		t.Fatalf("version %s is not the file's SHA-256", rb.Version)
	case strings.TrimSpace(rb.Title) == "":
		t.Fatal("no title")
	case rb.Risk != RiskLow && rb.Risk != RiskMedium && rb.Risk != RiskHigh:
		t.Fatalf("risk %q", rb.Risk)
	case rb.Risk != RiskLow && !rb.Confirm:
		t.Fatalf("risk %s without confirmation", rb.Risk)
	case rb.Risk == RiskHigh && rb.Approval == nil:
		t.Fatal("risk high without approval")
	case len(rb.Steps) == 0:
		t.Fatal("a runbook without steps loaded")
	case rb.Limits.Timeout <= 0 || rb.Limits.Timeout > DefaultCaps().MaxTimeout:
		t.Fatalf("limits.timeout %v", rb.Limits.Timeout)
	case rb.Limits.MaxConcurrent < 1 || rb.Limits.MaxConcurrent > DefaultCaps().MaxConcurrentRuns:
		t.Fatalf("limits.max_concurrent %d", rb.Limits.MaxConcurrent)
	case rb.Output.CaptureMaxBytes < 4<<10 || rb.Output.CaptureMaxBytes > DefaultCaps().MaxCaptureBytes:
		t.Fatalf("capture_max_bytes %d", rb.Output.CaptureMaxBytes)
	}

	// Requesters: at least one, each of its kind.
	rq := rb.Access.Requesters
	if rq.Empty() {
		t.Fatal("no requesters: access must be denied by default")
	}
	fzCheckPrincipals(t, "requesters", rq)
	if a := rb.Approval; a != nil {
		if a.Approvers.Empty() || a.Count < 1 || a.Count > 10 || a.ExpiresAfter <= 0 || a.ExpiresAfter > maxApprovalTTL {
			t.Fatalf("approval %+v", a)
		}
		fzCheckPrincipals(t, "approvers", a.Approvers)
	}

	// Parameters: typed, bounded, anchored.
	values := map[string]string{}
	for _, n := range fzReserved {
		values[n] = "R"
	}
	seen := map[string]bool{}
	for _, p := range rb.Params {
		if !fzParamShape.MatchString(p.Name) || seen[p.Name] || slices.Contains(fzReserved, p.Name) {
			t.Fatalf("parameter name %q", p.Name)
		}
		seen[p.Name] = true
		values[p.Name] = "V"
		switch p.Type {
		case TypeEnum:
			if len(p.Choices) == 0 || p.Pattern != "" {
				t.Fatalf("enum %s: %d choices, pattern %q", p.Name, len(p.Choices), p.Pattern)
			}
		case TypeString:
			if (p.Pattern == "") == (len(p.Choices) == 0) {
				t.Fatalf("string %s needs exactly one of pattern or values", p.Name)
			}
		case TypeInt, TypeDuration:
			if p.Min == "" || p.Max == "" {
				t.Fatalf("%s %s without min and max", p.Type, p.Name)
			}
		case TypeURL, TypeHost:
			if len(p.Choices) > 0 || p.Min != "" {
				t.Fatalf("%s %s with values or min", p.Type, p.Name)
			}
			for _, suffix := range targetSuffixes[p.Type] { // filled with the checked address
				values[p.Name+"."+suffix] = "V"
			}
		default:
			t.Fatalf("parameter %s of type %q", p.Name, p.Type)
		}
		if p.Pattern != "" {
			if len(p.Pattern) > MaxPatternBytes || p.re == nil || p.re.String() != `^(?:`+p.Pattern+`)$` {
				t.Fatalf("pattern %q of %s is not bounded and anchored (%v)", p.Pattern, p.Name, p.re)
			}
			if rb.Risk == RiskHigh && slices.Contains([]string{".*", ".+", `\S+`, `\S*`, "(.*)", "(.+)"}, p.Pattern) {
				t.Fatalf("high-risk runbook with catch-all pattern %q", p.Pattern)
			}
		}
		if p.MaxLength < 1 || p.MaxLength > HardMaxLength {
			t.Fatalf("max_length %d", p.MaxLength)
		}
		if p.HasDefault && (p.Required || p.Secret) {
			t.Fatalf("parameter %s: a default on a required or secret parameter", p.Name)
		}
		if !p.HasDefault && !p.Required {
			t.Fatalf("optional parameter %s without a default", p.Name)
		}
		if p.Secret && p.Type != TypeString {
			t.Fatalf("secret %s parameter %s", p.Type, p.Name)
		}
	}

	// Environment: static, never what the bot sets.
	for _, e := range rb.Env {
		if !fzEnvShape.MatchString(e.Name) || slices.Contains(fzBotEnv, e.Name) || strings.HasPrefix(e.Name, "LD_") ||
			strings.ContainsRune(e.Value, 0) || strings.Contains(e.Value, "{{") {
			t.Fatalf("env %s=%q", e.Name, e.Value)
		}
	}
	for _, s := range rb.Secrets {
		if !fzEnvShape.MatchString(s.Env) || slices.Contains(fzBotEnv, s.Env) || strings.HasPrefix(s.Env, "LD_") {
			t.Fatalf("secret env %s", s.Env)
		}
	}

	// Steps: fixed absolute programs, declared placeholders, bounded time.
	unavailable := false
	for _, group := range [][]Step{rb.Steps, rb.DryRun} {
		names := map[string]bool{}
		for _, st := range group {
			if !fzStepShape.MatchString(st.Name) || names[st.Name] {
				t.Fatalf("step name %q", st.Name)
			}
			names[st.Name] = true
			if len(st.Argv) == 0 || len(st.argv) != len(st.Argv) {
				t.Fatalf("step %s: argv %q", st.Name, st.Argv)
			}
			prog := st.Argv[0]
			if !filepath.IsAbs(prog) || filepath.Clean(prog) != prog || strings.Contains(prog, "{{") || strings.Contains(prog, "}}") {
				t.Fatalf("step %s runs %q", st.Name, prog)
			}
			if st.Timeout <= 0 || st.Timeout > rb.Limits.Timeout {
				t.Fatalf("step %s timeout %v (limit %v)", st.Name, st.Timeout, rb.Limits.Timeout)
			}
			for i, a := range st.Argv {
				if strings.ContainsRune(a, 0) {
					t.Fatalf("step %s argv[%d] holds a NUL", st.Name, i)
				}
				for _, m := range fzPlaceholder.FindAllStringSubmatch(a, -1) {
					if _, ok := values[m[1]]; !ok {
						t.Fatalf("step %s argv[%d] uses undeclared {{%s}}", st.Name, i, m[1])
					}
				}
				if _, err := st.argv[i].render(values); err != nil {
					t.Fatalf("step %s argv[%d] %q does not render: %v", st.Name, i, a, err)
				}
			}
			if strings.Contains(prog, "missing") != (st.Unavailable != "") {
				t.Fatalf("step %s running %q unavailable=%q", st.Name, prog, st.Unavailable)
			}
		}
	}
	for _, st := range rb.Steps {
		unavailable = unavailable || st.Unavailable != ""
	}
	if unavailable == rb.Available() {
		t.Fatalf("runbook available=%v with unavailable steps=%v", rb.Available(), unavailable)
	}
	if _, err := rb.Limits.key.render(values); err != nil {
		t.Fatalf("concurrency_key %q does not render: %v", rb.Limits.ConcurrencyKey, err)
	}
	for _, m := range fzPlaceholder.FindAllStringSubmatch(rb.Limits.ConcurrencyKey, -1) {
		if p, ok := rb.Param(m[1]); ok && p.Secret {
			t.Fatalf("concurrency_key uses secret %s", m[1])
		}
	}
	for i, re := range rb.Output.redact {
		if re.MatchString("") || re.String() != rb.Output.Redact[i] {
			t.Fatalf("redact pattern %q", rb.Output.Redact[i])
		}
	}
	for _, c := range rb.Output.SuccessExitCodes {
		if c < 0 || c > 255 {
			t.Fatalf("success exit code %d", c)
		}
	}
	if u := rb.Usage(); !utf8.ValidString(u) || !strings.Contains(u, rb.ID) {
		t.Fatalf("usage %q", u)
	}
}

func fzCheckPrincipals(t *testing.T, what string, p Principals) {
	t.Helper()
	for _, u := range p.Users {
		if !fzUserShape.MatchString(u) {
			t.Fatalf("%s: user %q", what, u)
		}
	}
	for _, g := range p.UserGroups {
		if !fzGroupShape.MatchString(g) {
			t.Fatalf("%s: group %q", what, g)
		}
	}
	for _, r := range p.IncidentRoles {
		if !slices.Contains([]string{"commander", "comms", "scribe"}, r) {
			t.Fatalf("%s: role %q", what, r)
		}
	}
}
