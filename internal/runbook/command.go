package runbook

import (
	"net/url"
	"strconv"
	"strings"
)

// Chat grammar limits, checked before any parsing (§4.3).
const (
	MaxCommandBytes  = 4096
	MaxCommandTokens = 16
)

// DryRunFlag is the only flag the grammar knows.
const DryRunFlag = "--dry-run"

// Command is a parsed "/incident run" invocation: the text after
// "/incident run " (or after the @-mention and "run ").
type Command struct {
	// RunbookID is the first token, verbatim. It is only ever used as a
	// registry key, never as a path.
	RunbookID string
	Args      []Arg
	DryRun    bool
}

// ParseCommand parses `<id> [name=value ...] [--dry-run]`. Tokens are split
// on ASCII space only; there is no quoting. Slack's encoding is undone first
// (entities once; auto-links only when label and URL agree). It returns a
// *UserError (without runbook usage, which the caller adds once the runbook
// is known); RunbookID is filled in whenever a first token exists.
func ParseCommand(text string) (Command, error) {
	if len(text) > MaxCommandBytes {
		return Command{}, userError(KindInvalid, "The command is too long (over 4 KiB). Nothing was run.")
	}
	if n := len(splitTokens(text)); n > MaxCommandTokens {
		return Command{}, userError(KindInvalid, "The command has too many words (more than 16). Nothing was run.")
	}
	decoded, err := decodeSlackText(text)
	if err != nil {
		return Command{}, err
	}
	tokens := splitTokens(decoded)
	if len(tokens) == 0 {
		return Command{}, userError(KindInvalid, "Which runbook? Usage: /incident run RUNBOOK [name=value ...] [--dry-run]. /incident runbooks lists them. Nothing was run.")
	}
	cmd := Command{RunbookID: tokens[0]}
	var problems []string
	for i, tok := range tokens[1:] {
		if tok == DryRunFlag {
			if cmd.DryRun {
				problems = append(problems, "--dry-run is given more than once")
			}
			cmd.DryRun = true
			continue
		}
		if msg := flagProblem(tok); msg != "" {
			problems = append(problems, msg)
			continue
		}
		name, value, ok := strings.Cut(tok, "=")
		if !ok {
			// Not echoed: a bare word may be a secret pasted without its name.
			problems = append(problems, "word "+strconv.Itoa(i+2)+" is not name=value")
			continue
		}
		if value == "" && name != "" {
			problems = append(problems, echo(name)+" has an empty value")
			continue
		}
		cmd.Args = append(cmd.Args, Arg{Name: name, Value: value})
	}
	if len(problems) > 0 {
		lines := append([]string{"Cannot understand the command:"}, bullets(problems)...)
		lines = append(lines, "Nothing was run.")
		return cmd, userError(KindInvalid, lines...)
	}
	return cmd, nil
}

func bullets(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = "• " + s
	}
	return out
}

// splitTokens splits on ASCII space and drops empty tokens (repeated
// spaces). Tabs, newlines and other spaces stay inside tokens, where the
// value rules reject them.
func splitTokens(s string) []string {
	var out []string
	for _, t := range strings.Split(s, " ") {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// dashLike are characters phone keyboards and autocorrect put where "--"
// was meant. A token starting with one is never a dry-run: it is an error.
var dashLike = []string{"-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\uFE58", "\uFE63", "\uFF0D"}

// flagProblem explains why a flag-like token other than exactly --dry-run
// is refused ("—dry-run", "--dry-run=false", "-n" ...); "" if not flag-like.
func flagProblem(tok string) string {
	for _, d := range dashLike {
		if !strings.HasPrefix(tok, d) {
			continue
		}
		if strings.HasPrefix(tok, DryRunFlag+"=") {
			return "--dry-run takes no value; write exactly --dry-run"
		}
		return echo(tok) + " is not a recognised option; the only option is --dry-run (two ASCII hyphens)"
	}
	return ""
}

// slackEntities undoes Slack's escaping of &, < and > exactly once:
// "&amp;lt;" becomes "&lt;", not "<".
var slackEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// decodeSlackText undoes Slack's message encoding. Literal < and > only
// appear in Slack text as formatting; an auto-link is unwrapped to its label
// when label and URL agree, and anything else (user, channel and group
// mentions, <!here>, mailto:, mismatched labels) is an error.
func decodeSlackText(s string) (string, error) {
	var b strings.Builder
	for s != "" {
		i := strings.IndexAny(s, "<>")
		if i < 0 {
			b.WriteString(slackEntities.Replace(s))
			break
		}
		b.WriteString(slackEntities.Replace(s[:i]))
		if s[i] == '>' {
			return "", userError(KindInvalid, "The command contains a stray \">\". Nothing was run.")
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			return "", userError(KindInvalid, "The command contains an unterminated \"<\". Nothing was run.")
		}
		inner := s[i+1 : i+end]
		label, ok := unwrapAutoLink(inner)
		if !ok {
			return "", userError(KindInvalid,
				"The command contains a Slack mention or link "+echo("<"+inner+">")+
					", which cannot be used as a value. Type the plain value (for a host name, without http://). Nothing was run.")
		}
		b.WriteString(label)
		s = s[i+end+1:]
	}
	return b.String(), nil
}

// unwrapAutoLink handles Slack's auto-link forms: <URL> and <URL|label>.
// It accepts only http(s) URLs whose label is the URL itself, the URL
// without its scheme, or exactly its host; the result is the label (the URL
// when unlabelled), entity-decoded.
func unwrapAutoLink(inner string) (string, bool) {
	rawURL, rawLabel, labelled := strings.Cut(inner, "|")
	link := slackEntities.Replace(rawURL)
	label := slackEntities.Replace(rawLabel)
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	if !labelled {
		return link, true
	}
	switch {
	case label == link, u.Scheme+"://"+label == link:
		return label, true
	case label == u.Host && (u.Path == "" || u.Path == "/") && u.User == nil && u.RawQuery == "" && u.Fragment == "":
		return label, true
	}
	return "", false
}
