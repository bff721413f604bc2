// Package command is the `/incident` command language, shared by every chat
// front end (Slack, the local shell): Parse turns text into a typed Command
// or a helpful error, and Dispatcher runs commands against the incident
// use cases and renders the reply.
package command

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Verb names a command.
type Verb string

// The verbs.
const (
	VerbHelp       Verb = "help"
	VerbDeclare    Verb = "declare"
	VerbList       Verb = "list"
	VerbStatus     Verb = "status"
	VerbUpdate     Verb = "update"
	VerbAck        Verb = "ack"
	VerbMitigate   Verb = "mitigate"
	VerbResolve    Verb = "resolve"
	VerbReopen     Verb = "reopen"
	VerbSev        Verb = "sev"
	VerbRole       Verb = "role"
	VerbLead       Verb = "lead"
	VerbNote       Verb = "note"
	VerbTimeline   Verb = "timeline"
	VerbFollowup   Verb = "followup"
	VerbFollowups  Verb = "followups"
	VerbTitle      Verb = "title"
	VerbSummary    Verb = "summary"
	VerbImpact     Verb = "impact"
	VerbService    Verb = "service"
	VerbStarted    Verb = "started"
	VerbPage       Verb = "page"
	VerbEscalate   Verb = "escalate"
	VerbRunbooks   Verb = "runbooks"
	VerbRun        Verb = "run"
	VerbPostmortem Verb = "postmortem"
	VerbOnCall     Verb = "oncall"
	VerbCatchup    Verb = "catchup"
	VerbHandover   Verb = "handover"
)

// Command is a parsed command.
type Command struct {
	Verb Verb
	// Incident is the incident named explicitly ("resolve INC-7 ..."), or 0
	// when it is implied by the channel.
	Incident int64
	Severity incident.Severity // declare (0: default), sev
	Role     incident.Role     // role
	User     string            // role: the user id from the mention
	Text     string            // title, note, update, reason, or the arguments of page/run
	// Note is something the reply should mention about how the command
	// was read (a title that starts with a severity-like word).
	Note string
	All  bool // list all
	// Followup is the follow-up number of `followup done|reopen|assign|due
	// <n>`, and FollowupOp the change (empty: `followup <text>` adds one).
	// assign puts the owner in User, due the date as written in Text.
	Followup   int
	FollowupOp incident.FollowupOp
	// Fact is what `title`, `summary`, `impact`, `service add|remove` and
	// `started` correct; the value is in Text (for started, as written).
	Fact incident.Fact
}

// Options adjust parsing to the front end.
type Options struct {
	// PlainMentions accepts "@name" as a user (the local shell); Slack sends
	// mentions as <@U123> or <@U123|name>.
	PlainMentions bool
}

// Error is a parse error: what was wrong and the correct usage.
type Error struct {
	Message string
	Usage   string
}

func (e *Error) Error() string {
	if e.Usage == "" {
		return e.Message
	}
	return fmt.Sprintf("%s\nUsage: `%s`", e.Message, e.Usage)
}

type spec struct {
	verb     Verb
	aliases  []string
	usage    string
	summary  string
	incident bool // may name an incident as its first argument
	parse    func(c *Command, args string, opts Options) error
}

