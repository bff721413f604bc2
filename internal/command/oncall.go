package command

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Bounds of the on-call reply: Slack shows at most 50 blocks and 3000
// characters in one section (docs.slack.dev, Block Kit reference).
const (
	maxOnCallPaths   = 20
	maxOnCallSection = 2800
)

// onCall answers `oncall [schedule or escalation policy]`.
func (d *Dispatcher) onCall(ctx context.Context, query string) (Reply, error) {
	if d.cfg.OnCall == nil {
		return Reply{}, incident.Errorf(incident.EINVALID, "Who is on call comes from PagerDuty's REST API: set PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL (a read-only key is enough for `oncall`).")
	}
	oc, err := d.cfg.OnCall.OnCall(ctx, query)
	if err != nil {
		return Reply{}, err
	}
	sections := d.OnCallSections(oc)
	return Reply{Text: strings.Join(sections, "\n"), Sections: sections}, nil
}

// OnCallSections renders who is on call: a heading, one part per
// escalation path (its levels, each rotation's person now and next), and a
// closing line saying when the on-call system was asked.
func (d *Dispatcher) OnCallSections(oc *incident.OnCall) []string {
	zone := d.cfg.Location.String()
	at := oc.At // oc is shared with other askers: not changed here
	if at.IsZero() {
		at = d.cfg.Service.Clock().Now()
	}
	scope := "on every escalation policy"
	if oc.Asked != "" {
		scope = "for " + oc.Asked
	}
	if len(oc.Paths) == 0 {
		msg := fmt.Sprintf("%s lists nobody on call %s, now or in the next %s.", oc.System, scope, templates.Duration(oc.Ahead))
		if strings.HasPrefix(oc.Asked, "the schedule") {
			msg += " A schedule is on call only through an escalation policy that uses it."
		}
		return []string{msg}
	}
	out := []string{fmt.Sprintf("*Who is on call* %s in %s (times in %s):", scope, oc.System, zone)}
	for i, p := range oc.Paths {
		if i == maxOnCallPaths {
			out = append(out, fmt.Sprintf("…and %d more escalation policies: name one, `oncall <schedule or escalation policy>`.", len(oc.Paths)-i))
			break
		}
		out = append(out, d.onCallPath(p, at))
	}
	foot := fmt.Sprintf("%s, as of %s (answers are reused for up to a minute).", oc.System, d.onCallTime(at, at))
	if oc.Truncated {
		foot = fmt.Sprintf("%s listed more on-calls than the bot reads at once; some may be missing: name a schedule or escalation policy.\n", oc.System) + foot
	}
	return append(out, foot)
}

// onCallPath renders one escalation path, at most maxOnCallSection
// characters (whole lines).
func (d *Dispatcher) onCallPath(p incident.OnCallPath, now time.Time) string {
	var b strings.Builder
	b.WriteString("*" + p.Name + "*")
	for _, l := range p.Levels {
		for _, r := range l.Rotations {
			line := d.onCallRotation(l.Level, r, now)
			if b.Len()+len(line) > maxOnCallSection {
				b.WriteString("\n…more levels: `oncall " + p.ID + "` shows this policy alone.")
				return b.String()
			}
			b.WriteString("\n" + line)
		}
	}
	return b.String()
}

// onCallRotation renders one line: "Level 1 · Primary: <@U1> until Wed 2
// Dec 17:00 · next: Bob, Wed 2 Dec 17:00 → Wed 9 Dec 17:00".
func (d *Dispatcher) onCallRotation(level int, r incident.OnCallRotation, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "• Level %d", level)
	if r.Name != "" {
		fmt.Fprintf(&b, " · %s", r.Name)
	}
	b.WriteString(": ")
	if len(r.Now) == 0 {
		b.WriteString("nobody now")
	}
	for i, s := range r.Now {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Person.Mention())
		switch {
		case r.Name == "" && s.End.IsZero():
			b.WriteString(" (always on call)")
		case !s.End.IsZero():
			b.WriteString(" until " + d.onCallTime(s.End, now))
		}
	}
	if n := r.Next; n != nil {
		fmt.Fprintf(&b, " · next: %s, %s", n.Person.Mention(), d.onCallTime(n.Start, now))
		if !n.End.IsZero() {
			b.WriteString(" → " + d.onCallTime(n.End, now))
		}
	} else if r.Name != "" {
		b.WriteString(" · no next shift known")
	}
	return b.String()
}

// onCallTime formats a shift boundary in the configured zone: the time of
// day, with the day when it is not today.
func (d *Dispatcher) onCallTime(t, now time.Time) string {
	t, now = t.In(d.cfg.Location), now.In(d.cfg.Location)
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	if t.Year() != now.Year() {
		return t.Format("Mon 2 Jan 2006 15:04")
	}
	return t.Format("Mon 2 Jan 15:04")
}
