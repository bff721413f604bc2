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

// The only flags the grammar knows.
const (
	DryRunFlag = "--dry-run"
	HelpFlag   = "--help" // show the runbook's exact rules; never runs
)

// Command is a parsed "/incident run" invocation: the text after
// "/incident run " (or after the @-mention and "run ").
type Command struct {
	// RunbookID is the first token, verbatim. It is only ever used as a
	// registry key, never as a path.
	RunbookID string
	Args      []Arg
	// Bare are words without "=": a value for the one required parameter,
	// or a mistake BindCommand explains with the corrected command.
	Bare   []BareWord
	DryRun bool
	Help   bool
}

// BareWord is a word without a name, and its position in the command
// (1 is the runbook).
type BareWord struct {
	Pos   int
	Value string
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
		if tok == HelpFlag {
			cmd.Help = true
			continue
		}
		if msg := flagProblem(tok); msg != "" {
			problems = append(problems, msg)
			continue
		}
		name, value, ok := strings.Cut(tok, "=")
		if !ok {
			cmd.Bare = append(cmd.Bare, BareWord{Pos: i + 2, Value: tok})
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
		return echo(tok) + " is not a recognised option; the options are --dry-run and --help (two ASCII hyphens)"
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

// BindCommand binds a parsed command's arguments. A runbook with exactly
// one required parameter accepts its value without the name
// (`/incident run check-dns example.com`); any other word without a name
// is refused with the exact command that was probably meant.
func (rb *Runbook) BindCommand(cmd Command) (Params, error) {
	if len(cmd.Bare) == 0 {
		return rb.Bind(cmd.Args)
	}
	named := map[string]bool{}
	for _, a := range cmd.Args {
		named[a.Name] = true
	}
	var required, missing []*Param
	for i := range rb.Params {
		if p := &rb.Params[i]; p.Required {
			required = append(required, p)
			if !named[p.Name] {
				missing = append(missing, p)
			}
		}
	}
	if len(required) == 1 && len(missing) == 1 && len(cmd.Bare) == 1 {
		return rb.Bind(append(append([]Arg(nil), cmd.Args...), Arg{Name: missing[0].Name, Value: cmd.Bare[0].Value}))
	}
	var problems []string
	for _, w := range cmd.Bare {
		// The word itself is not echoed: it may be a secret pasted
		// without its name.
		problems = append(problems, "word "+strconv.Itoa(w.Pos)+" is not name=value")
	}
	lines := append([]string{"Cannot understand the command:"}, bullets(problems)...)
	lines = append(lines, "Write each value as name=value, e.g. `"+EscapeSlack(rb.corrected(cmd, missing))+"`", "Nothing was run.")
	return nil, userError(KindInvalid, lines...)
}

// corrected is the command with the bare words given, in order, to the
// required parameters that were not named. A word is repeated only when
// it is a valid value of that (non-secret) parameter; otherwise the
// parameter's placeholder stands in.
func (rb *Runbook) corrected(cmd Command, missing []*Param) string {
	parts := []string{"/incident run " + rb.ID}
	for _, a := range cmd.Args {
		v := a.Value
		if p, ok := rb.Param(a.Name); !ok || p.Secret {
			v = strings.ToUpper(a.Name)
		} else if _, _, err := p.check(v); err != nil {
			v = strings.ToUpper(a.Name)
		}
		parts = append(parts, a.Name+"="+v)
	}
	for i, p := range missing {
		v := strings.ToUpper(p.Name)
		if i < len(cmd.Bare) && !p.Secret {
			if _, _, err := p.check(cmd.Bare[i].Value); err == nil {
				v = cmd.Bare[i].Value
			}
		}
		parts = append(parts, p.Name+"="+v)
	}
	if cmd.DryRun {
		parts = append(parts, DryRunFlag)
	}
	return strings.Join(parts, " ")
}
