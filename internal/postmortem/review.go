package postmortem

import (
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Finding is a phrase in what people wrote during the incident that may
// assign blame, for the postmortem's blameless review checklist.
type Finding struct {
	Where      string // "Note by alice, 2026-11-20 10:20:03"
	Phrase     string // the words found, as written
	Quote      string // the sentence they are in, verbatim (cut with … if long)
	Rule       string // what kind of wording it is
	Suggestion string // how to reframe it
}

// rule is one kind of blaming wording.
type rule struct {
	name       string
	re         *regexp.Regexp
	suggestion string
	// reject drops a match that only looks like blame ("nobody's fault").
	reject func(match string) bool
	// keywords are lower-case words one of which every match contains; a
	// text with none of them is not searched (regexps are slow, and most
	// of a long timeline is blameless). who, if set, is a second such list:
	// a match contains one of those too.
	keywords, who []string
}

func (r rule) mayMatch(lower string) bool {
	return containsAny(lower, r.keywords) && (r.who == nil || containsAny(lower, r.who))
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// apos matches a straight or typographic apostrophe.
const apos = `['’]`

var rules = []rule{
	{
		name:       "human error",
		keywords:   []string{"human"},
		re:         regexp.MustCompile(`(?i)\bhuman[\s-]+errors?\b`),
		suggestion: `Say what made the slip easy to make and what would catch it next time (a guardrail, a safer default, a check), e.g. "the command accepted a production target without a confirmation".`,
	},
	{
		name:       "hindsight",
		keywords:   []string{"should", "could", "why"},
		re:         regexp.MustCompile(`(?i)\b(?:should(?:n` + apos + `?t|\s+not)?(?:\s+have|` + apos + `ve)|could\s+have\s+(?:easily\s+)?(?:prevented|avoided|caught)|why\s+(?:didn` + apos + `?t|did\s+not|wasn` + apos + `?t|was\s+not)\s+\w+)`),
		suggestion: `Hindsight: describe what people knew and saw at the time and what would have made the better choice obvious then, e.g. "the dashboard did not show the queue depth, so the restart looked safe".`,
	},
	{
		name:       "judging the person",
		keywords:   []string{"careless", "slopp", "negligen", "lazy", "lazi", "incompeten", "stupid", "dumb", "idiot", "reckless", "irresponsible"},
		re:         regexp.MustCompile(`(?i)\b(?:careless(?:ly|ness)?|sloppy|sloppiness|negligen(?:t|tly|ce)|lazy|laziness|incompeten(?:t|ce)|stupid(?:ity)?|dumb|idiot(?:ic)?|reckless(?:ly)?|irresponsible)\b`),
		suggestion: `Describe the action and the conditions around it (time pressure, tooling, noisy alerts) without judging the person.`,
	},
	{
		name:       "fault or blame",
		keywords:   []string{"fault", "mistake", "blam"},
		re:         regexp.MustCompile(`(?i)(?:(?:<@[A-Z0-9]+(?:\|[^>]*)?>|[\p{L}\p{N}_.@-]+)` + apos + `s\s+(?:fault|mistake)\b|\b(?:my|his|her|their|your)\s+(?:fault|mistake)\b|\bfault\s+of\b|\bat\s+fault\b|\bto\s+blame\b|\bblam(?:e|ed|ing)\s+(?:it\s+|this\s+|that\s+)?on\b)`),
		suggestion: `Name the conditions that combined to cause the incident rather than someone at fault.`,
		reject: func(m string) bool {
			// "nobody's fault", "no one's fault" say the opposite.
			owner, _, ok := strings.Cut(strings.ToLower(strings.ReplaceAll(m, "’", "'")), "'s")
			return ok && slices.Contains([]string{"nobody", "noone", "no-one", "one", "anyone", "anybody"}, owner)
		},
	},
	{
		name:       "a missed step",
		keywords:   []string{"forgot", "failed", "neglected", "bother", "ignored"},
		re:         regexp.MustCompile(`(?i)\b(?:forgot(?:ten)?(?:\s+to)?|failed\s+to|neglected\s+to|didn` + apos + `?t\s+bother|did\s+not\s+bother|ignored\s+(?:the\s+|an?\s+|our\s+)?(?:alerts?|alarms?|pages?|warnings?|runbook|checklist))\b`),
		suggestion: `Ask what would have made the step hard to miss: a checklist, automation, a clearer or less noisy signal.`,
	},
	{
		name:       "a mistake",
		keywords:   []string{"messed", "screwed", "dropped", "finger", "botched", "mistake"},
		re:         regexp.MustCompile(`(?i)\b(?:messed\s+up|screwed\s+up|dropped\s+the\s+ball|fat[\s-]?finger(?:ed|ing)?|botched|mistake\s+by)\b`),
		suggestion: `Describe what happened mechanically (which command, which input, which change) and why the system accepted it.`,
	},
	{
		name:       "single root cause",
		keywords:   []string{"root"},
		re:         regexp.MustCompile(`(?i)\broot[\s-]+causes?\b`),
		suggestion: `Incidents rarely have one root cause; list the contributing factors instead.`,
	},
}

// mention matches a chat mention or an @handle.
const mention = `<@[A-Z0-9]+(?:\|[^>]*)?>|@[\p{L}\p{N}_.-]+`

// causeBefore and causeAfter are the words that make a named person the
// cause: "caused by <@U1>", "<@U1> broke prod".
const (
	causeBefore = `(?:caused\s+by|because\s+of|due\s+to|thanks\s+to|blame\s+(?:it\s+)?on|error\s+by|mistakes?\s+(?:by|of)|fault\s+of)`
	causeAfter  = `(?:broke|caused|pushed|deployed|deleted|dropped|removed|misconfigured|forgot|missed|ignored|took\s+down|brought\s+down|messed\s+up|screwed\s+up)`
)

const personSuggestion = `A person is named as the cause: describe the action and its context ("a config change to X at 10:02 removed Y") rather than who did it.`

// personRule builds the rule that spots a person named as the cause, from
// the mentions any text may carry and the names of the incident's people.
func personRule(names []string) rule {
	lowered := []string{"@"}
	for _, n := range names {
		lowered = append(lowered, strings.ToLower(n))
	}
	alts := []string{mention}
	for _, n := range names {
		alts = append(alts, `\b`+regexp.QuoteMeta(n)+`\b`)
	}
	who := `(?:` + strings.Join(alts, "|") + `)`
	return rule{
		keywords: []string{"caused", "because", "due", "thanks", "blame", "error", "mistake", "fault", "broke", "pushed", "deployed",
			"deleted", "dropped", "removed", "misconfigured", "forgot", "missed", "ignored", "took", "brought", "messed", "screwed"},
		who:        lowered,
		name:       "a person as the cause",
		re:         regexp.MustCompile(`(?i)` + causeBefore + `\s+` + who + `|` + who + `\s+` + causeAfter + `\b`),
		suggestion: personSuggestion,
	}
}

// source is a piece of text people wrote, and where.
type source struct {
	where string
	text  string
}

// review lists the blaming phrases in the incident's title, description and
// the text of every event a person or an outside system recorded.
func review(inc *incident.Incident, events []incident.Event, ppl people, when func(time.Time) string) []Finding {
	sources := []source{{"Title", inc.Title}, {"Description", inc.Description}}
	for _, ev := range events {
		if ev.Text == "" || ev.Actor.Source == incident.SourceBot || ev.Kind == incident.EventDeclared ||
			ev.Kind == incident.EventChannelCreated || ev.Kind == incident.EventPostmortemDrafted {
			continue // the declaration repeats the title; the rest is the bot's own words
		}
		kind, who, _ := describe(ev, ppl)
		sources = append(sources, source{where: kind + " by " + who + ", " + when(ev.At), text: ev.Text})
	}
	all := append(append([]rule{}, rules...), personRule(ppl.names()))
	var out []Finding
	for _, src := range sources {
		lower := strings.ToLower(src.text)
		for _, r := range all {
			if !r.mayMatch(lower) {
				continue
			}
			for _, loc := range r.re.FindAllStringIndex(src.text, -1) {
				m := src.text[loc[0]:loc[1]]
				if r.reject != nil && r.reject(m) {
					continue
				}
				out = append(out, Finding{
					Where: src.where, Phrase: strings.TrimSpace(m), Quote: sentence(src.text, loc[0], loc[1]),
					Rule: r.name, Suggestion: r.suggestion,
				})
				break // one finding per rule and text is enough to review it
			}
		}
	}
	return out
}

// maxQuote is the longest quote shown, in characters.
const maxQuote = 200

// sentence returns the sentence of text that contains [start, end),
// verbatim, cut around the match with "…" when it is long. A line break
// ends a sentence too, so the quote fits in one checklist item.
func sentence(text string, start, end int) string {
	// A sentence ends at a line break, or at . ! ? followed by a space or
	// the end ("0.2%" and "v1.2" do not end one).
	ends := func(i int) bool {
		switch text[i] {
		case '\n':
			return true
		case '.', '!', '?':
			return i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t' || text[i+1] == '\n' || text[i+1] == '\r'
		}
		return false
	}
	from := 0
	for i := start - 1; i >= 0; i-- {
		if ends(i) {
			from = i + 1
			break
		}
	}
	to := len(text)
	for i := end; i < len(text); i++ {
		if ends(i) {
			to = i
			if text[i] != '\n' {
				to++ // keep the full stop
			}
			break
		}
	}
	s := text[from:to]
	mStart, mEnd := start-from, end-from
	// Trim leading space, keeping the match offsets right.
	trimmed := strings.TrimLeftFunc(s, unicode.IsSpace)
	mStart -= len(s) - len(trimmed)
	mEnd -= len(s) - len(trimmed)
	s = strings.TrimRightFunc(trimmed, unicode.IsSpace)
	r := []rune(s)
	if len(r) > maxQuote {
		rs := len([]rune(s[:mStart]))
		re := len([]rune(s[:mEnd]))
		room := max((maxQuote-(re-rs))/2, 20)
		lo, hi := max(rs-room, 0), min(re+room, len(r))
		q := string(r[lo:hi])
		if lo > 0 {
			q = "…" + q
		}
		if hi < len(r) {
			q += "…"
		}
		s = q
	}
	return s
}
