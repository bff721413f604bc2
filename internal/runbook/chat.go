package runbook

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// slackEscaper escapes the three characters Slack treats as markup. With
// them escaped no text can form a mention, channel link or URL.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// EscapeSlack makes s inert in Slack mrkdwn: &, < and > become entities, so
// the text can never fire a mention (<!here>, <@U…>, <!subteam^…>) or a
// link. Send messages with link_names off and unfurling off as well.
func EscapeSlack(s string) string { return slackEscaper.Replace(s) }

// neutraliseFences inserts U+200B between consecutive backticks so output
// can never close the code fence it is shown in.
func neutraliseFences(s string) string {
	if !strings.Contains(s, "``") {
		return s
	}
	var b strings.Builder
	prev := rune(0)
	for _, r := range s {
		if r == '`' && prev == '`' {
			b.WriteString("\u200b")
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

// codeBlock renders text as an inert Slack code block.
func codeBlock(text string) string {
	return "```\n" + neutraliseFences(EscapeSlack(text)) + "\n```"
}

// displayArgv joins argv for humans: elements with spaces, quotes or
// non-printable characters are Go-quoted so element boundaries stay visible.
func displayArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\`") || !isPrintableASCII(a) {
			parts[i] = strconv.Quote(a)
		}
	}
	return strings.Join(parts, " ")
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// truncatedNote is appended whenever chat shows less than the full output.
func truncatedNote(n int64, runID string) string {
	return "[… " + strconv.FormatInt(n, 10) + " bytes truncated; full output stored with run " + runID + "]"
}

// formatOutput renders captured (already redacted) output for chat: the
// head or tail within chat.MaxLines and a budget of maxChars characters
// (counted after escaping), in a code fence, with the truncation note when
// anything was cut. dropped is what capture already discarded. It returns ""
// for show: none.
func formatOutput(out string, dropped int64, chat ChatOutput, maxChars int, runID string) string {
	if chat.Show == ShowNone {
		return ""
	}
	if out == "" && dropped == 0 {
		return "_(no output)_"
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > chat.MaxLines {
		if chat.Show == ShowHead {
			lines = lines[:chat.MaxLines]
		} else {
			lines = lines[len(lines)-chat.MaxLines:]
		}
	}
	shown := strings.Join(lines, "\n")
	note := truncatedNote(int64(len(out))+dropped, runID) // widest possible note
	budget := maxChars - len("```\n\n```\n") - utf8.RuneCountInString(note)
	shown = fitEscaped(shown, budget, chat.Show == ShowHead)
	cut := int64(len(out)) + dropped - int64(len(shown))
	if strings.TrimRight(out, "\n") == shown && dropped == 0 {
		cut = 0
	}
	text := codeBlock(shown)
	if cut > 0 {
		text += "\n" + truncatedNote(cut, runID)
	}
	return text
}

// fitEscaped cuts s to at most budget characters once escaped and fenced,
// keeping the start (head) or the end (tail), on rune boundaries.
func fitEscaped(s string, budget int, head bool) string {
	if budget <= 0 {
		return ""
	}
	cost := func(r rune) int {
		switch r {
		case '&':
			return 5
		case '<', '>':
			return 4
		case '`':
			return 2 // a U+200B may be inserted before it
		}
		return 1
	}
	runes := []rune(s)
	total := 0
	if head {
		for i, r := range runes {
			if total += cost(r); total > budget {
				return string(runes[:i])
			}
		}
		return s
	}
	for i := len(runes) - 1; i >= 0; i-- {
		if total += cost(runes[i]); total > budget {
			return string(runes[i+1:])
		}
	}
	return s
}
