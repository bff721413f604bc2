package runbook

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Risk is a runbook's declared blast radius. It sets the lint minimums for
// confirmation and approval (§4.10).
type Risk string

// Risk levels.
const (
	RiskLow    Risk = "low"
	RiskMedium Risk = "medium"
	RiskHigh   Risk = "high"
)

// ParamType is the type of a runbook parameter.
type ParamType string

// Parameter types (§4.3).
const (
	TypeEnum     ParamType = "enum"
	TypeString   ParamType = "string"
	TypeInt      ParamType = "int"
	TypeDuration ParamType = "duration"
)

// Incident roles a principal list may name.
const (
	RoleCommander = "commander"
	RoleComms     = "comms"
	RoleScribe    = "scribe"
)

// Reserved template names: usable in argv and concurrency_key, never settable
// from chat.
const (
	ReservedIncidentID      = "incident.id"
	ReservedIncidentChannel = "incident.channel"
	ReservedRequesterID     = "requester.id"
	ReservedRunID           = "run.id"
)

// Runbook is one validated runbook. Values returned by the Registry are
// shared and immutable: callers must treat every field as read-only.
type Runbook struct {
	ID          string
	Title       string
	Description string
	Owner       string
	Enabled     bool
	Risk        Risk
	// Version is the hex SHA-256 of the file bytes. A pending request is
	// bound to it and aborts if the registry's copy changes.
	Version string
	// File is the path the runbook was loaded from.
	File string

	Params   []Param
	Access   Access
	Confirm  bool
	Approval *Approval // nil: no second person needed
	Limits   Limits
	Env      []EnvVar    // static, sorted by name
	Secrets  []SecretRef // resolved at exec time, injected as env only
	Steps    []Step
	DryRun   []Step // side-effect-free probes run by --dry-run; may be empty
	Output   Output

	// Unavailable is empty when every program the runbook executes is
	// installed and executable on this host. Otherwise it says why the
	// runbook can be listed and dry-run (argv shown) but not run.
	Unavailable string
}

// Available reports whether the runbook's programs exist on this host.
func (rb *Runbook) Available() bool { return rb.Unavailable == "" }

// Param returns the declared parameter called name.
func (rb *Runbook) Param(name string) (*Param, bool) {
	for i := range rb.Params {
		if rb.Params[i].Name == name {
			return &rb.Params[i], true
		}
	}
	return nil, false
}

// Choice is one allowed value of an enum (or a string with values). Label is
// what the user types; Value is what reaches argv (equal to Label for the
// list form).
type Choice struct {
	Label string
	Value string
}

// Param is one declared, typed parameter.
type Param struct {
	Name         string
	Type         ParamType
	Description  string
	Required     bool
	HasDefault   bool
	Default      string // as written in the file; validated at load
	Choices      []Choice
	Pattern      string // as written; matched as ^(?:Pattern)$
	MaxLength    int    // in characters
	Min, Max     string // as written, for int and duration
	Secret       bool
	AllowUnicode bool
	Example      string // as written; satisfies the parameter's rules
	// AllowAddresses lists the address classes (loopback, link_local,
	// private) a url or host parameter may point to; default none.
	AllowAddresses []string

	re             *regexp.Regexp
	minInt, maxInt int64
	minDur, maxDur time.Duration
}

// Principals says who may act. The set of people is fixed by
// configuration: the listed Users and the members of the listed
// UserGroups (any match). IncidentRoles only narrow that set: when any
// are listed, the person must also hold one of them in the incident bound
// to the channel. A role never admits anyone on its own (anyone can take
// one in chat), and the loader refuses a block that lists only roles.
type Principals struct {
	Users         []string // U… / W… user IDs
	UserGroups    []string // S… user-group IDs
	IncidentRoles []string // commander, comms, scribe: narrow, never grant
}

// Empty reports whether p admits nobody: no user and no user group (roles
// alone admit nobody).
func (p Principals) Empty() bool {
	return len(p.Users) == 0 && len(p.UserGroups) == 0
}

// Access is who may request a runbook and from where.
type Access struct {
	Requesters Principals
	// IncidentChannelsOnly requires the request to come from the channel of
	// an open incident. It defaults to true when the file omits it.
	IncidentChannelsOnly bool
	AllowDirectMessage   bool
}

// Condition triggers approval when parameter Param's label is one of In.
type Condition struct {
	Param string
	In    []string
}

// Approval is the second-person rule.
type Approval struct {
	// RequiredWhen empty means approval is always required.
	RequiredWhen []Condition
	Approvers    Principals
	Count        int
	ExpiresAfter time.Duration
}

// Limits bounds a run.
type Limits struct {
	Timeout        time.Duration
	ConcurrencyKey string // template; defaults to the runbook id
	MaxConcurrent  int
	Cooldown       time.Duration

	key template
}

// EnvVar is one static environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// SecretRef asks the SecretResolver for Ref and injects it as env var Env.
type SecretRef struct {
	Env string
	Ref string
}

// Step is one program execution.
type Step struct {
	Name    string
	Argv    []string // templates as written; Argv[0] is a fixed absolute path
	Timeout time.Duration
	// Unavailable says why Argv[0] cannot be executed here; "" if it can.
	Unavailable string

	argv []template
}

