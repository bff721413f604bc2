package slack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Slack's message limits (docs.slack.dev, Block Kit reference).
const (
	MaxSectionText = 3000  // characters in one section's text
	MaxFieldText   = 2000  // characters in one section field
	MaxBlocks      = 50    // blocks in one message
	MaxText        = 40000 // characters in a message's text
	maxButtonText  = 75
)

// Action ids of the summary message's buttons. The button value is only the
// incident id ("INC-7"); nothing else in an interaction payload is trusted.
const (
	ActionAck      = "incident_ack"
	ActionMitigate = "incident_mitigate"
	ActionResolve  = "incident_resolve"
	ActionLead     = "incident_lead"
)

// ActionFollowupDone is the Done button on the message that tells a new
// follow-up; its value is "INC-7#3" (incident and follow-up number).
const ActionFollowupDone = "followup_done"

// Action ids of runbook cards. The button value is only the opaque run id.
const (
	ActionRunbookConfirm = "runbook_confirm"
	ActionRunbookCancel  = "runbook_cancel"
	ActionRunbookApprove = "runbook_approve"
	ActionRunbookDeny    = "runbook_deny"
)

// SafeText makes text fit to post as mrkdwn in a message the bot sends,
// where the text may mix the bot's own mrkdwn, text it already escaped for
// Slack (runbook output) and text from outside (a title in a reply). It is
// idempotent: &amp;, &lt; and &gt; are kept as they are. Otherwise it
// works as EscapeText does.
func SafeText(s string) string { return escape(s, true) }

// EscapeText renders stored text (as the bot keeps it: Slack's entities
// decoded, see fromSlack; or text from PagerDuty) as mrkdwn, escaping
// exactly once: every &, < and > that is not part of a token below becomes
// an entity, so "R&D" shows as R&D and "&amp;" shows as &amp;.
//
//   - User mentions <@U…> and channel links <#C…> keep working (without a
//     label: Slack shows the real name).
//   - Broadcasts (<!here>, <!channel>, <!everyone>) and user-group
//     mentions (<!subteam^…>) become inert text, so nothing a person or an
//     alert wrote can notify a crowd; a date token shows its fallback text.
//   - A link shows where it really goes: <url> stays a link, and so does
//     <url|label> when the label is the address itself; any other label is
//     shown as text followed by the address ("label (<url>)"), so a label
//     cannot disguise the target. Only http(s) and mailto links are links.
//   - Anything else in angle brackets is shown literally.
func EscapeText(s string) string { return escape(s, false) }

// escape is SafeText (keepEntities) and EscapeText.
func escape(s string, keepEntities bool) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '&':
			if keepEntities && entity(s[i:]) {
				b.WriteByte('&')
			} else {
				b.WriteString("&amp;")
			}
			i++
		case '>':
			b.WriteString("&gt;")
			i++
		case '<':
			end := strings.IndexAny(s[i+1:], "<>")
			if end < 0 || s[i+1+end] != '>' {
				b.WriteString("&lt;")
				i++
				continue
			}
			b.WriteString(token(s[i+1:i+1+end], keepEntities))
			i += end + 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func entity(s string) bool {
	return strings.HasPrefix(s, "&amp;") || strings.HasPrefix(s, "&lt;") || strings.HasPrefix(s, "&gt;")
}

var (
	userToken    = regexp.MustCompile(`^@([UW][A-Z0-9]+)(\|[^|]*)?$`)
	channelToken = regexp.MustCompile(`^#([CG][A-Z0-9]+)(\|[^|]*)?$`)
	linkToken    = regexp.MustCompile(`^((?:https?://|mailto:)[^\s|]+)(?:\|([^|]*))?$`)
	dateToken    = regexp.MustCompile(`^!date\^\d+\^[^|]*(?:\|([^|]*))?$`)
)

// zwsp keeps "@here" from being read as a mention by any client.
const zwsp = "\u200b"

