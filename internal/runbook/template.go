package runbook

import (
	"fmt"
	"regexp"
	"strings"
)

// template is a string with {{name}} placeholders and nothing else: no
// expressions, filters or escapes (§4.6). Rendering is a single pass, so a
// value that itself contains "{{x}}" is never expanded again, and one
// template always renders to exactly one string (one argv element).
type template struct {
	parts []templatePart
}

type templatePart struct {
	literal string
	name    string // non-empty: a placeholder
}

var placeholderShape = regexp.MustCompile(`^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?$`)

// reservedNames can appear in templates but are filled by the bot.
var reservedNames = map[string]bool{
	ReservedIncidentID:      true,
	ReservedIncidentChannel: true,
	ReservedRequesterID:     true,
	ReservedRunID:           true,
}

// isReservedName reports whether a chat parameter name falls in a namespace
// only the bot may fill (incident.*, requester.*, run.*).
func isReservedName(name string) bool {
	for _, prefix := range []string{"incident.", "requester.", "run."} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return reservedNames[name]
}

func parseTemplate(s string) (template, error) {
	var t template
	for s != "" {
		open := strings.Index(s, "{{")
		if closeAt := strings.Index(s, "}}"); closeAt >= 0 && (open < 0 || closeAt < open) {
			return template{}, fmt.Errorf("unmatched %q", "}}")
		}
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: s})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{literal: s[:open]})
		}
		rest := s[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return template{}, fmt.Errorf("unterminated %q", "{{")
		}
		name := rest[:end]
		if !placeholderShape.MatchString(name) {
			return template{}, fmt.Errorf("placeholder {{%s}} must be {{name}} (lower-case parameter or reserved name, no spaces or expressions)", name)
		}
		t.parts = append(t.parts, templatePart{name: name})
		s = rest[end+2:]
	}
	return t, nil
}

// names lists the placeholders in order of appearance.
func (t template) names() []string {
	var out []string
	for _, p := range t.parts {
		if p.name != "" {
			out = append(out, p.name)
		}
	}
	return out
}

// render fills every placeholder from values. It fails if a name has no
// value, which the linter and Bind make impossible for declared names.
func (t template) render(values map[string]string) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.literal)
			continue
		}
		v, ok := values[p.name]
		if !ok {
			return "", fmt.Errorf("no value for {{%s}}", p.name)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
