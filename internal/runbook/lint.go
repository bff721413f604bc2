package runbook

import (
	"fmt"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Schema constants (§4.2, §4.10).
const (
	APIVersion        = "incidentbot/v1"
	Kind              = "Runbook"
	MaxPatternBytes   = 512
	DefaultMaxLength  = 128
	HardMaxLength     = 512
	ConfirmationTTL   = 2 * time.Minute
	maxApprovalTTL    = 24 * time.Hour
	maxCooldown       = 24 * time.Hour
	maxApprovers      = 10
	defaultCapture    = 256 << 10
	minCapture        = 4 << 10
	defaultMaxLines   = 30
	maxMaxLines       = 200
	defaultMaxChars   = 2800
	minMaxChars       = 200
	maxMaxChars       = 3000 // one Slack section block
	maxIntParamDigits = 10
)

var (
	idShape        = regexp.MustCompile(`^[a-z][a-z0-9-]{1,47}$`)
	paramNameShape = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	stepNameShape  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,47}$`)
	envNameShape   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,63}$`)
	userIDShape    = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	groupIDShape   = regexp.MustCompile(`^S[A-Z0-9]{2,20}$`)
	secretRefShape = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}(?:/[a-z0-9][a-z0-9_.-]{0,63}){0,3}$`)
	knownRoles     = map[string]bool{RoleCommander: true, RoleComms: true, RoleScribe: true}
	// reservedEnv are set by the bot; LD_* and friends change how every
	// program loads and must never come from a file.
	reservedEnv = map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "LANG": true, "IFS": true, "BASH_ENV": true, "ENV": true}
)

// linter turns a decoded file into a Runbook, collecting every problem.
type linter struct {
	file         string
	caps         Caps
	checkProgram func(string) error
	errs, warns  []Problem
}

func (l *linter) fail(field, format string, args ...any) {
	l.errs = append(l.errs, Problem{File: l.file, Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (l *linter) warn(field, format string, args ...any) {
	l.warns = append(l.warns, Problem{File: l.file, Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (l *linter) runbook(spec *fileSpec, stem, version string) *Runbook {
	rb := &Runbook{
		ID:          spec.ID,
		Title:       strings.TrimSpace(spec.Title),
		Description: strings.TrimSpace(spec.Description),
		Owner:       spec.Owner,
		Enabled:     spec.Enabled == nil || *spec.Enabled,
		Risk:        Risk(spec.Risk),
		Version:     version,
		Confirm:     spec.Confirm == nil || *spec.Confirm,
	}
	l.header(spec, stem)
	rb.Params = l.params(spec.Params)
	rb.Access = l.access(spec.Access)
	rb.Approval = l.approval(spec.Approval, rb)
	rb.Limits = l.limits(spec.Limits, rb)
	rb.Env = l.env(spec.Env)
	rb.Secrets = l.secrets(spec.Secrets, rb.Env)
	switch {
	case spec.Steps == nil:
		l.fail("steps", "is required")
	case len(spec.Steps) == 0:
		// "steps: []" decodes to an empty, non-nil list: a runbook that
		// would report success having run nothing.
		l.fail("steps", "must list at least one step")
	}
	rb.Steps = l.steps("steps", spec.Steps, rb)
	if spec.DryRun != nil {
		if len(spec.DryRun.Steps) == 0 {
			l.fail("dry_run.steps", "must list at least one probe step (or omit dry_run)")
		}
		rb.DryRun = l.steps("dry_run.steps", spec.DryRun.Steps, rb)
	}
	rb.Output = l.output(spec.Output)
	l.riskMinimums(rb)
	l.placeholders(rb)
	l.availability(rb)
	return rb
}

func (l *linter) header(spec *fileSpec, stem string) {
	if spec.APIVersion != APIVersion {
		l.fail("apiVersion", "must be %q", APIVersion)
	}
	if spec.Kind != Kind {
		l.fail("kind", "must be %q", Kind)
	}
	switch {
	case spec.ID == "":
		l.fail("id", "is required")
	case !idShape.MatchString(spec.ID):
		l.fail("id", "must match %s", idShape)
	case spec.ID != stem:
		l.fail("id", "%q must equal the file name %q without .yaml", spec.ID, stem)
	}
	if strings.TrimSpace(spec.Title) == "" {
		l.fail("title", "is required")
	}
	switch Risk(spec.Risk) {
	case RiskLow, RiskMedium, RiskHigh:
	case "":
		l.fail("risk", "is required (low, medium or high)")
	default:
		l.fail("risk", "must be low, medium or high")
	}
}

func (l *linter) params(specs []paramSpec) []Param {
	seen := map[string]bool{}
	var out []Param
	for i, ps := range specs {
		f := fmt.Sprintf("params[%d]", i)
		if seen[ps.Name] {
			l.fail(f+".name", "duplicate parameter %q", ps.Name)
		}
		seen[ps.Name] = true
		out = append(out, l.param(f, ps))
	}
	return out
}

func (l *linter) param(f string, ps paramSpec) Param {
	p := Param{
		Name: ps.Name, Type: ParamType(ps.Type), Description: ps.Description,
		Required: ps.Required, Secret: ps.Secret, AllowUnicode: ps.AllowUnicode,
		MaxLength: DefaultMaxLength,
	}
	errsBefore := len(l.errs)
	if !paramNameShape.MatchString(ps.Name) {
		l.fail(f+".name", "must match %s", paramNameShape)
	}
	if ps.MaxLength != nil {
		if *ps.MaxLength < 1 || *ps.MaxLength > HardMaxLength {
			l.fail(f+".max_length", "must be from 1 to %d", HardMaxLength)
		} else {
			p.MaxLength = *ps.MaxLength
		}
	}
	hasValues := ps.Values.Kind != 0
	if hasValues {
		p.Choices = l.choices(f+".values", &ps.Values, p.MaxLength)
	}
	notFor := func(present bool, field string) {
		if present {
			l.fail(f+"."+field, "is not allowed for type %s", ps.Type)
		}
	}
	switch p.Type {
	case TypeEnum:
		if !hasValues {
			l.fail(f+".values", "is required for enum")
		}
		notFor(ps.Pattern != nil, "pattern")
		notFor(ps.Min != nil, "min")
		notFor(ps.Max != nil, "max")
	case TypeString:
		switch {
		case ps.Pattern == nil && !hasValues:
			l.fail(f, "a string parameter needs pattern or values")
		case ps.Pattern != nil && hasValues:
			l.fail(f, "use either pattern or values, not both")
		case ps.Pattern != nil:
			p.Pattern = *ps.Pattern
			p.re = l.pattern(f+".pattern", *ps.Pattern)
		}
		notFor(ps.Min != nil, "min")
		notFor(ps.Max != nil, "max")
	case TypeInt:
		notFor(hasValues, "values")
		notFor(ps.Pattern != nil, "pattern")
		l.intRange(f, ps, &p)
	case TypeDuration:
		notFor(hasValues, "values")
		notFor(ps.Pattern != nil, "pattern")
		l.durationRange(f, ps, &p)
	case TypeURL, TypeHost:
		// The shape is built in; a pattern may narrow it further.
		notFor(hasValues, "values")
		notFor(ps.Min != nil, "min")
		notFor(ps.Max != nil, "max")
		if ps.Pattern != nil {
			p.Pattern = *ps.Pattern
			p.re = l.pattern(f+".pattern", *ps.Pattern)
		}
		if ps.MaxLength == nil {
			p.MaxLength = map[ParamType]int{TypeURL: HardMaxLength, TypeHost: 253}[p.Type]
		}
	case "":
		l.fail(f+".type", "is required (enum, string, int, duration, url or host)")
	default:
		l.fail(f+".type", "must be enum, string, int, duration, url or host")
	}
	if len(ps.AllowAddresses) > 0 && p.Type != TypeURL && p.Type != TypeHost {
		l.fail(f+".allow_addresses", "is only for url and host parameters")
	} else {
		for i, a := range ps.AllowAddresses {
			if !slices.Contains(knownAllows, a) {
				l.fail(fmt.Sprintf("%s.allow_addresses[%d]", f, i), "%q is not one of %s", a, strings.Join(knownAllows, ", "))
				continue
			}
			p.AllowAddresses = append(p.AllowAddresses, a)
		}
	}
	if p.Secret && p.Type != TypeString {
		l.fail(f+".secret", "only string parameters can be secret")
	}
	if p.AllowUnicode && p.Type != TypeString {
		l.fail(f+".allow_unicode", "only string parameters can allow unicode")
	}
	// A default is only checked against a declaration that is itself valid.
	declValid := len(l.errs) == errsBefore
	l.paramDefault(f, ps, &p, declValid)
	if ps.Example != nil {
		p.Example = *ps.Example
		switch {
		case p.Secret:
			l.fail(f+".example", "a secret parameter cannot have an example (it would be shown)")
		case declValid:
			if _, _, err := p.check(p.Example); err != nil {
				l.fail(f+".example", "%q does not satisfy the parameter's own rules: %v", p.Example, err)
			}
		}
	}
	return p
}

func (l *linter) paramDefault(f string, ps paramSpec, p *Param, declValid bool) {
	if ps.Default == nil {
		if !p.Required {
			l.fail(f, "an optional parameter needs a default (or set required: true)")
		}
		return
	}
	p.HasDefault, p.Default = true, *ps.Default
	switch {
	case p.Required:
		l.fail(f+".default", "a required parameter cannot have a default")
	case p.Secret:
		l.fail(f+".default", "a secret parameter cannot have a default (it would be stored in the file)")
	case declValid:
		if _, _, err := p.check(p.Default); err != nil {
			l.fail(f+".default", "%q does not satisfy the parameter's own rules: %v", p.Default, err)
		}
	}
}

// choices reads values: a list of labels, or a map label -> argv value.
func (l *linter) choices(f string, n *yaml.Node, maxLen int) []Choice {
	var out []Choice
	seen := map[string]bool{}
	add := func(field string, label, value *yaml.Node) {
		if label.Kind != yaml.ScalarNode || value.Kind != yaml.ScalarNode {
			l.fail(field, "must be a plain value")
			return
		}
		c := Choice{Label: label.Value, Value: value.Value}
		if err := checkGlobal(c.Label, false); err != nil {
			l.fail(field, "label %q %v", c.Label, err)
		} else if len(c.Label) > maxLen {
			l.fail(field, "label %q is longer than max_length %d", c.Label, maxLen)
		}
		if err := checkGlobal(c.Value, true); err != nil {
			l.fail(field, "value %q %v", c.Value, err)
		}
		if seen[c.Label] {
			l.fail(field, "duplicate label %q", c.Label)
		}
		seen[c.Label] = true
		out = append(out, c)
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			add(fmt.Sprintf("%s[%d]", f, i), item, item)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			add(f+"."+n.Content[i].Value, n.Content[i], n.Content[i+1])
		}
	default:
		l.fail(f, "must be a list of values or a map of label: value")
	}
	if len(out) == 0 && (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) {
		l.fail(f, "must not be empty")
	}
	return out
}

// pattern compiles a runbook regexp as RE2 and anchors it for full match.
func (l *linter) pattern(f, pat string) *regexp.Regexp {
	switch {
	case pat == "":
		l.fail(f, "must not be empty")
		return nil
	case len(pat) > MaxPatternBytes:
		l.fail(f, "is %d bytes; the maximum is %d", len(pat), MaxPatternBytes)
		return nil
	}
	re, err := regexp.Compile(`^(?:` + pat + `)$`)
	if err != nil {
		l.fail(f, "is not a valid RE2 pattern: %v", err)
		return nil
	}
	return re
}

func (l *linter) intRange(f string, ps paramSpec, p *Param) {
	parse := func(field string, v *string) (int64, bool) {
		if v == nil {
			l.fail(f+"."+field, "is required for int")
			return 0, false
		}
		if !canonicalInt.MatchString(*v) {
			l.fail(f+"."+field, "must be a non-negative whole number of at most %d digits", maxIntParamDigits)
			return 0, false
		}
		n, _ := strconv.ParseInt(*v, 10, 64)
		return n, true
	}
	lo, okLo := parse("min", ps.Min)
	hi, okHi := parse("max", ps.Max)
	if okLo && okHi && lo > hi {
		l.fail(f+".min", "is greater than max")
	}
	if ps.Min != nil {
		p.Min = *ps.Min
	}
	if ps.Max != nil {
		p.Max = *ps.Max
	}
	p.minInt, p.maxInt = lo, hi
}

func (l *linter) durationRange(f string, ps paramSpec, p *Param) {
	parse := func(field string, v *string) (time.Duration, bool) {
		if v == nil {
			l.fail(f+"."+field, "is required for duration")
			return 0, false
		}
		d, err := parsePositiveDuration(*v)
		if err != nil {
			l.fail(f+"."+field, "%v", err)
			return 0, false
		}
		return d, true
	}
	lo, okLo := parse("min", ps.Min)
	hi, okHi := parse("max", ps.Max)
	if okLo && okHi && lo > hi {
		l.fail(f+".min", "is greater than max")
	}
	p.minDur, p.maxDur = lo, hi
	p.Min, p.Max = formatDuration(lo), formatDuration(hi)
}

// principals reads a users/user_groups/incident_roles block. verb is what
// it allows ("run", "approve") for the explanation of a refusal.
func (l *linter) principals(f, verb string, ps *principalsSpec) Principals {
	if ps == nil {
		l.fail(f, "must list at least one user or user group (access is denied by default)")
		return Principals{}
	}
	for i, u := range ps.Users {
		if !userIDShape.MatchString(u) {
			l.fail(fmt.Sprintf("%s.users[%d]", f, i), "%q is not a Slack user ID (U… or W…)", u)
		}
	}
	for i, g := range ps.UserGroups {
		if !groupIDShape.MatchString(g) {
			l.fail(fmt.Sprintf("%s.user_groups[%d]", f, i), "%q is not a Slack user-group ID (S…)", g)
		}
	}
	for i, r := range ps.IncidentRoles {
		if !knownRoles[r] {
			l.fail(fmt.Sprintf("%s.incident_roles[%d]", f, i), "%q is not an incident role (commander, comms or scribe)", r)
		}
	}
	switch {
	case len(ps.Users) == 0 && len(ps.UserGroups) == 0 && len(ps.IncidentRoles) > 0:
		// The trust model: who may run or approve is fixed by
		// configuration. Anyone can become commander with `/incident
		// lead` (and declaring makes you commander), so a role alone
		// would let anyone in.
		l.fail(f+".incident_roles", "incident roles alone cannot allow anyone to %s a runbook: anyone can take a role in chat "+
			"(`/incident lead`, and declaring an incident makes you its commander). List who may %s it in %s.users (Slack user IDs) "+
			"or %s.user_groups (user-group IDs); incident_roles then narrows that set to those who also hold one of these roles in the incident",
			verb, verb, f, f)
	case len(ps.Users) == 0 && len(ps.UserGroups) == 0:
		l.fail(f, "must list at least one user or user group (access is denied by default)")
	}
	return Principals{Users: ps.Users, UserGroups: ps.UserGroups, IncidentRoles: ps.IncidentRoles}
}

