package runbook

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Card is the ephemeral confirmation card shown to the requester (§4.5).
// Its fields are raw; Text renders them escaped for Slack. Buttons must
// carry only RunID.
type Card struct {
	RunID         string
	RunbookID     string
	Title         string
	Description   string
	Risk          Risk
	Params        []string      // "name=value", secrets as •••
	Steps         []PlannedStep // rendered argv of every step, secrets as •••
	NeedsApproval bool
	// Approvers says who can approve (Slack mrkdwn from the runbook's
	// configuration) when NeedsApproval.
	Approvers string
	ExpiresAt time.Time
}

// Text renders the card as inert Slack mrkdwn.
func (c *Card) Text() string {
	var b strings.Builder
	b.WriteString("*Confirm: " + EscapeSlack(c.Title) + "* (" + EscapeSlack(c.RunbookID) + ", risk *" + string(c.Risk) + "*)\n")
	if c.Description != "" {
		b.WriteString(EscapeSlack(c.Description) + "\n")
	}
	writeParams(&b, c.Params)
	writePlan(&b, "Will run", c.Steps)
	if c.NeedsApproval {
		b.WriteString("After you confirm, someone else must approve. Can approve: " + c.Approvers + " (not you).\n")
	}
	b.WriteString("Expires at " + c.ExpiresAt.UTC().Format("15:04:05 MST") + " (run " + c.RunID + ").")
	return b.String()
}

// ApprovalRequest is the approval message posted in the incident thread.
// Approver IDs come from the runbook file (validated shapes), never from
// user text; Text renders them as mentions.
type ApprovalRequest struct {
	RunID          string
	RunbookID      string
	Title          string
	Risk           Risk
	Requester      Actor
	ChannelID      string
	IncidentID     string
	Params         []string
	Steps          []PlannedStep
	ApproverGroups []string // S… IDs
	ApproverUsers  []string // U…/W… IDs
	ApproverRoles  []string // commander, comms, scribe: narrow the users and groups
	Count          int      // distinct approvals needed
	ApprovedBy     []string // user IDs so far
	ExpiresAt      time.Time
}

// Text renders the approval request as Slack mrkdwn. The only mentions are
// the configured approver groups and users and the requester.
func (a *ApprovalRequest) Text() string {
	var b strings.Builder
	b.WriteString("*Approval needed: " + EscapeSlack(a.Title) + "* (" + EscapeSlack(a.RunbookID) + ", risk *" + string(a.Risk) + "*)\n")
	b.WriteString("Requested by <@" + a.Requester.UserID + ">. ")
	b.WriteString("Can approve: " + DescribeMembers(Principals{Users: a.ApproverUsers, UserGroups: a.ApproverGroups, IncidentRoles: a.ApproverRoles}) +
		" (not <@" + a.Requester.UserID + ">). ")
	b.WriteString(strconv.Itoa(len(a.ApprovedBy)) + " of " + strconv.Itoa(a.Count) + " approvals.\n")
	writeParams(&b, a.Params)
	writePlan(&b, "Will run", a.Steps)
	b.WriteString("Expires at " + a.ExpiresAt.UTC().Format("15:04:05 MST") + " (run " + a.RunID + ").")
	return b.String()
}

func writeParams(b *strings.Builder, params []string) {
	if len(params) == 0 {
		return
	}
	b.WriteString("*Parameters:* " + EscapeSlack(strings.Join(params, ", ")) + "\n")
}

func writePlan(b *strings.Builder, heading string, steps []PlannedStep) {
	if len(steps) == 0 {
		return
	}
	lines := make([]string, len(steps))
	for i, s := range steps {
		lines[i] = strconv.Itoa(i+1) + ". " + s.Name + ": " + displayArgv(s.Argv)
	}
	b.WriteString("*" + heading + ":*\n" + codeBlock(strings.Join(lines, "\n")) + "\n")
}

func (e *Engine) card(req *request) *Card {
	return &Card{
		RunID: req.id, RunbookID: req.rb.ID, Title: req.rb.Title, Description: req.rb.Description,
		Risk: req.rb.Risk, Params: req.paramDisplay(), Steps: req.plan(req.steps),
		NeedsApproval: req.approval, ExpiresAt: req.deadline,
		Approvers: DescribeMembers(req.rb.Approval.approversOrZero()),
	}
}

// approvalRequest builds the approval message. Callers hold e.mu.
func (e *Engine) approvalRequest(req *request) *ApprovalRequest {
	ap := req.rb.Approval.Approvers
	return &ApprovalRequest{
		RunID: req.id, RunbookID: req.rb.ID, Title: req.rb.Title, Risk: req.rb.Risk,
		Requester: req.caller.actor(), ChannelID: req.channelID, IncidentID: req.incident.ID,
		Params: req.paramDisplay(), Steps: req.plan(req.steps),
		ApproverGroups: ap.UserGroups, ApproverUsers: ap.Users, ApproverRoles: ap.IncidentRoles,
		Count: req.rb.Approval.Count, ApprovedBy: req.approverIDs(), ExpiresAt: req.deadline,
	}
}

// List renders "/incident runbooks" for inv. In an open incident's
// channel it lists the runbooks inv.Caller may run there. Anywhere else it
// says that runbooks run in an open incident's channel and lists every
// enabled runbook (those that can also run here are marked).
func (e *Engine) List(ctx context.Context, inv Invocation) string {
	inc, ok, d := e.auth.incident(ctx, inv.ChannelID)
	if d == nil && ok && inc.Open {
		rbs := e.Runbooks(ctx, inv)
		if len(rbs) == 0 {
			return "There are no runbooks you may run here: each runbook names the users and user groups who may run it. `/incident runbooks` outside an incident lists them all."
		}
		return ListText(rbs)
	}
	var all []*Runbook
	for _, rb := range e.cfg.Registry.List() {
		if rb.Enabled {
			all = append(all, rb)
		}
	}
	if len(all) == 0 {
		return "No runbooks are loaded."
	}
	return "Runbooks run in an open incident's channel: go there and type `/incident run NAME`. These are loaded:\n\n" + ListText(all)
}

// ListText renders runbooks for "/incident runbooks": one entry per
// runbook with its risk, description, whether it can run on this host,
// and its usage. Inert Slack mrkdwn.
func ListText(rbs []*Runbook) string {
	var b strings.Builder
	for i, rb := range rbs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("*" + EscapeSlack(rb.ID) + "*: " + EscapeSlack(rb.Title) + " (risk " + string(rb.Risk) + ")")
		if !rb.Available() {
			b.WriteString(" (unavailable on this host: " + EscapeSlack(rb.Unavailable) + "; --dry-run still works)")
		}
		if rb.Description != "" {
			b.WriteString("\n" + EscapeSlack(rb.Description))
		}
		b.WriteString("\n" + rb.Usage())
	}
	return b.String()
}

func (a *Approval) approversOrZero() Principals {
	if a == nil {
		return Principals{}
	}
	return a.Approvers
}