// Chat output placement and shape.
const (
	WhereThread    = "thread"
	WhereEphemeral = "ephemeral"
	ShowTail       = "tail"
	ShowHead       = "head"
	ShowNone       = "none"
)

// ChatOutput says how much output is posted to chat.
type ChatOutput struct {
	Where    string // thread | ephemeral
	Show     string // tail | head | none
	MaxLines int
	MaxChars int
}

// Output configures capture, redaction and posting.
type Output struct {
	CaptureMaxBytes  int64
	Chat             ChatOutput
	Redact           []string // extra RE2 patterns as written
	SuccessExitCodes []int

	redact []*regexp.Regexp
}

// Usage renders how to invoke the runbook from chat: the command line, an
// example, and one line per parameter with its description first. Exact
// patterns are left to Help. The text is Slack mrkdwn, escaped.
func (rb *Runbook) Usage() string { return rb.usage(false) }

// Help is Usage with every parameter's exact rules (patterns in code
// spans), for `/incident run <id> --help`.
func (rb *Runbook) Help() string { return rb.usage(true) }

func (rb *Runbook) usage(exact bool) string {
	var b strings.Builder
	line := "/incident run " + rb.ID
	for _, p := range rb.Params {
		arg := p.Name + "=" + strings.ToUpper(p.Name)
		if !p.Required {
			arg = "[" + arg + "]"
		}
		line += " " + arg
	}
	b.WriteString("Usage: `" + EscapeSlack(line) + " [--dry-run]`")
	if ex, ok := rb.example(); ok {
		b.WriteString("\nExample: `" + EscapeSlack(ex) + "`")
	}
	patterns := false
	for _, p := range rb.Params {
		b.WriteString("\n• " + p.describe(exact))
		patterns = patterns || p.Pattern != ""
	}
	if patterns && !exact {
		b.WriteString("\n`/incident run " + EscapeSlack(rb.ID) + " --help` shows the exact rules.")
	}
	return b.String()
}

// example renders a complete example invocation with every required
// parameter, if each has an example.
func (rb *Runbook) example() (string, bool) {
	s := "/incident run " + rb.ID
	for _, p := range rb.Params {
		if !p.Required {
			continue
		}
		ex := p.exampleValue()
		if ex == "" {
			return "", false
		}
		s += " " + p.Name + "=" + ex
	}
	return s, true
}

// exampleValue is the file's example, or one derived from the type ("" if
// none can be).
func (p *Param) exampleValue() string {
	switch {
	case p.Example != "":
		return p.Example
	case p.Secret:
		return ""
	case len(p.Choices) > 0:
		return p.Choices[0].Label
	case p.Type == TypeInt, p.Type == TypeDuration:
		return p.Min
	}
	return ""
}

// describe states a parameter in words: name, whether it is required,
// its description and an example first; the kind of value after; the
// exact pattern (in a code span) only when exact.
func (p *Param) describe(exact bool) string {
	s := p.Name
	switch {
	case p.Required:
		s += " (required)"
	case p.HasDefault && !p.Secret:
		s += " (default " + p.Default + ")"
	}
	if p.Secret {
		s += " (secret)"
	}
	s += ":"
	if p.Description != "" {
		s += " " + strings.TrimSuffix(strings.TrimSpace(p.Description), ".") + "."
	}
	if p.Example != "" {
		s += " Example: " + p.Name + "=" + p.Example + "."
	}
	switch {
	case len(p.Choices) > 0:
		labels := make([]string, len(p.Choices))
		for i, c := range p.Choices {
			labels[i] = c.Label
		}
		s += " One of " + strings.Join(labels, ", ") + "."
	case p.Type == TypeInt:
		s += " A whole number from " + p.Min + " to " + p.Max + "."
	case p.Type == TypeDuration:
		s += " A duration from " + p.Min + " to " + p.Max + " (e.g. 90s, 15m, 2h)."
	case p.Type == TypeURL, p.Type == TypeHost:
		what := "An http:// or https:// URL"
		if p.Type == TypeHost {
			what = "A host name or IP address"
		}
		s += " " + what + "; loopback, link-local and private addresses are refused"
		if len(p.AllowAddresses) > 0 {
			s += " unless allowed here (" + strings.Join(p.AllowAddresses, ", ") + ")"
		}
		s += "."
		if exact && p.Pattern != "" {
			return EscapeSlack(s) + " Must also match " + codeSpan(p.Pattern) + "."
		}
	default:
		s += " Text of at most " + strconv.Itoa(p.MaxLength) + " characters"
		if exact && p.Pattern != "" {
			return EscapeSlack(s) + ", matching " + codeSpan(p.Pattern) + "."
		}
		s += "."
	}
	return EscapeSlack(s)
}

// codeSpan shows s verbatim (escaped) in inline code, where mrkdwn leaves
// * and _ alone; a backtick in s would end the span, so such text gets a
// code block instead.
func codeSpan(s string) string {
	if strings.Contains(s, "`") {
		return "\n" + codeBlock(s)
	}
	return "`" + EscapeSlack(s) + "`"
}