func (l *linter) access(as *accessSpec) Access {
	a := Access{IncidentChannelsOnly: true}
	if as == nil {
		l.fail("access", "is required (access is denied by default)")
		return a
	}
	a.Requesters = l.principals("access.requesters", "run", as.Requesters)
	if ch := as.Channels; ch != nil {
		if ch.IncidentChannelsOnly != nil {
			a.IncidentChannelsOnly = *ch.IncidentChannelsOnly
		}
		a.AllowDirectMessage = ch.AllowDirectMessage
	}
	if a.IncidentChannelsOnly && a.AllowDirectMessage {
		l.fail("access.channels.allow_direct_message", "cannot be true while incident_channels_only is true (a DM is never an incident channel)")
	}
	return a
}

func (l *linter) approval(as *approvalSpec, rb *Runbook) *Approval {
	if as == nil {
		return nil
	}
	a := &Approval{Count: 1}
	a.Approvers = l.principals("approval.approvers", "approve", as.Approvers)
	if as.Count != nil {
		if *as.Count < 1 || *as.Count > maxApprovers {
			l.fail("approval.count", "must be from 1 to %d", maxApprovers)
		} else {
			a.Count = *as.Count
		}
	}
	a.ExpiresAfter = l.duration("approval.expires_after", as.ExpiresAfter, maxApprovalTTL, true)
	if as.RequiredWhen != nil {
		if len(*as.RequiredWhen) == 0 {
			l.fail("approval.required_when", "must not be empty (omit it to always require approval)")
		}
		for i, c := range *as.RequiredWhen {
			a.RequiredWhen = append(a.RequiredWhen, l.condition(fmt.Sprintf("approval.required_when[%d]", i), c, rb))
		}
	}
	return a
}

