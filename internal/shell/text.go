package shell

import (
	"regexp"
	"strings"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

var (
	userMention    = regexp.MustCompile(`<@([A-Za-z0-9._-]+)(\|[^>]*)?>`)
	channelMention = regexp.MustCompile(`<#([A-Za-z0-9._-]+)(\|[^>]*)?>`)
	groupMention   = regexp.MustCompile(`<!subteam\^([A-Za-z0-9]+)(\|[^>]*)?>`)
	link           = regexp.MustCompile(`<(https?://[^|>]+)\|([^>]+)>`)
	bold           = regexp.MustCompile(`\*([^*\n]+)\*`)
)

// Plain turns the chat markup of the bot's text into plain terminal text:
// <@alice> becomes @alice, <#inc-1-x> becomes #inc-1-x, a user group
// <!subteam^S1> becomes @S1, links show their
// address, *bold* outside code loses its stars, and Slack's entities are
// decoded.
func Plain(s string) string {
	s = userMention.ReplaceAllString(s, "@$1")
	s = channelMention.ReplaceAllString(s, "#$1")
	s = groupMention.ReplaceAllString(s, "@$1")
	s = link.ReplaceAllString(s, "$2 ($1)")
	// Slack formats nothing inside code spans and blocks: only the parts
	// outside backticks lose their bold stars.
	parts := strings.Split(s, "`")
	for i := 0; i < len(parts); i += 2 {
		parts[i] = bold.ReplaceAllString(parts[i], "$1")
	}
	s = strings.Join(parts, "`")
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// Markup turns what a person typed in the shell into a command's text as
// the Slack adapter hands it on: cleaned (incident.CleanText), with @name
// mentions written as <@name> so the command language sees a mention. A
// `run` command is escaped as Slack sends it instead (&, < and > as
// entities): the runbook engine decodes its parameters itself.
func Markup(s string) string {
	if word, _, _ := strings.Cut(strings.TrimSpace(s), " "); strings.EqualFold(word, string(command.VerbRun)) {
		s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	} else {
		s = incident.CleanText(s)
	}
	return plainAt.ReplaceAllString(s, "$1<@$2>")
}

var plainAt = regexp.MustCompile(`(^|\s)@([A-Za-z0-9][A-Za-z0-9._-]{0,79})`)