// specs is the command table, in the order help lists it.
var specs = []spec{
	{verb: VerbHelp, aliases: []string{"?", "-h", "--help"}, usage: "help [command]", summary: "Show this help, or how to use one command.", parse: optionalText},
	{verb: VerbDeclare, aliases: []string{"new", "open"}, usage: "declare [sev1|sev2|sev3|sev4] <title>", summary: "Declare an incident; it gets its own channel. (In Slack, no title opens a form.)", parse: parseDeclare},
	{verb: VerbList, aliases: []string{"ls"}, usage: "list [all] [sev1-4] [mine] [service=NAME] [since=7d|DATE] [page=N]", summary: "List open incidents (with `all`, resolved ones too, newest first), 20 a page, filtered by severity, your own, service or declaration time.", parse: parseList},
	{verb: VerbStatus, aliases: []string{"show", "info"}, usage: "status [INC-n]", summary: "Show an incident's status, roles and key times.", incident: true, parse: noArgs},
	{verb: VerbUpdate, usage: "update [INC-n] <text>", summary: "Post a status update for stakeholders. (In Slack, no text opens a form.)", incident: true, parse: needText("Write the update for stakeholders.")},
	{verb: VerbAck, aliases: []string{"acknowledge"}, usage: "ack [INC-n]", summary: "Acknowledge a triggered incident.", incident: true, parse: noArgs},
	{verb: VerbMitigate, aliases: []string{"mitigated"}, usage: "mitigate [INC-n] [text]", summary: "Mark the impact as stopped.", incident: true, parse: optionalText},
	{verb: VerbResolve, aliases: []string{"resolved"}, usage: "resolve [INC-n] [text]", summary: "Resolve the incident. (In Slack, no text opens a form that asks how it was resolved.)", incident: true, parse: optionalText},
	{verb: VerbReopen, usage: "reopen [INC-n] [reason]", summary: "Reopen a resolved incident.", incident: true, parse: optionalText},
	{verb: VerbSev, aliases: []string{"severity"}, usage: "sev [INC-n] <1-4>", summary: "Change the severity (1 is the worst).", incident: true, parse: parseSev},
	{verb: VerbRole, aliases: []string{"assign"}, usage: "role [INC-n] <commander|comms|scribe> <@user>", summary: "Give a role to someone.", incident: true, parse: parseRole},
	{verb: VerbLead, usage: "lead [INC-n]", summary: "Take the commander role yourself.", incident: true, parse: noArgs},
	{verb: VerbNote, usage: "note [INC-n] <text>", summary: "Add a note to the timeline.", incident: true, parse: needText("Write the note.")},
	{verb: VerbTimeline, usage: "timeline [INC-n]", summary: "Show the timeline.", incident: true, parse: noArgs},
	{verb: VerbFollowup, aliases: []string{"follow-up", "todo"}, usage: "followup [INC-n] <text> | done <n> | reopen <n> | assign <n> <@user> | due <n> <date>", summary: "Record a follow-up action item for the postmortem, or close, reopen, assign one or give it a due date (2026-12-15, friday, in 3 days, none).", incident: true, parse: parseFollowup},
	{verb: VerbFollowups, aliases: []string{"follow-ups", "todos"}, usage: "followups [INC-n]", summary: "List the incident's follow-ups, numbered, with owner, due date and state.", incident: true, parse: noArgs},
	{verb: VerbTitle, aliases: []string{"rename"}, usage: "title [INC-n] <text>", summary: "Correct the title.", incident: true, parse: factText(incident.FactTitle, "Write the new title.")},
	{verb: VerbSummary, aliases: []string{"description"}, usage: "summary [INC-n] <text>", summary: "Say what happened, for the summary card and the postmortem.", incident: true, parse: factText(incident.FactSummary, "Write the summary.")},
	{verb: VerbImpact, usage: "impact [INC-n] <text>", summary: "Say who is affected and how.", incident: true, parse: factText(incident.FactImpact, "Describe the impact.")},
	{verb: VerbService, aliases: []string{"services"}, usage: "service [INC-n] add|remove <name>", summary: "Record a service the incident affects, or remove one.", incident: true, parse: parseService},
	{verb: VerbStarted, usage: "started [INC-n] <time>", summary: "Record when the problem really began: `25m ago`, `14:05`, `2026-12-01 14:05 UTC`. Response times are measured from it.", incident: true, parse: factText(incident.FactStarted, "Say when the problem started, e.g. `started 25m ago`.")},
	{verb: VerbPage, usage: "page [INC-n] <service or escalation policy> [message]", summary: "Page a PagerDuty service or escalation policy into the incident.", incident: true, parse: needText("Name the PagerDuty service or escalation policy to page.")},
	{verb: VerbEscalate, usage: "escalate [INC-n]", summary: "Escalate the linked PagerDuty incident to the next level.", incident: true, parse: noArgs},
	{verb: VerbRunbooks, usage: "runbooks", summary: "List the runbook actions you may run here.", parse: noArgs},
	{verb: VerbRun, usage: "run <runbook> [name=value ...] [--dry-run]", summary: "Run an approved runbook action in this incident.", parse: needText("Name the runbook to run; `runbooks` lists them.")},
	{verb: VerbPostmortem, aliases: []string{"pm"}, usage: "postmortem [INC-n]", summary: "Draft the blameless postmortem and post it here.", incident: true, parse: noArgs},
	{verb: VerbOnCall, aliases: []string{"on-call", "whoisoncall"}, usage: "oncall [schedule or escalation policy]", summary: "Show who is on call now and next in PagerDuty, level by level: on one schedule or escalation policy (name or id), or on all of them.", parse: optionalText},
	{verb: VerbCatchup, aliases: []string{"catch-up", "recap"}, usage: "catchup [INC-n] [since]", summary: "Catch up on an incident, only for you: status, roles, impact, the last update, key moments, runbook runs, open follow-ups and what changed since you joined (or since `30m`, `2h`, `14:05`).", incident: true, parse: parseCatchup},
	{verb: VerbHandover, usage: "handover", summary: "Post the on-call handover of the current shift here: incidents opened, open and resolved, pages, failed runbook runs, follow-ups due and what waits on someone.", parse: noArgs},
}

