package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

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
// title, roles and facts always, then each section in turn, as much of it
// as fits in Slack's limits (50 blocks, 3,000 characters a section,
// MaxCatchupText in all), its newest entries kept (the follow-ups: the
// lowest numbers); what is left out is counted and the message ends with
// a pointer to `/incident timeline`.
// Times are date tokens, shown in each reader's own time zone. Everything
// people wrote goes through EscapeText, so a broadcast mention in a title
// or a note notifies nobody.
func RenderCatchup(c incident.Catchup) Rendered { return renderCatchup(c, "") }

// renderCatchup is RenderCatchup with an intro section (mrkdwn) first.
func renderCatchup(c incident.Catchup, intro string) Rendered {
	when := func(t time.Time) string {
		if c.Now.Sub(t) < 20*time.Hour {
			return slackDate(t, "{time}")
		}
		return slackDate(t, "{date_short_pretty} {time}")
	}
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
	var facts []string
	if c.Summary != "" {
		facts = append(facts, cut("*Summary:* "+EscapeText(c.Summary), maxCatchupFact))
	}
	if c.Impact != "" {
		facts = append(facts, cut("*Impact:* "+EscapeText(c.Impact), maxCatchupFact))
	} else {
		facts = append(facts, "*Impact:* _not recorded yet_ (`/incident impact <text>`)")
	}
	if len(c.Services) > 0 {
		facts = append(facts, cut("*Services:* "+EscapeText(strings.Join(c.Services, ", ")), maxCatchupFact))
	}
	if u := c.LastUpdate; u != nil {
		facts = append(facts, cut("*Last status update* ("+when(u.At)+") from "+EscapeText(u.Text), maxCatchupFact))
	} else {
		facts = append(facts, "*Last status update:* none yet")
	}
	b := catchupBuilder{budget: MaxCatchupText, blocks: []slackapi.Block{}}
	if intro != "" {
		b.addText(cut(intro, MaxSectionText))
	}
	b.add(section(head))
	b.add(slackapi.NewSectionBlock(nil, fields, nil))
	b.used += utf8.RuneCountInString(blocksTextOf(fields))
	b.addText(strings.Join(facts, "\n"))
	trimmed := false
	for _, s := range c.Sections {
		if len(s.Items) == 0 && s.Empty == "" && s.Earlier == 0 {
			continue
		}
		title := "*" + EscapeText(s.Title) + "*"
		if s.Kind == incident.CatchupChanges {
			title = "*Since " + when(c.Since) + "*"
			if c.SinceJoined {
				title = "*Since you joined (" + when(c.Since) + ")*"
			}
		}
		items := make([]string, len(s.Items))
		for i, it := range s.Items {
			line := "• "
			if !it.At.IsZero() {
				line += when(it.At) + " "
			}
			items[i] = cut(line+EscapeText(it.Text), MaxSectionText-utf8.RuneCountInString(title)-1)
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

// catchupReserve is the characters kept free for the footer.
const catchupReserve = 200

// maxCatchupFact caps one fact line (summary, impact, services, last
// update): four of them fit one section.
const maxCatchupFact = MaxSectionText/4 - 1

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

// JobCatchupOffer shows a late joiner the catch-up (an
// incident.CatchupOffer; enqueued by incident.CatchupOfferHook).
const JobCatchupOffer = "slack.catchup_offer"

// OfferCatchup runs a JobCatchupOffer job: it posts the incident's
// catch-up, as it stands now, to the person who joined late, as an
// ephemeral message in the channel with a line saying why. The offer is
// the catch-up itself rather than a button that fetches it: it costs the
// reader no click and the bot no interaction round trip, and it is only
// ever seen by them.
//
// The job runs at least once (retried on a rate limit or an outage) and
// is enqueued once per person and incident; Slack keeps no record of an
// ephemeral message the bot could look for, so only a kill or a lost
// answer between Slack taking the message and the job finishing can show
// it twice. A refusal that cannot change (they left the channel, it was
// archived or deleted) ends the job.
func (j *Jobs) OfferCatchup(ctx context.Context, job incident.Job) error {
	var p incident.CatchupOffer
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 || p.Channel == "" || p.User == "" {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", JobCatchupOffer, job.Payload)
	}
	log := j.logger().With(zap.String("incident", incident.FormatID(p.Incident)), zap.String("user", p.User))
	// No user: what changed since they joined is nothing yet.
	c, err := j.Service.Catchup(ctx, incident.Ref{Number: p.Incident}, "", time.Time{}, nil)
	if err != nil {
		return err
	}
	if !c.Status.Open() {
		log.Info("not offering the catch-up: the incident is resolved")
		return nil
	}
	intro := fmt.Sprintf(":wave: <@%s>, you joined *%s* %s after it was declared. Here is where it stands (only you see this); `/incident catchup` shows it again with what changed since you joined.",
		EscapeText(p.User), c.ID(), incident.SinceText(p.JoinedAt, c.DeclaredAt))
	r := renderCatchup(c, intro)
	err = j.Client.postEphemeral(ctx, p.Channel, p.User, r)
	switch SlackCode(err) {
	case "":
		if err == nil {
			log.Info("catch-up offered")
		}
		return err
	case "user_not_in_channel", "channel_not_found", "is_archived", "user_not_found":
		log.Info("cannot offer the catch-up", zap.String("reason", SlackCode(err)))
		return nil
	}
	return err
}

// postEphemeral shows a rendered message to one user in a channel.
func (c *Client) postEphemeral(ctx context.Context, channelID, user string, r Rendered) error {
	return c.call(ctx, "chat.postEphemeral", channelID, func(ctx context.Context) error {
		_, err := c.api.PostEphemeralContext(ctx, channelID, user, slackapi.MsgOptionText(cut(r.Text, MaxText), false), slackapi.MsgOptionBlocks(r.Blocks...))
		return err
	})
}
