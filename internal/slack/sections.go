package slack

import (
	slackapi "github.com/slack-go/slack"
)

// RenderSections renders a reply given in parts (command.Reply.Sections):
// each part, made safe with SafeText, is a section block (split where a
// part is longer than a section holds), at most MaxBlocks of them; the
// text is every part, for notifications and clients without blocks.
func RenderSections(parts []string) Rendered {
	blocks := []slackapi.Block{}
	text := ""
	for i, p := range parts {
		p = SafeText(p)
		if i > 0 {
			text += "\n"
		}
		text += p
		for _, s := range splitRunes(p, MaxSectionText) {
			blocks = append(blocks, slackapi.NewSectionBlock(mrkdwn(s), nil, nil))
		}
	}
	if len(blocks) > MaxBlocks {
		blocks = append(blocks[:MaxBlocks-1], blocks[len(blocks)-1])
	}
	return Rendered{Text: cut(text, MaxText), Blocks: blocks}
}