// token renders the inside of one <...> token.
func token(t string, keepEntities bool) string {
	esc := func(s string) string { return escapeLoose(s, keepEntities) }
	if m := userToken.FindStringSubmatch(t); m != nil {
		return "<@" + m[1] + ">"
	}
	if m := channelToken.FindStringSubmatch(t); m != nil {
		return "<#" + m[1] + ">"
	}
	if m := linkToken.FindStringSubmatch(t); m != nil {
		target, label := m[1], m[2]
		if label == "" || honestLabel(decodeEntities(label), decodeEntities(target)) {
			if label == "" {
				return "<" + esc(target) + ">"
			}
			return "<" + esc(target) + "|" + esc(label) + ">"
		}
		return esc(label) + " (<" + esc(target) + ">)"
	}
	if m := dateToken.FindStringSubmatch(t); m != nil {
		// The format may carry a link of its own: show the fallback.
		if m[1] == "" {
			return "a date"
		}
		return esc(m[1])
	}
	if strings.HasPrefix(t, "!") {
		name, label, _ := strings.Cut(t[1:], "|")
		switch {
		case name == "here" || name == "channel" || name == "everyone" || name == "group":
			return "@" + zwsp + name
		case strings.HasPrefix(name, "subteam^"):
			label = strings.TrimPrefix(label, "@")
			if label == "" {
				label = "group"
			}
			return "@" + zwsp + esc(label)
		}
		if label != "" {
			return esc(label)
		}
	}
	return "&lt;" + esc(t) + "&gt;"
}

// honestLabel reports whether a link's label is its own address: the URL,
// or the URL without its scheme (Slack's own auto-links look like
// <http://example.com|example.com> and <mailto:a@example.com|a@example.com>).
func honestLabel(label, target string) bool {
	if label == target {
		return true
	}
	for _, scheme := range []string{"https://", "http://", "mailto:"} {
		if rest, ok := strings.CutPrefix(target, scheme); ok && label == rest {
			return true
		}
	}
	return false
}

var slackEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// decodeEntities undoes Slack's escaping of &, < and >, exactly once.
func decodeEntities(s string) string { return slackEntities.Replace(s) }

// escapeLoose escapes &, < and > in text that sits inside a token; with
// keepEntities an & that starts an entity is kept.
func escapeLoose(s string, keepEntities bool) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			if keepEntities && entity(s[i:]) {
				b.WriteByte('&')
			} else {
				b.WriteString("&amp;")
			}
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// cut shortens mrkdwn to at most n characters without splitting a <token>
// or an &entity;, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	out := string(r)
	// Drop a token or entity the cut left open.
	if i := strings.LastIndexByte(out, '<'); i >= 0 && !strings.Contains(out[i:], ">") {
		out = out[:i]
	}
	if i := strings.LastIndexByte(out, '&'); i >= 0 && !strings.Contains(out[i:], ";") {
		out = out[:i]
	}
	// Keep code fences balanced so the rest of the message renders.
	if strings.Count(out, "```")%2 == 1 {
		out += "\n```"
	}
	return out + "…"
}

// link is a link the bot makes itself (to PagerDuty's page of an
// incident), labelled by the bot; a target that is not an http(s) URL is
// shown as text.
func link(target, label string) string {
	if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") || strings.ContainsAny(target, " |<>") {
		return EscapeText(label + " " + target)
	}
	return "<" + escapeLoose(target, false) + "|" + escapeLoose(label, false) + ">"
}

func mrkdwn(text string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false)
}

func plain(text string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.PlainTextType, text, true, false)
}

func section(text string) slackapi.Block {
	return slackapi.NewSectionBlock(mrkdwn(cut(text, MaxSectionText)), nil, nil)
}

func button(actionID, value, text string, style slackapi.Style) *slackapi.ButtonBlockElement {
	b := slackapi.NewButtonBlockElement(actionID, value, plain(cutPlain(text, maxButtonText)))
	if style != "" {
		b = b.WithStyle(style)
	}
	return b
}

func cutPlain(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// slackDate renders t with Slack's date token, shown in each reader's own
// time zone, with a UTC fallback for clients that cannot.
func slackDate(t time.Time, format string) string {
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), format, t.UTC().Format("2006-01-02 15:04 UTC"))
}

var statusEmoji = map[incident.Status]string{
	incident.StatusTriggered:    ":red_circle:",
	incident.StatusAcknowledged: ":large_orange_circle:",
	incident.StatusMitigated:    ":large_yellow_circle:",
	incident.StatusResolved:     ":large_green_circle:",
}

// Rendered is a message ready to send: blocks and the text fallback Slack
// shows in notifications and to clients without Block Kit.
type Rendered struct {
	Text   string
	Blocks []slackapi.Block
}

// Render renders an incident.Message as Block Kit with a text fallback.
// Stored text (titles, descriptions, timeline events) goes through
// EscapeText, composite text through SafeText, and every limit (3000
// characters per section, 50 blocks, 40k characters of text) is kept.
func Render(m incident.Message) Rendered {
	var r Rendered
	switch m.Kind {
	case incident.MessageSummary:
		r = renderSummary(m.Incident)
	case incident.MessageAnnouncement:
		r = renderAnnouncement(m.Incident)
	case incident.MessageEvents:
		r = renderEvents(m.Events)
	default:
		r = renderText(m.Text)
	}
	if len(r.Blocks) > MaxBlocks {
		r.Blocks = append(r.Blocks[:MaxBlocks-1], section("…more in the timeline (`/incident timeline`)."))
	}
	r.Text = cut(r.Text, MaxText)
	return r
}

