package runbook

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Arg is one name=value pair as the requester typed it (after Slack
// decoding), or as a modal submitted it.
type Arg struct {
	Name  string
	Value string
}

// Value is one parameter after validation and normalisation.
type Value struct {
	Name string
	// Label is the canonical form of what was typed or defaulted: the enum
	// label, the decimal int, the re-rendered duration ("15m0s" -> "15m").
	Label string
	// Value is what is rendered into argv and concurrency keys. It differs
	// from Label only for map-form enums.
	Value     string
	Secret    bool
	Defaulted bool
}

// Params is a runbook's normalised parameter set in declaration order. Every
// value in it satisfies every declared constraint.
type Params []Value

// Get returns the parameter called name.
func (ps Params) Get(name string) (Value, bool) {
	for _, v := range ps {
		if v.Name == name {
			return v, true
		}
	}
	return Value{}, false
}

// masked is the display form of a secret value: cards, errors, audit.
const masked = "•••"

// Display returns "name=label" (with "→value" for mapped enums), secrets as •••.
func (v Value) Display() string {
	switch {
	case v.Secret:
		return v.Name + "=" + masked
	case v.Label != v.Value:
		return v.Name + "=" + v.Label + " (" + v.Value + ")"
	default:
		return v.Name + "=" + v.Label
	}
}

// Bind validates args against the runbook's declared parameters and returns
// the normalised set. Unknown, duplicate, empty and reserved names are
// rejected; an absent optional parameter takes its default. On failure it
// returns a *UserError listing every problem followed by the usage.
func (rb *Runbook) Bind(args []Arg) (Params, error) {
	var problems []string
	given := map[string]string{}
	duplicated := map[string]bool{}
	for _, a := range args {
		switch _, declared := rb.Param(a.Name); {
		case a.Name == "":
			problems = append(problems, "a parameter name is missing before \"=\"")
		case isReservedName(a.Name):
			problems = append(problems, echo(a.Name)+" is filled in by the bot and cannot be set")
		case !declared:
			problems = append(problems, "unknown parameter "+echo(a.Name))
		case duplicated[a.Name]:
			// reported once already
		default:
			if _, seen := given[a.Name]; seen {
				// No last-one-wins: a repeated name is an error.
				problems = append(problems, a.Name+" is given more than once")
				duplicated[a.Name] = true
				continue
			}
			given[a.Name] = a.Value
		}
	}
	out := make(Params, 0, len(rb.Params))
	for i := range rb.Params {
		p := &rb.Params[i]
		if duplicated[p.Name] {
			continue
		}
		raw, ok := given[p.Name]
		if !ok {
			if p.Required || !p.HasDefault {
				problems = append(problems, "missing required parameter "+p.Name)
				continue
			}
			raw = p.Default
		}
		label, value, err := p.check(raw)
		if err != nil {
			problems = append(problems, p.invalidMessage(raw, err))
			continue
		}
		out = append(out, Value{Name: p.Name, Label: label, Value: value, Secret: p.Secret, Defaulted: !ok})
	}
	if len(problems) > 0 {
		return nil, invalidInput(rb, problems)
	}
	return out, nil
}

// invalidInput is the UserError for bad parameters: every problem, a
// reminder that nothing ran, and the usage.
func invalidInput(rb *Runbook, problems []string) *UserError {
	lines := []string{"Cannot run " + rb.ID + ":"}
	for _, p := range problems {
		lines = append(lines, "• "+p)
	}
	lines = append(lines, "Nothing was run.", rb.Usage())
	return userError(KindInvalid, lines...)
}

func (p *Param) invalidMessage(raw string, err error) string {
	reason := EscapeSlack(err.Error())
	var pe patternError
	if errors.As(err, &pe) {
		reason = "must match " + InlineCode(pe.pattern)
	}
	if p.Secret {
		return "the value of " + p.Name + " is invalid: " + reason + " (value not shown)"
	}
	return p.Name + "=" + echo(raw) + " is invalid: " + reason
}

// patternError is a value that does not match its parameter's pattern. The
// refusal shows the pattern, the rule that was broken, in a code span so
// mrkdwn cannot eat its * _ or ~ (issue 11 item 9); help shows patterns only
// on request (run <id> --help).
type patternError struct{ pattern string }

func (e patternError) Error() string { return "must match " + e.pattern }

// check applies the global value rules and the type rules. It returns the
// canonical label and the argv value.
func (p *Param) check(raw string) (label, value string, err error) {
	if err := checkGlobal(raw, p.AllowUnicode); err != nil {
		return "", "", err
	}
	if n := utf8.RuneCountInString(raw); n > p.MaxLength {
		return "", "", fmt.Errorf("is %d characters long; the maximum is %d", n, p.MaxLength)
	}
	if len(p.Choices) > 0 {
		for _, c := range p.Choices {
			if c.Label == raw { // exact: no case folding, trimming or normalisation
				return c.Label, c.Value, nil
			}
		}
		return "", "", fmt.Errorf("must be exactly one of: %s", p.choiceLabels())
	}
	switch p.Type {
	case TypeInt:
		v, err := p.checkInt(raw)
		return v, v, err
	case TypeDuration:
		v, err := p.checkDuration(raw)
		return v, v, err
	case TypeURL, TypeHost:
		if err := p.checkTarget(raw); err != nil {
			return "", "", err
		}
		if p.re != nil && !p.re.MatchString(raw) {
			return "", "", patternError{p.Pattern}
		}
		return raw, raw, nil
	default:
		if p.re == nil || !p.re.MatchString(raw) {
			return "", "", patternError{p.Pattern}
		}
		return raw, raw, nil
	}
}

func (p *Param) choiceLabels() string {
	labels := make([]string, len(p.Choices))
	for i, c := range p.Choices {
		labels[i] = c.Label
	}
	return strings.Join(labels, ", ")
}

// canonicalInt is the only accepted int spelling: no sign, no leading zero,
// no exponent, no base prefix, no fraction, at most 10 digits.
var canonicalInt = regexp.MustCompile(`^(?:0|[1-9][0-9]{0,9})$`)

func (p *Param) checkInt(raw string) (string, error) {
	if !canonicalInt.MatchString(raw) {
		return "", fmt.Errorf("must be a whole number written in plain digits (like 5), from %s to %s", p.Min, p.Max)
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return "", fmt.Errorf("is not a valid number")
	}
	if n < p.minInt || n > p.maxInt {
		return "", fmt.Errorf("must be from %s to %s", p.Min, p.Max)
	}
	return raw, nil
}

func (p *Param) checkDuration(raw string) (string, error) {
	d, err := parsePositiveDuration(raw)
	if err != nil {
		return "", fmt.Errorf("%v, from %s to %s", err, p.Min, p.Max)
	}
	if d < p.minDur || d > p.maxDur {
		return "", fmt.Errorf("must be from %s to %s", p.Min, p.Max)
	}
	return formatDuration(d), nil
}

// parsePositiveDuration accepts Go duration syntax that starts with a digit
// (so no sign) and is greater than zero.
func parsePositiveDuration(raw string) (time.Duration, error) {
	if raw == "" || raw[0] < '0' || raw[0] > '9' {
		return 0, fmt.Errorf("must be a duration like 90s, 15m or 2h")
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like 90s, 15m or 2h")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be longer than zero")
	}
	return d, nil
}

