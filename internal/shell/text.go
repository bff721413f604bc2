package shell

import (
	"regexp"
	"strings"
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
// address, *bold* loses its stars, and Slack's entities are decoded.
func Plain(s string) string {
	s = userMention.ReplaceAllString(s, "@$1")
	s = channelMention.ReplaceAllString(s, "#$1")
	s = groupMention.ReplaceAllString(s, "@$1")
	s = link.ReplaceAllString(s, "$2 ($1)")
	s = bold.ReplaceAllString(s, "$1")
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// Markup turns what a person typed in the shell into the bot's chat markup,
// as Slack would send it: &, < and > escaped, and @name mentions written as
// <@name> so the command language sees a mention.
func Markup(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return plainAt.ReplaceAllString(s, "$1<@$2>")
}

var plainAt = regexp.MustCompile(`(^|\s)@([A-Za-z0-9][A-Za-z0-9._-]{0,79})`)
