package command

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/incidentbot/incident-bot/templates"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Handovers posts the on-call handover for `handover`: the summary of the
// current shift, in the channel the command came from.
type Handovers interface {
	Handover(ctx context.Context, req Request) (string, error)
}

// Limits of the handover's text. Slack takes 40,000 characters in a
// message but shows long ones folded, and a handover is read on a phone:
// each section lists its first MaxHandoverItems and says how many more
// there are, and the whole text stops at MaxHandoverText with a pointer to
// where the rest is.
const (
	MaxHandoverItems = 15
	MaxHandoverText  = 12000
)

// HandoverText renders a handover as chat text (the markup of the package
// doc of incident: *bold*, <@user>, <#channel>), with times in loc. Text
// people wrote (titles, follow-ups) is placed as it is: each front end
// escapes it for its medium (the Slack adapter neutralises broadcasts).
func HandoverText(h *incident.Handover, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format("Mon 02 Jan 15:04") }
	var b strings.Builder
	fmt.Fprintf(&b, "*On-call handover* for the shift %s to %s (%s)", at(h.Shift.From), at(h.Shift.To), loc)
	if h.Generated.Sub(h.Shift.To) > time.Minute {
		fmt.Fprintf(&b, "\nPosted late: the incidents are shown as they were at %s.", at(h.Generated))
	}
	if h.Quiet() {
		b.WriteString("\nA quiet shift: nothing was opened, resolved, paged or escalated, nothing is open, due or waiting on anyone.")
		return b.String()
	}
	fmt.Fprintf(&b, "\nOpened %d · resolved %d · still open %d · pages and escalations %d · failed runbook runs %d",
		h.Opened, len(h.Resolved), len(h.StillOpen), len(h.Pages), len(h.FailedRuns))

	section(&b, fmt.Sprintf("Still open (%d)", len(h.StillOpen)), h.StillOpen, "`list` shows them all", func(inc *incident.Incident) string {
		s := fmt.Sprintf("*%s* %s %s: %s%s, %s, open %s", inc.ID(), inc.Severity, inc.Status, inc.Title, channel(inc), commander(inc), age(h, inc.DetectedAt))
		return s + isNew(h, inc)
	})
	section(&b, fmt.Sprintf("Resolved during the shift (%d)", len(h.Resolved)), h.Resolved, "`list all` shows them all", func(inc *incident.Incident) string {
		s := fmt.Sprintf("*%s* %s: %s%s, %s, resolved %s", inc.ID(), inc.Severity, inc.Title, channel(inc), commander(inc), at(inc.ResolvedAt))
		if d, ok := inc.TimeToResolve(); ok {
			s += " after " + templates.Duration(d)
		}
		return s + isNew(h, inc)
	})
	event := func(e incident.HandoverEvent) string {
		return fmt.Sprintf("`%s` *%s* %s", e.Event.At.In(loc).Format("Mon 15:04"), e.Incident.ID(), oneLine(e.Event.Describe()))
	}
	section(&b, fmt.Sprintf("Pages and escalations (%d)", len(h.Pages)), h.Pages, "each incident's `timeline` has them all", event)
	section(&b, fmt.Sprintf("Failed runbook runs (%d)", len(h.FailedRuns)), h.FailedRuns, "each incident's `timeline` has them all", event)
	section(&b, fmt.Sprintf("Follow-ups due by %s (%d)", h.DueBy, len(h.Followups)), h.Followups, "`bot followups` lists them all", func(f incident.HandoverFollowup) string {
		owner := "no owner"
		if f.Followup.Owner != "" {
			owner = "owner <@" + f.Followup.Owner + ">"
		}
		s := fmt.Sprintf("*%s* #%d %s · %s · due %s", f.Incident.ID(), f.Followup.ID, oneLine(f.Followup.Text), owner, f.Followup.Due)
		if f.Overdue {
			s += " *(overdue)*"
		}
		return s
	})
	switch h.FollowupsLater {
	case 0:
	case 1:
		b.WriteString("\n1 more open follow-up is due later or has no date.")
	default:
		fmt.Fprintf(&b, "\n%d more open follow-ups are due later or have no date.", h.FollowupsLater)
	}
	section(&b, fmt.Sprintf("Waiting on someone (%d)", len(h.Waiting)), h.Waiting, "`list` shows the open incidents", func(w incident.HandoverWait) string {
		since := age(h, w.Since)
		switch w.Kind {
		case incident.WaitAcknowledgement:
			return fmt.Sprintf("*%s* is not acknowledged (triggered %s ago)", w.Incident.ID(), since)
		case incident.WaitCommander:
			return fmt.Sprintf("*%s* has no commander: `lead %s` takes it", w.Incident.ID(), w.Incident.ID())
		}
		what := "confirmation by <@" + w.RequestedBy + ">"
		if w.Kind == incident.WaitApproval {
			what = "approval (asked by <@" + w.RequestedBy + ">)"
		}
		where := "<#" + w.Channel + ">"
		if w.Incident != nil {
			where = "*" + w.Incident.ID() + "*"
		}
		s := fmt.Sprintf("%s runbook `%s` (run %s) awaits %s for %s", where, w.Runbook, w.RunID, what, since)
		if !w.Until.IsZero() {
			s += ", expires at " + at(w.Until)
		}
		return s
	})
	return trimText(b.String(), MaxHandoverText, "\n…the handover is longer than a message; `bot handover` prints all of it.")
}

// section writes a heading and the first MaxHandoverItems of items, one a
// line, and says how many more there are and where to see them. An empty
// section is left out.
func section[T any](b *strings.Builder, heading string, items []T, more string, line func(T) string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "\n\n*%s*", heading)
	for i, it := range items {
		if i == MaxHandoverItems {
			fmt.Fprintf(b, "\n…and %d more: %s.", len(items)-i, more)
			break
		}
		fmt.Fprintf(b, "\n• %s", line(it))
	}
}

// age is how long before the handover t was, to the minute.
func age(h *incident.Handover, t time.Time) string {
	return templates.Duration(h.Generated.Sub(t).Truncate(time.Minute))
}

func channel(inc *incident.Incident) string {
	if inc.Chat.ChannelID == "" {
		return ""
	}
	return " <#" + inc.Chat.ChannelID + ">"
}

func commander(inc *incident.Incident) string {
	if c := inc.Commander(); c != "" {
		return "IC <@" + c + ">"
	}
	return "no IC"
}

func isNew(h *incident.Handover, inc *incident.Incident) string {
	if h.New[inc.Number] {
		return " (new this shift)"
	}
	return ""
}

// oneLine keeps a multi-line text (a note, a follow-up) on its list line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// trimText cuts s to at most max characters at a line end, followed by
// pointer.
func trimText(s string, max int, pointer string) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-utf8.RuneCountInString(pointer)]
	cut := string(r)
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i]
	}
	return cut + pointer
}