// formatDuration renders d canonically: time.Duration.String without the
// zero trailing units ("15m0s" -> "15m", "1h0m0s" -> "1h").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkGlobal applies the rules every value obeys whatever its type (§4.3):
// non-empty; no leading "-"; printable ASCII without spaces unless
// allowUnicode; never control, bidi, zero-width or other invisible code
// points. Validation is on the raw bytes: nothing is normalised first.
func checkGlobal(raw string, allowUnicode bool) error {
	if raw == "" {
		return fmt.Errorf("is empty")
	}
	if raw[0] == '-' {
		return fmt.Errorf("must not start with \"-\" (it could be read as an option)")
	}
	if !allowUnicode {
		for i := 0; i < len(raw); i++ {
			if c := raw[i]; c < 0x21 || c > 0x7e {
				return describeBadChar(raw[i:])
			}
		}
		return nil
	}
	if !utf8.ValidString(raw) {
		return fmt.Errorf("is not valid UTF-8")
	}
	for i, r := range raw {
		if forbiddenRune(r) {
			return describeBadChar(raw[i:])
		}
	}
	return nil
}

// forbiddenRune reports code points never accepted, even with allow_unicode:
// controls, format characters (bidi overrides, zero-width, BOM, word joiner),
// line/paragraph separators, non-ASCII spaces, private use and non-characters.
func forbiddenRune(r rune) bool {
	switch {
	case r == ' ':
		return false
	case r == utf8.RuneError:
		return true
	case unicode.IsSpace(r), unicode.IsControl(r):
		return true
	case unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp):
		return true
	}
	return !unicode.IsGraphic(r)
}

func describeBadChar(s string) error {
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size <= 1:
		return fmt.Errorf("contains bytes that are not valid UTF-8")
	case r == ' ':
		return fmt.Errorf("contains a space")
	case r < 0x20 || r == 0x7f:
		return fmt.Errorf("contains the control character U+%04X", r)
	case forbiddenRune(r):
		return fmt.Errorf("contains the invisible or control character U+%04X", r)
	default:
		return fmt.Errorf("contains the non-ASCII character U+%04X (%q); only plain ASCII is accepted, look-alike letters included", r, r)
	}
}