func (l *linter) condition(f string, cs conditionSpec, rb *Runbook) Condition {
	c := Condition{Param: cs.Param}
	p, ok := rb.Param(cs.Param)
	switch {
	case !ok:
		l.fail(f+".param", "%q is not a declared parameter", cs.Param)
		return c
	case p.Secret:
		l.fail(f+".param", "cannot depend on secret parameter %q", cs.Param)
	}
	if len(cs.In) == 0 {
		l.fail(f+".in", "must list at least one value")
	}
	for i, v := range cs.In {
		label, _, err := p.check(v)
		if err != nil {
			l.fail(fmt.Sprintf("%s.in[%d]", f, i), "%q can never be given for %s: %v", v, p.Name, err)
			continue
		}
		c.In = append(c.In, label)
	}
	return c
}

// duration parses a positive duration field bounded by max.
func (l *linter) duration(f, v string, max time.Duration, required bool) time.Duration {
	if v == "" {
		if required {
			l.fail(f, "is required")
		}
		return 0
	}
	d, err := parsePositiveDuration(v)
	if err != nil {
		l.fail(f, "%v", err)
		return 0
	}
	if d > max {
		l.fail(f, "%s exceeds the bot limit %s", formatDuration(d), formatDuration(max))
	}
	return d
}

func (l *linter) limits(ls *limitsSpec, rb *Runbook) Limits {
	lim := Limits{MaxConcurrent: 1, ConcurrencyKey: rb.ID}
	if ls == nil {
		l.fail("limits", "is required (at least limits.timeout)")
		return lim
	}
	lim.Timeout = l.duration("limits.timeout", ls.Timeout, l.caps.MaxTimeout, true)
	if ls.ConcurrencyKey != "" {
		lim.ConcurrencyKey = ls.ConcurrencyKey
	}
	key, err := parseTemplate(lim.ConcurrencyKey)
	if err != nil {
		l.fail("limits.concurrency_key", "%v", err)
	}
	lim.key = key
	if ls.MaxConcurrent != nil {
		if *ls.MaxConcurrent < 1 || *ls.MaxConcurrent > l.caps.MaxConcurrentRuns {
			l.fail("limits.max_concurrent", "must be from 1 to %d (the bot's global cap)", l.caps.MaxConcurrentRuns)
		} else {
			lim.MaxConcurrent = *ls.MaxConcurrent
		}
	}
	if ls.Cooldown != "" && ls.Cooldown != "0" && ls.Cooldown != "0s" {
		lim.Cooldown = l.duration("limits.cooldown", ls.Cooldown, maxCooldown, false)
	}
	return lim
}