var byName = func() map[string]*spec {
	m := map[string]*spec{}
	for i := range specs {
		s := &specs[i]
		m[string(s.verb)] = s
		for _, a := range s.aliases {
			m[a] = s
		}
	}
	return m
}()

// Usage returns the usage line of a verb.
func Usage(v Verb) string {
	if s, ok := byName[string(v)]; ok {
		return s.usage
	}
	return ""
}

// MaxCommandLength caps the text of one command, in bytes.
const MaxCommandLength = 4000

// Parse parses the text of an `/incident` command (without the "/incident").
// Empty text is `help`.
func Parse(text string, opts Options) (Command, error) {
	if len(text) > MaxCommandLength {
		return Command{}, &Error{Message: fmt.Sprintf("That command is too long (%d bytes; at most %d).", len(text), MaxCommandLength)}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return Command{Verb: VerbHelp}, nil
	}
	word, rest := splitWord(text)
	s, ok := byName[strings.ToLower(word)]
	if !ok {
		msg := fmt.Sprintf("I don't know the command `%s`.", clip(word, 40))
		if near := closest(strings.ToLower(word)); near != "" {
			msg += fmt.Sprintf(" Did you mean `%s`?", near)
		}
		return Command{}, &Error{Message: msg + " Try `help` for the list."}
	}
	c := Command{Verb: s.verb}
	if s.incident {
		if first, after := splitWord(rest); first != "" {
			if n, ok := incident.ParseID(first); ok {
				c.Incident, rest = n, after
			} else if looksLikeID(first) {
				return Command{}, &Error{Message: fmt.Sprintf("`%s` is not an incident id; they look like `INC-7`.", clip(first, 40)), Usage: s.usage}
			}
		}
	}
	if err := s.parse(&c, strings.TrimSpace(rest), opts); err != nil {
		return Command{}, &Error{Message: err.Error(), Usage: s.usage}
	}
	return c, nil
}

// splitWord returns the first whitespace-separated word and the rest.
func splitWord(s string) (string, string) {
	s = strings.TrimLeftFunc(s, isSpace)
	i := strings.IndexFunc(s, isSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], isSpace)
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0, 0x2007, 0x202F, 0x3000:
		return true
	}
	return false
}

var idLike = regexp.MustCompile(`(?i)^(inc[-_#]?\d+|#\d+)$`)

func looksLikeID(word string) bool { return idLike.MatchString(word) }

func noArgs(c *Command, args string, _ Options) error {
	if args != "" {
		return fmt.Errorf("`%s` takes no text, but got %q.", c.Verb, clip(args, 40))
	}
	return nil
}

func optionalText(c *Command, args string, _ Options) error {
	c.Text = args
	return nil
}