func roleHolder(inc *incident.Incident, role incident.Role) string {
	if u := inc.Roles[role]; u != "" {
		return "<@" + u + ">"
	}
	return "_none_"
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func renderSummary(inc *incident.Incident) Rendered {
	title := EscapeText(inc.Title)
	head := fmt.Sprintf("%s *%s · %s · %s*\n*%s*", statusEmoji[inc.Status], inc.ID(), inc.Severity, titleCase(string(inc.Status)), title)
	blocks := []slackapi.Block{section(head)}
	if inc.Description != "" {
		blocks = append(blocks, section(EscapeText(inc.Description)))
	}
	if inc.Impact != "" {
		blocks = append(blocks, section(cut("*Impact:* "+SafeText(inc.Impact), MaxSectionText)))
	}
	fields := []*slackapi.TextBlockObject{
		mrkdwn("*Commander*\n" + roleHolder(inc, incident.RoleCommander)),
		mrkdwn("*Comms*\n" + roleHolder(inc, incident.RoleComms)),
		mrkdwn("*Scribe*\n" + roleHolder(inc, incident.RoleScribe)),
		mrkdwn(cut("*Declared*\n"+slackDate(inc.DeclaredAt, "{date_short_pretty} {time}")+" by "+EscapeText(inc.DeclaredBy.Mention()), MaxFieldText)),
	}
	if !inc.StartedAt.IsZero() {
		fields = append(fields, mrkdwn("*Started*\n"+slackDate(inc.StartedAt, "{date_short_pretty} {time}")))
	}
	if len(inc.Services) > 0 {
		fields = append(fields, mrkdwn(cut("*Services*\n"+SafeText(strings.Join(inc.Services, ", ")), MaxFieldText)))
	}
	if !inc.ResolvedAt.IsZero() && !inc.Status.Open() {
		fields = append(fields, mrkdwn("*Resolved*\n"+slackDate(inc.ResolvedAt, "{date_short_pretty} {time}")))
	}
	if inc.Pager.URL != "" {
		label := inc.Pager.Name() // the pager that holds the page: "PagerDuty #12", "Opsgenie #3"
		if inc.Pager.Number != 0 {
			label += " #" + strconv.FormatInt(inc.Pager.Number, 10)
		}
		fields = append(fields, mrkdwn(cut("*Page*\n"+link(inc.Pager.URL, label), MaxFieldText)))
	}
	blocks = append(blocks, slackapi.NewSectionBlock(nil, fields, nil))
	if inc.Status.Open() {
		id := inc.ID()
		var buttons []slackapi.BlockElement
		if inc.Status == incident.StatusTriggered {
			buttons = append(buttons, button(ActionAck, id, "Acknowledge", slackapi.StylePrimary))
		}
		if inc.Status != incident.StatusMitigated {
			buttons = append(buttons, button(ActionMitigate, id, "Mitigated", ""))
		}
		buttons = append(buttons, button(ActionResolve, id, "Resolve", ""), button(ActionLead, id, "Take commander", ""))
		blocks = append(blocks, slackapi.NewActionBlock("incident_actions", buttons...))
	}
	blocks = append(blocks, slackapi.NewContextBlock("", mrkdwn(fmt.Sprintf("Updated %s · `/incident help` lists the commands", slackDate(inc.UpdatedAt, "{date_short_pretty} {time}")))))
	text := fmt.Sprintf("%s %s %s: %s", inc.ID(), inc.Severity, inc.Status, title)
	return Rendered{Text: text, Blocks: blocks}
}

func renderAnnouncement(inc *incident.Incident) Rendered {
	title := EscapeText(inc.Title)
	lead := ":rotating_light: *" + inc.ID() + "* " + inc.Severity.String()
	if !inc.Status.Open() {
		lead = ":white_check_mark: *" + inc.ID() + "* " + inc.Severity.String()
	}
	where := ""
	if inc.Chat.ChannelID != "" {
		where = "<#" + inc.Chat.ChannelID + ">"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s · %s\n*%s*", lead, titleCase(string(inc.Status)), title)
	if where != "" {
		fmt.Fprintf(&b, "\nJoin %s", where)
	}
	if c := inc.Commander(); c != "" {
		fmt.Fprintf(&b, " · Commander <@%s>", c)
	}
	text := fmt.Sprintf("%s %s (%s): %s", inc.ID(), inc.Severity, inc.Status, title)
	if where != "" {
		text += " in " + where
	}
	return Rendered{Text: text, Blocks: []slackapi.Block{section(b.String())}}
}

func renderEvents(events []incident.Event) Rendered {
	lines := make([]string, 0, len(events))
	var blocks []slackapi.Block
	for _, ev := range events {
		line := EscapeText(ev.Describe())
		lines = append(lines, line)
		blocks = append(blocks, section(slackDate(ev.At, "{time}")+" "+line))
		if ev.Kind == incident.EventFollowupAdded && ev.Data["id"] != "" {
			value := incident.FormatID(ev.Incident) + "#" + ev.Data["id"]
			blocks = append(blocks, slackapi.NewActionBlock("", button(ActionFollowupDone, value, "Done", "")))
		}
		if ev.Kind == incident.EventAlert && ev.Data["offer"] == "mitigate" {
			// The alert group resolved: one click marks the incident mitigated.
			blocks = append(blocks, slackapi.NewActionBlock("", button(ActionMitigate, incident.FormatID(ev.Incident), "Mitigated", slackapi.StylePrimary)))
		}
	}
	return Rendered{Text: strings.Join(lines, "\n"), Blocks: blocks}
}

func renderText(text string) Rendered {
	safe := SafeText(text)
	return Rendered{Text: safe, Blocks: chunkSections(safe)}
}

// chunkSections splits long mrkdwn into sections of at most MaxSectionText
// characters, breaking at line ends where it can.
func chunkSections(text string) []slackapi.Block {
	var blocks []slackapi.Block
	for text != "" && len(blocks) < MaxBlocks {
		r := []rune(text)
		if len(r) <= MaxSectionText {
			blocks = append(blocks, section(text))
			break
		}
		head := string(r[:MaxSectionText-1])
		if i := strings.LastIndexByte(head, '\n'); i > MaxSectionText/2 {
			head = head[:i]
		} else if i := strings.LastIndexAny(head, "<&"); i > 0 && !strings.ContainsAny(head[i:], ">;") {
			head = head[:i]
		}
		blocks = append(blocks, section(head))
		text = strings.TrimLeft(text[len(head):], "\n")
	}
	return blocks
}

// CardButtons says which buttons a Card carries.
type CardButtons int

// Card button sets.
const (
	NoButtons      CardButtons = iota
	ConfirmButtons             // Confirm / Cancel (runbook_confirm, runbook_cancel)
	ApproveButtons             // Approve / Deny (runbook_approve, runbook_deny)
)

// Card is a message with buttons about a runbook run. Text is mrkdwn the
// caller has already made safe: it is posted as it is (so it may mention
// the configured approver groups). The buttons carry only RunID.
type Card struct {
	Text    string
	RunID   string
	Buttons CardButtons
}

// RenderCard renders a card: its text in sections and its buttons.
func RenderCard(c Card) Rendered {
	blocks := []slackapi.Block{}
	for _, part := range splitRunes(c.Text, MaxSectionText) {
		blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(part), nil, nil))
	}
	switch c.Buttons {
	case ConfirmButtons:
		blocks = append(blocks, slackapi.NewActionBlock("runbook_actions",
			button(ActionRunbookConfirm, c.RunID, "Confirm", slackapi.StylePrimary),
			button(ActionRunbookCancel, c.RunID, "Cancel", "")))
	case ApproveButtons:
		blocks = append(blocks, slackapi.NewActionBlock("runbook_actions",
			button(ActionRunbookApprove, c.RunID, "Approve", slackapi.StylePrimary),
			button(ActionRunbookDeny, c.RunID, "Deny", slackapi.StyleDanger)))
	}
	if len(blocks) > MaxBlocks {
		blocks = append(blocks[:MaxBlocks-2], blocks[len(blocks)-1])
	}
	return Rendered{Text: cut(c.Text, MaxText), Blocks: blocks}
}

func splitRunes(s string, n int) []string {
	var out []string
	for s != "" {
		r := []rune(s)
		if len(r) <= n {
			out = append(out, s)
			break
		}
		head := string(r[:n])
		if i := strings.LastIndexByte(head, '\n'); i > n/2 {
			head = head[:i]
		}
		out = append(out, head)
		s = strings.TrimLeft(s[len(head):], "\n")
	}
	return out
}
