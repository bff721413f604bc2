package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// MaxCatchupText caps the characters of all the blocks of a catch-up
// together. Slack documents 50 blocks a message and 3,000 characters a
// section (https://docs.slack.dev/reference/block-kit/blocks,
// .../blocks/section-block) but also refuses messages whose blocks hold
// about 13,000 characters in all with msg_blocks_too_long, a limit it does
// not document (slackapi/bolt-js#2509 measured 13,297 for markdown blocks
// and less with other blocks): the catch-up stays below 12,000.
const MaxCatchupText = 12000

// catchupFooter closes a catch-up that was trimmed to fit.
const catchupFooter = "Trimmed to fit in Slack. " + incident.TimelinePointer

// RenderCatchup renders a catch-up as an ephemeral message: the headline,
// title, roles and facts always, then each section, newest entries first
// to go in when the message would exceed Slack's limits (50 blocks, 3,000
// characters a section, MaxCatchupText in all); what is left out is
// counted and the message ends with a pointer to `/incident timeline`.
// Everything people wrote goes through EscapeText, so a broadcast mention
// in a title or a note notifies nobody.
func RenderCatchup(c incident.Catchup) Rendered {
	head := fmt.Sprintf("%s %s\n*%s*", statusEmoji[c.Status], EscapeText(c.Headline()), EscapeText(c.Title))
	fields := []*slackapi.TextBlockObject{}
	for _, r := range c.Roles {
		who := "_nobody_"
		if r.User != "" {
			who = "<@" + EscapeText(r.User) + ">"
		}
		fields = append(fields, mrkdwn(cut("*"+titleCase(string(r.Role))+"*\n"+who, MaxFieldText)))
	}
	fields = append(fields, mrkdwn(cut("*Declared*\n"+slackDate(c.DeclaredAt, "{date_short_pretty} {time}")+" by "+EscapeText(c.DeclaredBy.Mention()), MaxFieldText)))
	// Each fact gets a share of a section, so a long summary cannot push
	// the impact or the last update out.
	facts := make([]string, 0, 4)
	for _, f := range c.Facts() {
		facts = append(facts, cut(EscapeText(f), maxCatchupFact))
	}
	b := catchupBuilder{budget: MaxCatchupText, blocks: []slackapi.Block{}}
	b.add(section(head))
	b.add(slackapi.NewSectionBlock(nil, fields, nil))
	b.used += utf8.RuneCountInString(blocksTextOf(fields))
	b.addText(cut(strings.Join(facts, "\n"), MaxSectionText))
	// What is left: the sections, each a title and its lines, within the
	// budget left after the footer (kept free in case it is needed).
	trimmed := false
	for _, s := range c.Sections {
		if len(s.Items) == 0 && s.Empty == "" && s.Earlier == 0 {
			continue
		}
		title := "*" + EscapeText(s.Title) + "*"
		items := make([]string, len(s.Items))
		for i, it := range s.Items {
			items[i] = cut(EscapeText(s.Line(c, it)), MaxSectionText-utf8.RuneCountInString(title)-1)
		}
		if len(items) == 0 {
			b.addSection(title, []string{"_" + EscapeText(s.Empty) + "_"}, 0, true)
			continue
		}
		if !b.addSection(title, items, s.Earlier, s.Kind != incident.CatchupFollowups) {
			trimmed = true
		}
	}
	if trimmed {
		b.blocks = append(b.blocks, slackapi.NewContextBlock("", mrkdwn(catchupFooter)))
	} else {
		b.blocks = append(b.blocks, slackapi.NewContextBlock("", mrkdwn("Only you can see this · times in your time zone · `/incident timeline` has every event")))
	}
	text := fmt.Sprintf("Catch-up on %s (%s, %s): %s", c.ID(), c.Severity, c.Status, EscapeText(c.Title))
	return Rendered{Text: cut(text, MaxText), Blocks: b.blocks}
}

// catchupBuilder adds blocks while they fit: it keeps two blocks and the
// footer's characters free for the footer.
type catchupBuilder struct {
	blocks []slackapi.Block
	used   int
	budget int
}

const catchupReserve = 200

// maxCatchupFact caps one fact line (summary, impact, services, last
// update): four of them fit one section.
const maxCatchupFact = MaxSectionText/4 - 1 // characters kept for the footer

func (b *catchupBuilder) add(bl slackapi.Block) {
	b.blocks = append(b.blocks, bl)
	if s, ok := bl.(*slackapi.SectionBlock); ok && s.Text != nil {
		b.used += utf8.RuneCountInString(s.Text.Text)
	}
}

func (b *catchupBuilder) addText(text string) { b.add(section(text)) }

// addSection adds a titled list in as many section blocks as its lines
// need. When not all lines fit it keeps the last ones (newest) if
// keepLast, else the first ones. A line counts the entries left out, by
// the catch-up (earlier) and here; it reports whether none were.
func (b *catchupBuilder) addSection(title string, lines []string, earlier int, keepLast bool) bool {
	left := b.budget - catchupReserve - b.used
	room := MaxBlocks - 1 - len(b.blocks) // one for the footer
	const noteSize = 40                   // the line counting what is left out
	if room <= 0 || left <= utf8.RuneCountInString(title)+noteSize {
		return false
	}
	// Take lines while the characters allow, newest first when keepLast.
	take := make([]bool, len(lines))
	size, kept := utf8.RuneCountInString(title)+noteSize, 0
	for k := range lines {
		i := k
		if keepLast {
			i = len(lines) - 1 - k
		}
		n := utf8.RuneCountInString(lines[i]) + 1
		if size+n > left {
			break
		}
		size += n
		take[i] = true
		kept++
	}
	out := make([]string, 0, kept+1)
	for i, l := range lines {
		if take[i] {
			out = append(out, l)
		}
	}
	omitted := earlier + len(lines) - kept
	if omitted > 0 {
		if keepLast {
			out = append([]string{fmt.Sprintf("_…%d earlier_", omitted)}, out...)
		} else {
			out = append(out, fmt.Sprintf("_…%d more (`/incident followups`)_", omitted))
		}
	}
	// Pack the lines into sections of at most MaxSectionText characters.
	chunk := title
	for _, l := range out {
		if utf8.RuneCountInString(chunk)+1+utf8.RuneCountInString(l) > MaxSectionText {
			b.addText(chunk)
			if len(b.blocks) >= MaxBlocks-1 {
				return false
			}
			chunk = l
			continue
		}
		chunk += "\n" + l
	}
	b.addText(chunk)
	return omitted == 0
}

func blocksTextOf(fields []*slackapi.TextBlockObject) string {
	var s strings.Builder
	for _, f := range fields {
		s.WriteString(f.Text)
	}
	return s.String()
}
