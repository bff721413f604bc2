package command

import (
	"fmt"
	"strings"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// OverviewText renders a person's overview (what Slack's Home tab shows) as
// text: the open incidents, theirs first, and their open follow-ups.
func (d *Dispatcher) OverviewText(ov incident.Overview, user string) string {
	now := d.cfg.Service.Clock().Now()
	var b strings.Builder
	switch {
	case len(ov.Incidents) == 0:
		b.WriteString("*Open incidents*: none. :tada:")
	case ov.Mine > 0:
		fmt.Fprintf(&b, "*Open incidents*: %d, you hold a role in %d (listed first).", len(ov.Incidents), ov.Mine)
	default:
		fmt.Fprintf(&b, "*Open incidents*: %d.", len(ov.Incidents))
	}
	for _, inc := range ov.Incidents {
		fmt.Fprintf(&b, "\n• %s", d.ListLine(inc, now))
		var roles []string
		for _, r := range incident.Roles {
			if inc.Roles[r] == user {
				roles = append(roles, string(r))
			}
		}
		if len(roles) > 0 {
			fmt.Fprintf(&b, " · you are the %s", strings.Join(roles, " and "))
		}
	}
	if len(ov.Followups) == 0 {
		b.WriteString("\n*Your open follow-ups*: none.")
		return b.String()
	}
	fmt.Fprintf(&b, "\n*Your open follow-ups*: %d.", len(ov.Followups))
	for _, f := range ov.Followups {
		fmt.Fprintf(&b, "\n• *%s* %s", f.Incident.ID(), d.FollowupLine(f.Followup, now))
	}
	return b.String()
}
