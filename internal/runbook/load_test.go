package runbook

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// validDoc is a medium-risk runbook that passes every lint rule; each
// validator case breaks exactly one thing.
func validDoc() spec {
	return spec{
		"apiVersion": "incidentbot/v1", "kind": "Runbook", "id": "valid", "title": "Valid",
		"risk": "medium", "confirm": true,
		"params": []any{
			map[string]any{"name": "target", "type": "string", "pattern": "^[a-z]{1,10}$", "required": true},
			map[string]any{"name": "count", "type": "int", "min": 1, "max": 5, "default": "2"},
			map[string]any{"name": "env", "type": "enum", "values": []any{"staging", "prod"}, "required": true},
		},
		"access": map[string]any{"requesters": map[string]any{"users": []any{"U0AAA"}}},
		"approval": map[string]any{
			"required_when": []any{map[string]any{"param": "env", "in": []any{"prod"}}},
			"approvers":     map[string]any{"user_groups": []any{"S0LEADS"}},
			"expires_after": "10m",
		},
		"limits":  map[string]any{"timeout": "1m"},
		"secrets": []any{map[string]any{"env": "API_KEY", "ref": "store/api-key"}},
		"steps": []any{
			map[string]any{"name": "go", "argv": []any{"/bin/echo", "--target={{target}}", "--count={{count}}"}, "timeout": "30s"},
		},
	}
}