func needText(missing string) func(*Command, string, Options) error {
	return func(c *Command, args string, _ Options) error {
		if args == "" {
			return fmt.Errorf("%s", missing)
		}
		c.Text = args
		return nil
	}
}

func parseDeclare(c *Command, args string, _ Options) error {
	first, rest := splitWord(args)
	_, isWord := incident.SeverityWords[strings.ToLower(first)]
	if sev, err := incident.ParseSeverity(first); err == nil && first != "" && !isBareNumber(first) && !isWord {
		c.Severity = sev
		args = rest
	} else if looksLikeSeverity(first) {
		return fmt.Errorf("`%s` is not a severity: use sev1 (worst) to sev4, or P1 to P4.", clip(first, 20))
	} else if isWord {
		// "declare critical db down" keeps the word
		// in the title (it may just be the title), and the reply says so.
		c.Note = fmt.Sprintf("The title starts with “%s”, which I did not take as a severity; change the severity with `sev <1-4>` if you meant one.", first)
	}
	// An empty title is allowed here: Slack opens the declare form, the
	// shell asks for a title.
	c.Text = args
	return nil
}

var sevLike = regexp.MustCompile(`(?i)^(sev\S*|p\d+)$`)

func looksLikeSeverity(w string) bool { return sevLike.MatchString(w) }

func isBareNumber(w string) bool {
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return w != ""
}

func parseList(c *Command, args string, _ Options) error {
	q, err := incident.ParseListQuery(strings.Fields(args), time.Now(), time.UTC) // syntax only; Dispatcher reads it again with its clock and zone
	if err != nil {
		return errors.New(incident.ErrorMessage(err))
	}
	c.All, c.Text = q.All, args
	return nil
}

func parseCatchup(c *Command, args string, _ Options) error {
	if args != "" {
		// Syntax only; Dispatcher reads it again with its clock and zone.
		if _, err := incident.ParseSince(args, time.Now(), time.UTC); err != nil {
			return errors.New(incident.ErrorMessage(err))
		}
	}
	c.Text = args
	return nil
}

var followupOps = map[string]incident.FollowupOp{
	"done": incident.FollowupDone, "close": incident.FollowupDone, "closed": incident.FollowupDone, "complete": incident.FollowupDone,
	"reopen": incident.FollowupReopen, "undo": incident.FollowupReopen,
	"assign": incident.FollowupAssign, "owner": incident.FollowupAssign,
	"due": incident.FollowupDue,
}

// parseFollowup reads `followup <text>` and `followup done|reopen|assign|due
// <n> ...`. A follow-up whose text merely starts with one of those words
// ("followup due diligence on the vendor") is still added: a change needs
// the follow-up's number right after the word.
func parseFollowup(c *Command, args string, opts Options) error {
	if args == "" {
		return fmt.Errorf("Describe the follow-up.")
	}
	word, rest := splitWord(args)
	op, isOp := followupOps[strings.ToLower(word)]
	numWord, after := splitWord(rest)
	n, isNum := followupNumber(numWord)
	if !isOp || !isNum {
		if isOp && rest == "" {
			return fmt.Errorf("Which follow-up? Give its number: `followup %s <n>` (`followups` lists them).", strings.ToLower(word))
		}
		c.Text = args
		return nil
	}
	c.FollowupOp, c.Followup = op, n
	switch op {
	case incident.FollowupDone, incident.FollowupReopen:
		if after != "" {
			return fmt.Errorf("`followup %s <n>` takes only the number, but got %q after it.", word, clip(after, 40))
		}
	case incident.FollowupAssign:
		userWord, extra := splitWord(after)
		user, ok := ParseMention(userWord, opts)
		if !ok || extra != "" {
			return fmt.Errorf("Name one owner with an @-mention: `followup assign %d @alice`.", n)
		}
		c.User = user
	case incident.FollowupDue:
		if after == "" {
			return fmt.Errorf("Give the due date: `followup due %d 2026-12-15` (or friday, in 3 days, none).", n)
		}
		c.Text = after
	}
	return nil
}