func (l *linter) envName(f, name string, seen map[string]bool) {
	switch {
	case !envNameShape.MatchString(name):
		l.fail(f, "%q is not a valid environment variable name (A-Z, 0-9, _)", name)
	case reservedEnv[name] || strings.HasPrefix(name, "LD_"):
		l.fail(f, "%s is set by the bot and cannot be overridden", name)
	case seen[name]:
		l.fail(f, "%s is set more than once (env and secrets share one namespace)", name)
	}
	seen[name] = true
}

func (l *linter) env(m map[string]string) []EnvVar {
	seen := map[string]bool{}
	var out []EnvVar
	for name, value := range m {
		f := "env." + name
		l.envName(f, name, seen)
		switch {
		case strings.Contains(value, "{{") || strings.Contains(value, "}}"):
			l.fail(f, "placeholders are not allowed in env (values are static)")
		case strings.ContainsRune(value, 0):
			l.fail(f, "must not contain NUL")
		}
		out = append(out, EnvVar{Name: name, Value: value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (l *linter) secrets(specs []secretSpec, env []EnvVar) []SecretRef {
	seen := map[string]bool{}
	for _, e := range env {
		seen[e.Name] = true
	}
	var out []SecretRef
	for i, s := range specs {
		f := fmt.Sprintf("secrets[%d]", i)
		l.envName(f+".env", s.Env, seen)
		if !validSecretRef(s.Ref) {
			l.fail(f+".ref", "%q is not a valid secret reference (lower-case path segments like store/key)", s.Ref)
		}
		out = append(out, SecretRef{Env: s.Env, Ref: s.Ref})
	}
	return out
}

func validSecretRef(ref string) bool {
	if !secretRefShape.MatchString(ref) {
		return false
	}
	for _, seg := range strings.Split(ref, "/") {
		if seg == "." || seg == ".." || strings.Contains(seg, "..") {
			return false
		}
	}
	return true
}

func (l *linter) steps(f string, specs []stepSpec, rb *Runbook) []Step {
	seen := map[string]bool{}
	var out []Step
	for i, ss := range specs {
		sf := fmt.Sprintf("%s[%d]", f, i)
		st := Step{Name: ss.Name, Argv: ss.Argv}
		switch {
		case !stepNameShape.MatchString(ss.Name):
			l.fail(sf+".name", "must match %s", stepNameShape)
		case seen[ss.Name]:
			l.fail(sf+".name", "duplicate step name %q", ss.Name)
		}
		seen[ss.Name] = true
		st.argv = l.argv(sf+".argv", ss.Argv)
		st.Timeout = l.duration(sf+".timeout", ss.Timeout, l.caps.MaxTimeout, true)
		if rb.Limits.Timeout > 0 && st.Timeout > rb.Limits.Timeout {
			l.fail(sf+".timeout", "%s exceeds limits.timeout %s", formatDuration(st.Timeout), formatDuration(rb.Limits.Timeout))
		}
		out = append(out, st)
	}
	return out
}

func (l *linter) argv(f string, argv []string) []template {
	if len(argv) == 0 {
		l.fail(f, "must not be empty")
		return nil
	}
	prog := argv[0]
	switch {
	case strings.Contains(prog, "{{") || strings.Contains(prog, "}}"):
		l.fail(f+"[0]", "the program path must be fixed (no placeholders)")
	case !filepath.IsAbs(prog):
		l.fail(f+"[0]", "%q must be an absolute path", prog)
	case filepath.Clean(prog) != prog:
		l.fail(f+"[0]", "%q must be a clean path (no .., //, or trailing /)", prog)
	}
	out := make([]template, len(argv))
	for i, a := range argv {
		af := fmt.Sprintf("%s[%d]", f, i)
		if strings.ContainsRune(a, 0) {
			l.fail(af, "must not contain NUL")
		}
		t, err := parseTemplate(a)
		if err != nil {
			l.fail(af, "%v", err)
			continue
		}
		out[i] = t
		prev := ""
		if i > 0 {
			prev = argv[i-1]
		}
		// A value as its own token after a bare flag is how option
		// injection starts; --flag={{x}} keeps it one token (§4.6).
		if i > 1 && len(t.parts) == 1 && t.parts[0].name != "" && strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") && prev != "--" {
			l.warn(af, "prefer %s={{%s}} over a separate token", prev, t.parts[0].name)
		}
	}
	return out
}

func (l *linter) output(spec *outputSpec) Output {
	o := Output{
		CaptureMaxBytes:  defaultCapture,
		Chat:             ChatOutput{Where: WhereThread, Show: ShowTail, MaxLines: defaultMaxLines, MaxChars: defaultMaxChars},
		SuccessExitCodes: []int{0},
	}
	if spec == nil {
		return o
	}
	if spec.CaptureMaxBytes != "" {
		n, err := parseByteSize(spec.CaptureMaxBytes)
		switch {
		case err != nil:
			l.fail("output.capture_max_bytes", "%v", err)
		case n < minCapture || n > l.caps.MaxCaptureBytes:
			l.fail("output.capture_max_bytes", "must be from %d to %d bytes (the bot cap)", minCapture, l.caps.MaxCaptureBytes)
		default:
			o.CaptureMaxBytes = n
		}
	}
	if c := spec.Chat; c != nil {
		l.chat(c, &o.Chat)
	}
	for i, pat := range spec.Redact {
		f := fmt.Sprintf("output.redact[%d]", i)
		if pat == "" || len(pat) > MaxPatternBytes {
			l.fail(f, "must be 1 to %d bytes", MaxPatternBytes)
			continue
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			l.fail(f, "is not a valid RE2 pattern: %v", err)
			continue
		}
		if re.MatchString("") {
			l.fail(f, "matches the empty string")
			continue
		}
		o.Redact = append(o.Redact, pat)
		o.redact = append(o.redact, re)
	}
	if spec.SuccessExitCodes != nil {
		if len(spec.SuccessExitCodes) == 0 {
			l.fail("output.success_exit_codes", "must not be empty")
		}
		for i, c := range spec.SuccessExitCodes {
			if c < 0 || c > 255 {
				l.fail(fmt.Sprintf("output.success_exit_codes[%d]", i), "must be from 0 to 255")
			}
		}
		o.SuccessExitCodes = spec.SuccessExitCodes
	}
	return o
}

func (l *linter) chat(c *chatSpec, out *ChatOutput) {
	switch c.Where {
	case "":
	case WhereThread, WhereEphemeral:
		out.Where = c.Where
	default:
		l.fail("output.chat.where", "must be thread or ephemeral")
	}
	switch c.Show {
	case "":
	case ShowTail, ShowHead, ShowNone:
		out.Show = c.Show
	default:
		l.fail("output.chat.show", "must be tail, head or none")
	}
	if c.MaxLines != nil {
		if *c.MaxLines < 1 || *c.MaxLines > maxMaxLines {
			l.fail("output.chat.max_lines", "must be from 1 to %d", maxMaxLines)
		} else {
			out.MaxLines = *c.MaxLines
		}
	}
	if c.MaxChars != nil {
		if *c.MaxChars < minMaxChars || *c.MaxChars > maxMaxChars {
			l.fail("output.chat.max_chars", "must be from %d to %d (one Slack section block)", minMaxChars, maxMaxChars)
		} else {
			out.MaxChars = *c.MaxChars
		}
	}
}

// parseByteSize accepts a plain byte count or a KiB/MiB suffix.
func parseByteSize(s string) (int64, error) {
	num, mult := s, int64(1)
	switch {
	case strings.HasSuffix(s, "KiB"):
		num, mult = strings.TrimSuffix(s, "KiB"), 1<<10
	case strings.HasSuffix(s, "MiB"):
		num, mult = strings.TrimSuffix(s, "MiB"), 1<<20
	}
	if !canonicalInt.MatchString(num) {
		return 0, fmt.Errorf("%q is not a size like 65536, 64KiB or 1MiB", s)
	}
	n, _ := strconv.ParseInt(num, 10, 64)
	return n * mult, nil
}

func (l *linter) riskMinimums(rb *Runbook) {
	switch rb.Risk {
	case RiskMedium:
		if !rb.Confirm {
			l.fail("confirm", "must be true for risk medium")
		}
	case RiskHigh:
		if !rb.Confirm {
			l.fail("confirm", "must be true for risk high")
		}
		if rb.Approval == nil {
			l.fail("approval", "is required for risk high")
		} else if len(rb.Approval.RequiredWhen) > 0 {
			l.warn("approval.required_when", "risk high but approval is only required when required_when matches; make sure it covers production")
		}
		if len(rb.DryRun) == 0 {
			l.warn("dry_run", "risk high runbooks should declare side-effect-free dry_run steps")
		}
		for i, p := range rb.Params {
			if p.re != nil && isCatchAll(p.Pattern) {
				l.fail(fmt.Sprintf("params[%d].pattern", i), "risk high runbooks must not use catch-all patterns (., .*, .+, \\S+, [^…] covering all printable characters)")
			}
		}
	}
}

// isCatchAll reports whether a pattern contains "any character" or a class
// that covers every printable ASCII character.
func isCatchAll(pat string) bool {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return false
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			return true
		case syntax.OpCharClass:
			return classCoversPrintable(r.Rune)
		}
		for _, s := range r.Sub {
			if walk(s) {
				return true
			}
		}
		return false
	}
	return walk(re)
}

func classCoversPrintable(ranges []rune) bool {
	for c := rune(0x21); c <= 0x7e; c++ {
		in := false
		for i := 0; i+1 < len(ranges); i += 2 {
			if c >= ranges[i] && c <= ranges[i+1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// placeholders checks every template refers to a declared parameter or a
// reserved name, and keeps secret parameters out of concurrency keys.
func (l *linter) placeholders(rb *Runbook) {
	check := func(f string, t template, allowSecret bool) {
		for _, name := range t.names() {
			if reservedNames[name] {
				continue
			}
			if base, suffix, derived := strings.Cut(name, "."); derived {
				if p, ok := rb.Param(base); ok && slices.Contains(targetSuffixes[p.Type], suffix) {
					if !allowSecret { // the concurrency key is rendered before addresses are checked
						l.fail(f, "{{%s}} cannot be used here; use {{%s}}", name, base)
					}
					continue
				}
			}
			p, ok := rb.Param(name)
			switch {
			case !ok && isSecretEnv(rb, name):
				l.fail(f, "secret %s must not be referenced in argv; secrets are passed in env only", name)
			case !ok:
				l.fail(f, "{{%s}} is not a declared parameter or reserved name (%s)", name, strings.Join(sortedReserved(), ", "))
			case p.Secret && !allowSecret:
				l.fail(f, "secret parameter %s cannot be used here (the value would be shown)", name)
			}
		}
	}
	for _, group := range []struct {
		field string
		steps []Step
	}{{"steps", rb.Steps}, {"dry_run.steps", rb.DryRun}} {
		for i, st := range group.steps {
			for j, t := range st.argv {
				check(fmt.Sprintf("%s[%d].argv[%d]", group.field, i, j), t, true)
			}
		}
	}
	check("limits.concurrency_key", rb.Limits.key, false)
}

func isSecretEnv(rb *Runbook, name string) bool {
	for _, s := range rb.Secrets {
		if strings.EqualFold(s.Env, name) {
			return true
		}
	}
	return false
}

func sortedReserved() []string {
	out := make([]string, 0, len(reservedNames))
	for n := range reservedNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// availability marks the runbook unavailable, with a warning, when a
// program it would execute is missing here. Dry-run probes whose program is
// missing are skipped at dry-run time.
func (l *linter) availability(rb *Runbook) {
	checked := map[string]error{}
	check := func(field string, steps []Step) {
		for i := range steps {
			st := &steps[i]
			if len(st.Argv) == 0 || !filepath.IsAbs(st.Argv[0]) {
				continue
			}
			err, seen := checked[st.Argv[0]]
			if !seen {
				err = l.checkProgram(st.Argv[0])
				checked[st.Argv[0]] = err
				if err != nil {
					l.warn(fmt.Sprintf("%s[%d].argv[0]", field, i), "%v; the runbook loads but is unavailable here", err)
				}
			}
			if err != nil {
				st.Unavailable = err.Error()
			}
		}
	}
	check("steps", rb.Steps)
	check("dry_run.steps", rb.DryRun)
	for _, st := range rb.Steps {
		if st.Unavailable != "" {
			rb.Unavailable = st.Unavailable
			break
		}
	}
}