// path navigates a spec for mutation: path("params", 0) etc.
func at(s spec, keys ...any) map[string]any {
	var cur any = map[string]any(s)
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

func loadReport(t *testing.T, files map[string]string) *LoadReport {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := LoadDir(dir, LoadOptions{CheckProgram: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func marshal(t *testing.T, s spec) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidDocLoads(t *testing.T) {
	r := loadReport(t, map[string]string{"valid.yaml": marshal(t, validDoc())})
	if r.HasErrors() || len(r.Runbooks) != 1 {
		t.Fatalf("valid document rejected:\n%s", r)
	}
	rb := r.Runbooks[0]
	if !rb.Enabled || !rb.Confirm || rb.Approval.Count != 1 || rb.Limits.MaxConcurrent != 1 || rb.Limits.ConcurrencyKey != "valid" ||
		rb.Output.CaptureMaxBytes != defaultCapture || rb.Output.Chat.Where != WhereThread || !rb.Access.IncidentChannelsOnly {
		t.Fatalf("defaults not applied: %+v", rb)
	}
	if len(rb.Version) != 64 {
		t.Fatalf("version %q is not a SHA-256", rb.Version)
	}
}

func TestValidatorReportsPreciseProblems(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s spec)
		field  string
		reason string
	}{
		{"unknown top-level key", func(s spec) { s["colour"] = "red" }, "colour", `unknown field "colour"`},
		{"unknown nested key", func(s spec) { at(s, "params", 0)["patern"] = "x" }, "params[0].patern", `unknown field "patern"`},
		{"missing apiVersion", func(s spec) { delete(s, "apiVersion") }, "apiVersion", `must be "incidentbot/v1"`},
		{"wrong kind", func(s spec) { s["kind"] = "Job" }, "kind", `must be "Runbook"`},
		{"id differs from file", func(s spec) { s["id"] = "other" }, "id", `must equal the file name "valid"`},
		{"missing id", func(s spec) { delete(s, "id") }, "id", "is required"},
		{"missing title", func(s spec) { delete(s, "title") }, "title", "is required"},
		{"bad risk", func(s spec) { s["risk"] = "extreme" }, "risk", "low, medium or high"},
		{"missing steps", func(s spec) { delete(s, "steps") }, "steps", "is required"},
		{"missing access", func(s spec) { delete(s, "access") }, "access", "is required"},
		{"empty requesters", func(s spec) { s["access"] = map[string]any{"requesters": map[string]any{}} }, "access.requesters", "at least one"},
		{"user ID shape", func(s spec) { at(s, "access", "requesters")["users"] = []any{"alice"} }, "access.requesters.users[0]", "not a Slack user ID"},
		{"group ID shape", func(s spec) { at(s, "access", "requesters")["user_groups"] = []any{"G123"} }, "access.requesters.user_groups[0]", "not a Slack user-group ID"},
		{"unknown role", func(s spec) { at(s, "access", "requesters")["incident_roles"] = []any{"owner"} }, "access.requesters.incident_roles[0]", "not an incident role"},
		// Incident roles narrow; they never admit anyone on their own.
		{"requesters by role alone", func(s spec) {
			s["access"] = map[string]any{"requesters": map[string]any{"incident_roles": []any{"commander"}}}
		}, "access.requesters.incident_roles", "incident roles alone cannot allow anyone to run a runbook: anyone can take a role in chat (`/incident lead`"},
		{"approvers by role alone", func(s spec) {
			at(s, "approval")["approvers"] = map[string]any{"incident_roles": []any{"commander"}}
		}, "approval.approvers.incident_roles", "List who may approve it in approval.approvers.users (Slack user IDs) or approval.approvers.user_groups"},
		{"dm with incident only", func(s spec) {
			at(s, "access")["channels"] = map[string]any{"incident_channels_only": true, "allow_direct_message": true}
		}, "access.channels.allow_direct_message", "cannot be true"},
		{"relative program", func(s spec) { at(s, "steps", 0)["argv"] = []any{"kubectl", "get"} }, "steps[0].argv[0]", "must be an absolute path"},
		{"placeholder program", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/usr/bin/{{target}}"} }, "steps[0].argv[0]", "must be fixed"},
		{"unclean program", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/usr/bin/../bin/echo"} }, "steps[0].argv[0]", "clean path"},
		{"empty argv", func(s spec) { at(s, "steps", 0)["argv"] = []any{} }, "steps[0].argv", "must not be empty"},
		{"undeclared placeholder", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/bin/echo", "{{nope}}"} }, "steps[0].argv[1]", "{{nope}} is not a declared parameter"},
		{"secret in argv", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/bin/echo", "--key={{api_key}}"} }, "steps[0].argv[1]", "secrets are passed in env only"},
		{"expression placeholder", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/bin/echo", "{{ target | upper }}"} }, "steps[0].argv[1]", "must be {{name}}"},
		{"unterminated placeholder", func(s spec) { at(s, "steps", 0)["argv"] = []any{"/bin/echo", "{{target"} }, "steps[0].argv[1]", "unterminated"},
		{"invalid RE2", func(s spec) { at(s, "params", 0)["pattern"] = "(?<=x)a" }, "params[0].pattern", "not a valid RE2 pattern"},
		{"pattern too long", func(s spec) { at(s, "params", 0)["pattern"] = strings.Repeat("a", 600) }, "params[0].pattern", "is 600 bytes"},
		{"string without constraint", func(s spec) { delete(at(s, "params", 0), "pattern") }, "params[0]", "needs pattern or values"},
		{"int without min", func(s spec) { delete(at(s, "params", 1), "min") }, "params[1].min", "is required for int"},
		{"int bad max", func(s spec) { at(s, "params", 1)["max"] = "1e3" }, "params[1].max", "non-negative whole number"},
		{"duration without max", func(s spec) {
			s["params"] = append(s["params"].([]any), map[string]any{"name": "since", "type": "duration", "min": "1m", "default": "5m"})
		}, "params[3].max", "is required for duration"},
		{"default fails own rules", func(s spec) { at(s, "params", 1)["default"] = "9" }, "params[1].default", "does not satisfy"},
		{"optional without default", func(s spec) { delete(at(s, "params", 1), "default") }, "params[1]", "optional parameter needs a default"},
		{"required with default", func(s spec) { at(s, "params", 0)["default"] = "abc" }, "params[0].default", "required parameter cannot have a default"},
		{"bad param name", func(s spec) { at(s, "params", 0)["name"] = "Target" }, "params[0].name", "must match"},
		{"duplicate param", func(s spec) { at(s, "params", 1)["name"] = "target" }, "params[1].name", "duplicate parameter"},
		{"enum label with dash", func(s spec) { at(s, "params", 2)["values"] = []any{"-prod", "staging"} }, "params[2].values[0]", "must not start with"},
		{"enum duplicate label", func(s spec) { at(s, "params", 2)["values"] = []any{"prod", "prod"} }, "params[2].values[1]", "duplicate label"},
		{"missing step timeout", func(s spec) { delete(at(s, "steps", 0), "timeout") }, "steps[0].timeout", "is required"},
		{"step timeout over run", func(s spec) { at(s, "steps", 0)["timeout"] = "2m" }, "steps[0].timeout", "exceeds limits.timeout"},
		{"missing limits", func(s spec) { delete(s, "limits") }, "limits", "is required"},
		{"timeout over cap", func(s spec) { at(s, "limits")["timeout"] = "16m" }, "limits.timeout", "exceeds the bot limit 15m"},
		{"max_concurrent over cap", func(s spec) { at(s, "limits")["max_concurrent"] = 9 }, "limits.max_concurrent", "from 1 to 8"},
		{"capture over cap", func(s spec) { s["output"] = map[string]any{"capture_max_bytes": "8MiB"} }, "output.capture_max_bytes", "bot cap"},
		{"redact matches empty", func(s spec) { s["output"] = map[string]any{"redact": []any{"a*"}} }, "output.redact[0]", "matches the empty string"},
		{"chat too large", func(s spec) { s["output"] = map[string]any{"chat": map[string]any{"max_chars": 5000}} }, "output.chat.max_chars", "one Slack section block"},
		{"medium without confirm", func(s spec) { s["confirm"] = false }, "confirm", "must be true for risk medium"},
		{"high without approval", func(s spec) { s["risk"] = "high"; delete(s, "approval") }, "approval", "required for risk high"},
		{"high catch-all", func(s spec) { s["risk"] = "high"; at(s, "params", 0)["pattern"] = "^.+$" }, "params[0].pattern", "catch-all"},
		{"high catch-all class", func(s spec) { s["risk"] = "high"; at(s, "params", 0)["pattern"] = `^\S+$` }, "params[0].pattern", "catch-all"},
		{"approval without approvers", func(s spec) { delete(at(s, "approval"), "approvers") }, "approval.approvers", "at least one"},
		{"approval count", func(s spec) { at(s, "approval")["count"] = 0 }, "approval.count", "from 1 to"},
		{"approval expiry missing", func(s spec) { delete(at(s, "approval"), "expires_after") }, "approval.expires_after", "is required"},
		{"required_when unknown param", func(s spec) { at(s, "approval", "required_when", 0)["param"] = "nope" }, "approval.required_when[0].param", "not a declared parameter"},
		{"required_when impossible value", func(s spec) { at(s, "approval", "required_when", 0)["in"] = []any{"Prod"} }, "approval.required_when[0].in[0]", "can never be given"},
		{"env overrides PATH", func(s spec) { s["env"] = map[string]any{"PATH": "/tmp"} }, "env.PATH", "set by the bot"},
		{"env LD_PRELOAD", func(s spec) { s["env"] = map[string]any{"LD_PRELOAD": "/tmp/x.so"} }, "env.LD_PRELOAD", "set by the bot"},
		{"env placeholder", func(s spec) { s["env"] = map[string]any{"TARGET": "{{target}}"} }, "env.TARGET", "placeholders are not allowed"},
		{"secret ref traversal", func(s spec) { at(s, "secrets", 0)["ref"] = "../etc/shadow" }, "secrets[0].ref", "not a valid secret reference"},
		{"secret env clash", func(s spec) { s["env"] = map[string]any{"API_KEY": "x"} }, "secrets[0].env", "set more than once"},
		{"concurrency key secret", func(s spec) {
			s["params"] = append(s["params"].([]any), map[string]any{"name": "tok", "type": "string", "pattern": "^[a-z]+$", "secret": true, "required": true})
			at(s, "limits")["concurrency_key"] = "{{tok}}"
		}, "limits.concurrency_key", "secret parameter tok cannot be used here"},
		{"allow_addresses on string", func(s spec) { at(s, "params", 0)["allow_addresses"] = []any{"private"} }, "params[0].allow_addresses", "only for url and host"},
		{"unknown address class", func(s spec) {
			s["params"].([]any)[0] = map[string]any{"name": "target", "type": "url", "required": true, "allow_addresses": []any{"everything"}}
		}, "params[0].allow_addresses[0]", `"everything" is not one of loopback, link_local, private`},
		{"checked address in key", func(s spec) {
			s["params"].([]any)[0] = map[string]any{"name": "target", "type": "host", "required": true}
			at(s, "limits")["concurrency_key"] = "{{target.address}}"
		}, "limits.concurrency_key", "{{target.address}} cannot be used here"},
		{"type mismatch", func(s spec) { at(s, "limits")["timeout"] = []any{1} }, "limits.timeout", "expected text, found a list"},
		{"flow mapping type mismatch", func(s spec) {
			s["output"] = map[string]any{"chat": map[string]any{"where": "thread", "max_lines": "many"}}
		}, "output.chat.max_lines", "expected a whole number, found text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validDoc()
			tc.mutate(s)
			r := loadReport(t, map[string]string{"valid.yaml": marshal(t, s)})
			assertProblem(t, r, "valid.yaml", tc.field, tc.reason)
		})
	}
}

func assertProblem(t *testing.T, r *LoadReport, file, field, reason string) {
	t.Helper()
	if len(r.Runbooks) != 0 {
		t.Fatalf("invalid runbook was loaded:\n%s", r)
	}
	for _, p := range r.Errors {
		if filepath.Base(p.File) == file && p.Field == field && strings.Contains(p.Reason, reason) {
			line, want := p.String(), p.File+": "+field+": "+p.Reason
			if field == "" {
				want = p.File + ": " + p.Reason
			}
			if line != want {
				t.Fatalf("problem line %q not in file: field: reason form", line)
			}
			return
		}
	}
	t.Fatalf("no problem %s: %s: …%s…; report:\n%s", file, field, reason, r)
}

func TestValidatorRawDocuments(t *testing.T) {
	valid := marshal(t, validDoc())
	cases := []struct {
		name, body, field, reason string
	}{
		{"anchor and alias", strings.Replace(valid, "title: Valid", "title: &t Valid\ndescription: *t", 1), "title", "anchors and aliases are not allowed"},
		{"alias bomb", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "a", "anchors and aliases"},
		{"two documents", valid + "---\n" + valid, "", "exactly one YAML document"},
		{"empty", "", "", "file is empty"},
		{"not a mapping", "- a\n- b\n", "", "must be a mapping"},
		{"syntax", "title: [unclosed\n", "", "invalid YAML"},
		{"duplicate key", valid + "title: Again\n", "title", "duplicate key"},
		{"oversized", valid + "# " + strings.Repeat("x", MaxFileBytes) + "\n", "", "larger than 65536 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := loadReport(t, map[string]string{"valid.yaml": tc.body})
			assertProblem(t, r, "valid.yaml", tc.field, tc.reason)
		})
	}
}

func TestLoadDirIgnoresAndIsolatesBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := validDoc()
	good["id"] = "good"
	bad := validDoc()
	bad["id"] = "bad"
	delete(bad, "access")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", marshal(t, good))
	write("bad.yaml", marshal(t, bad))
	for _, name := range []string{".hidden.yaml", "other.yml", "good.yaml~", "README.md"} {
		write(name, marshal(t, good))
	}
	if err := os.Symlink(filepath.Join(dir, "good.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := LoadDir(dir, LoadOptions{CheckProgram: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runbooks) != 1 || r.Runbooks[0].ID != "good" {
		t.Fatalf("want only good loaded:\n%s", r)
	}
	if len(r.Rejected) != 1 || r.Rejected[0] != "bad" {
		t.Fatalf("rejected = %v", r.Rejected)
	}
	warned := map[string]bool{}
	for _, w := range r.Warnings {
		warned[filepath.Base(w.File)] = strings.HasPrefix(w.Reason, "ignored")
	}
	for _, name := range []string{".hidden.yaml", "other.yml", "good.yaml~", "README.md", "link.yaml", "sub.yaml"} {
		if !warned[name] {
			t.Errorf("%s not ignored with a warning:\n%s", name, r)
		}
	}
	if _, err := LoadDir(filepath.Join(dir, "missing"), LoadOptions{}); err == nil {
		t.Fatal("missing directory not an error")
	}
}

func TestDuplicateIDsAreBothRejected(t *testing.T) {
	// File stems are unique within a directory and id must equal the stem,
	// so duplicates cannot come from LoadDir today; the merge step is
	// tested directly to keep the rule if layout rules ever loosen.
	r := &LoadReport{}
	a := &Runbook{ID: "x", File: "a.yaml"}
	b := &Runbook{ID: "x", File: "b.yaml"}
	c := &Runbook{ID: "y", File: "y.yaml"}
	mergeUnique(r, map[string][]*Runbook{"x": {a, b}, "y": {c}})
	if len(r.Runbooks) != 1 || r.Runbooks[0].ID != "y" || len(r.Errors) != 2 || r.Rejected[0] != "x" {
		t.Fatalf("duplicates not both rejected: %+v", r)
	}
}

func TestUnavailableProgramIsAWarning(t *testing.T) {
	s := validDoc()
	at(s, "steps", 0)["argv"] = []any{"/nonexistent/bin/kubectl", "get"}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "valid.yaml"), []byte(marshal(t, s)), 0o644); err != nil {
		t.Fatal(err)
	}
	report, hasErrors := ValidateDir(dir, LoadOptions{})
	if hasErrors {
		t.Fatalf("unavailable program reported as error:\n%s", report)
	}
	if !strings.Contains(report, "warning: "+filepath.Join(dir, "valid.yaml")+": steps[0].argv[0]: program /nonexistent/bin/kubectl is not installed") ||
		!strings.Contains(report, "1 runbook(s) valid (1 unavailable on this host), 0 invalid") {
		t.Fatalf("report:\n%s", report)
	}
	r, _ := LoadDir(dir, LoadOptions{})
	if r.Runbooks[0].Available() {
		t.Fatal("runbook with a missing program is available")
	}
	// Not executable is also unavailable.
	at(s, "steps", 0)["argv"] = []any{filepath.Join(dir, "valid.yaml")}
	if err := os.WriteFile(filepath.Join(dir, "valid.yaml"), []byte(marshal(t, s)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ = LoadDir(dir, LoadOptions{})
	if r.Runbooks[0].Available() || !strings.Contains(r.Runbooks[0].Unavailable, "not executable") {
		t.Fatalf("non-executable program: %q", r.Runbooks[0].Unavailable)
	}
}

func TestValidateDirReport(t *testing.T) {
	good := validDoc()
	bad := validDoc()
	bad["id"] = "bad"
	at(bad, "params", 0)["pattern"] = "("
	r := loadReport(t, map[string]string{"valid.yaml": marshal(t, good), "bad.yaml": marshal(t, bad)})
	out := r.String()
	if !strings.Contains(out, "error: ") || !strings.Contains(out, "bad.yaml: params[0].pattern: is not a valid RE2 pattern") ||
		!strings.Contains(out, "1 runbook(s) valid (0 unavailable on this host), 1 invalid, 1 error(s)") {
		t.Fatalf("report:\n%s", out)
	}
	report, hasErrors := ValidateDir(filepath.Join(t.TempDir(), "missing"), LoadOptions{})
	if !hasErrors || !strings.HasPrefix(report, "error: reading runbooks directory") {
		t.Fatalf("missing dir report %q", report)
	}
}

// TestShippedRunbooksValidate is the CI guard for runbooks/: every shipped
// file must load, whether or not its programs exist on this machine.
func TestShippedRunbooksValidate(t *testing.T) {
	dir := filepath.Join("..", "..", "runbooks")
	r, err := LoadDir(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.HasErrors() {
		t.Fatalf("shipped runbooks have errors:\n%s", r)
	}
	want := []string{"check-dns", "check-http", "fetch-logs", "purge-cdn-path", "restart-deployment", "scale-deployment"}
	var got []string
	for _, rb := range r.Runbooks {
		got = append(got, rb.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("shipped runbooks = %v, want %v", got, want)
	}
	for _, w := range r.Warnings {
		if !strings.Contains(w.Reason, "is not installed") && !strings.Contains(w.Reason, "not executable") {
			t.Errorf("unexpected warning: %s", w)
		}
	}
	// The local examples need only Debian's getent and curl; with programs
	// assumed present, every file is fully runnable.
	r, err = LoadDir(dir, LoadOptions{CheckProgram: func(string) error { return nil }})
	if err != nil || r.HasErrors() || len(r.Warnings) != 0 {
		t.Fatalf("shipped runbooks not clean: %v\n%s", err, r)
	}
}

func TestShippedExamplesBehave(t *testing.T) {
	r, err := LoadDir(filepath.Join("..", "..", "runbooks"), LoadOptions{CheckProgram: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Runbook{}
	for _, rb := range r.Runbooks {
		byID[rb.ID] = rb
	}
	cases := []struct {
		text string
		ok   bool
	}{
		{"check-dns host=example.com", true},
		{"check-dns host=example.com.", true},
		{"check-dns host=-oProxyCommand=x", false},
		{"check-dns host=a..b", false},
		{"check-dns host=ex\u0430mple.com", false},
		{"check-http url=https://example.com/healthz?x=1", true},
		{"check-http url=http://localhost:8080/", false}, // the bot itself
		{"check-http url=http://169.254.169.254/latest/meta-data/", false},
		{"check-http url=https://example.com/healthz expect=404", true},
		{"check-http url=https://example.com/healthz expect=2xx-3xx", true},
		{"check-http url=https://example.com/healthz expect=ok", false},
		{"check-dns host=127.0.0.1", false},
		{"check-dns example.com", true},
		{"check-http url=file:///etc/passwd", false},
		{"check-http url=https://user:pass@example.com/", false},
		{"check-http url=https://example.com/[1-100]", false},
		{"check-http url=--output=/tmp/x", false},
		{"purge-cdn-path site=www path=/static/*", true},
		{"purge-cdn-path site=www path=file:///etc/passwd", false},
		{"purge-cdn-path site=E1AAAAAAAAAAAA path=/x", false},
		{"scale-deployment context=prod-eu namespace=checkout deployment=api replicas=31", false},
		{"fetch-logs context=staging namespace=search deployment=api since=7h", false},
		{"restart-deployment context=prod-eu namespace=checkout deployment=checkout-api", true},
	}
	for _, tc := range cases {
		cmd, err := ParseCommand(tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		_, err = byID[cmd.RunbookID].BindCommand(cmd)
		if (err == nil) != tc.ok {
			t.Errorf("%s: accepted=%v, err=%v", tc.text, err == nil, err)
		}
	}
	// Map-form enum renders the distribution ID; approval only for "/*".
	ps, _ := byID["purge-cdn-path"].Bind([]Arg{{"site", "www"}, {"path", "/*"}})
	if v, _ := ps.Get("site"); v.Value != "E1AAAAAAAAAAAA" || !approvalApplies(byID["purge-cdn-path"], ps) {
		t.Fatalf("purge-cdn-path: %+v", ps)
	}
	ps, _ = byID["purge-cdn-path"].Bind([]Arg{{"site", "www"}, {"path", "/a"}})
	if approvalApplies(byID["purge-cdn-path"], ps) {
		t.Fatal("approval required for a single path")
	}
}

func TestSecretRefShape(t *testing.T) {
	for ref, ok := range map[string]bool{
		"cdn-purger/aws-access-key-id": true, "a": true, "a/b/c/d": true,
		"../x": false, "a/../b": false, "/abs": false, "a//b": false, "a/.": false, "A/b": false, "a/b/": false, "a..b/c": false, "": false,
	} {
		if validSecretRef(ref) != ok {
			t.Errorf("validSecretRef(%q) = %v", ref, !ok)
		}
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	for path, body := range map[string]string{"store/key": "s3cr3t\n", "store/two": "line\n\n", "store/crlf": "v\r\n", "store/empty": "\n", outside: "leak"} {
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "store", "link")); err != nil {
		t.Fatal(err)
	}
	fs := FileSecrets{Dir: dir}
	for ref, want := range map[string]string{"store/key": "s3cr3t", "store/two": "line\n", "store/crlf": "v"} {
		got, err := fs.Resolve(t.Context(), ref)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for _, ref := range []string{"store/empty", "store/link", "../outside", "store/missing", "/etc/passwd"} {
		if v, err := fs.Resolve(t.Context(), ref); err == nil {
			t.Errorf("Resolve(%s) = %q, want error", ref, v)
		} else if strings.Contains(err.Error(), "leak") {
			t.Errorf("error leaks content: %v", err)
		}
	}
	var pathErr *os.PathError
	if _, err := fs.Resolve(t.Context(), "store/missing"); !errors.As(err, &pathErr) {
		t.Errorf("missing secret error not wrapped: %v", err)
	}
}