// followupNumber reads "3" or "#3".
func followupNumber(w string) (int, bool) {
	w = strings.TrimPrefix(w, "#")
	if !isBareNumber(w) || len(w) > 6 {
		return 0, false
	}
	n, err := strconv.Atoi(w)
	return n, err == nil && n > 0
}

func factText(f incident.Fact, missing string) func(*Command, string, Options) error {
	return func(c *Command, args string, _ Options) error {
		if args == "" {
			return fmt.Errorf("%s", missing)
		}
		c.Fact, c.Text = f, args
		return nil
	}
}

func parseService(c *Command, args string, _ Options) error {
	op, name := splitWord(args)
	switch strings.ToLower(op) {
	case "add", "+":
		c.Fact = incident.FactServiceAdd
	case "remove", "rm", "delete", "-":
		c.Fact = incident.FactServiceRemove
	default:
		return fmt.Errorf("Say `add` or `remove` and the service, e.g. `service add checkout-api`.")
	}
	if name == "" {
		return fmt.Errorf("Name the service to %s.", strings.ToLower(op))
	}
	c.Text = name
	return nil
}

func parseSev(c *Command, args string, _ Options) error {
	word, rest := splitWord(args)
	if word == "" {
		return fmt.Errorf("Give the new severity, 1 (worst) to 4.")
	}
	if rest != "" {
		return fmt.Errorf("`sev` takes only the severity, but got %q after it.", clip(rest, 40))
	}
	sev, err := incident.ParseSeverity(word)
	if err != nil {
		return err
	}
	c.Severity = sev
	return nil
}

func parseRole(c *Command, args string, opts Options) error {
	roleWord, rest := splitWord(args)
	userWord, extra := splitWord(rest)
	if roleWord == "" || userWord == "" {
		return fmt.Errorf("Name the role and the person.")
	}
	if extra != "" {
		return fmt.Errorf("`role` takes a role and one person, but got %q after them.", clip(extra, 40))
	}
	role, err := incident.ParseRole(roleWord)
	if err != nil {
		// Tolerate "role @alice commander".
		if r2, err2 := incident.ParseRole(userWord); err2 == nil {
			role, roleWord, userWord = r2, userWord, roleWord
		} else {
			return err
		}
	}
	user, ok := ParseMention(userWord, opts)
	if !ok {
		if opts.PlainMentions {
			return fmt.Errorf("%q is not a person: mention them as @name.", clip(userWord, 40))
		}
		return fmt.Errorf("%q is not a person: mention them with @ so Slack sends their id (e.g. `role %s @alice`).", clip(userWord, 40), role)
	}
	c.Role, c.User = role, user
	return nil
}

var (
	slackMention = regexp.MustCompile(`^<@([UW][A-Z0-9]{1,20})(\|[^>]*)?>$`)
	plainMention = regexp.MustCompile(`^<?@([A-Za-z0-9][A-Za-z0-9._-]{0,79})>?$`)
)

// ParseMention returns the user id of a chat mention: <@U123> or
// <@U123|name>, and with opts.PlainMentions also @name and <@name> (the
// shell's users are names).
func ParseMention(word string, opts Options) (string, bool) {
	if m := slackMention.FindStringSubmatch(word); m != nil {
		return m[1], true
	}
	if opts.PlainMentions {
		if m := plainMention.FindStringSubmatch(word); m != nil && strings.HasPrefix(word, "<") == strings.HasSuffix(word, ">") {
			return m[1], true
		}
	}
	return "", false
}

// closest suggests the verb nearest to a mistyped word, if any is close.
func closest(word string) string {
	best, bestDist := "", 3
	for name, s := range byName {
		if len(name) < 2 {
			continue
		}
		if d := editDistance(word, name); d < bestDist || (d == bestDist && best != "" && string(s.verb) < best) {
			best, bestDist = string(s.verb), d
		}
	}
	if bestDist > 2 || len(word) < 2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// clip shortens user text echoed in an error.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Lookup returns the verb a command word or one of its aliases names.
func Lookup(word string) (Verb, bool) {
	s, ok := byName[strings.ToLower(word)]
	if !ok {
		return "", false
	}
	return s.verb, true
}
