package templates

import (
	"regexp"
	"strings"
)

// Text makes text that people or PagerDuty supplied safe to place in a
// Markdown document as inline text (a list item, a paragraph, after the
// "# " of a heading when it is one line): whatever it contains, it renders
// as the characters written and adds no structure.
//
//   - Inline markup is escaped: \ ` * _ [ ] ~ become backslash escapes (no
//     emphasis, links, images or code spans), < becomes &lt; (no HTML such
//     as <script> or <img onerror=…>, no autolinks; an entity, because not
//     every Markdown dialect knows the \< escape, and a lone > starts
//     nothing mid-line), and an & that would start an entity becomes &amp;.
//   - Slack's link markup <https://…|label> becomes "label (https://…)",
//     so the reader sees where a link really goes.
//   - Every line is trimmed and one that starts with a block marker (# > - +
//     = : | or "1." / "1)") has that marker escaped, so no line becomes a
//     heading, quote, list item, thematic break, setext underline or table
//     row; code fences are impossible since ` and ~ are escaped.
//   - Line endings become "\n" and blank lines are dropped, so the text
//     stays one paragraph (an extra paragraph would split a list item).
//
// Multi-line results are meant for list items (with indent) and block
// quotes (with quote); a table cell needs cell, a heading Line.
// (CommonMark 0.31, sections 2.4 backslash escapes, 4 leaf blocks, 6.6 raw
// HTML; GFM 0.29 section 4.10 tables.)
func Text(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
	s = slackLink.ReplaceAllStringFunc(s, func(m string) string {
		url, label, ok := strings.Cut(m[1:len(m)-1], "|")
		if !ok || strings.TrimSpace(label) == "" || label == url {
			return url
		}
		return label + " (" + url + ")"
	})
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	first := true
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !first {
			b.WriteByte('\n')
		}
		first = false
		b.WriteString(escapeLineStart(escapeInline(line)))
	}
	return b.String()
}

// Line is Text on one line: line breaks become spaces. For headings and
// other places where a new line would end the element.
func Line(s string) string {
	return strings.ReplaceAll(Text(s), "\n", " ")
}

// Code renders s as a Markdown code span: verbatim, on one line, fenced
// with more backticks than s contains in a row.
func Code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

var slackLink = regexp.MustCompile(`<(?:https?|mailto):[^|<>\s]+(?:\|[^<>]*)?>`)

var entityLike = regexp.MustCompile(`^&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});`)

func escapeInline(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '`', '*', '_', '[', ']', '~':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '<':
			b.WriteString("&lt;")
		case '&':
			if entityLike.MatchString(s[i:]) {
				b.WriteString("&amp;")
			} else {
				b.WriteByte('&')
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var orderedMarker = regexp.MustCompile(`^[0-9]{1,9}[.)]`)

// escapeLineStart escapes a block marker at the start of an (inline
// escaped, trimmed) line.
func escapeLineStart(line string) string {
	if line == "" {
		return line
	}
	switch line[0] {
	case '#', '>', '-', '+', '=', ':', '|':
		return `\` + line
	}
	if m := orderedMarker.FindString(line); m != "" {
		return m[:len(m)-1] + `\` + line[len(m)-1:]
	}
	return line
}
