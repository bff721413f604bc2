package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Request is one command as a chat front end received it.
type Request struct {
	Text      string
	Actor     incident.Actor
	TeamID    string
	ChannelID string
	// ThreadID is the message the command is about, if any (runbook results
	// go to the invocation's thread when the front end has one).
	ThreadID string
}

// Reply is what the caller sees. Changes to an incident are told in its
// channel by the chat sync; the reply is for the person who asked.
type Reply struct {
	Text     string
	Error    bool               // the command failed; Text says why
	Incident *incident.Incident // the incident the command acted on, if any
	Declared bool               // the command declared Incident
	// NeedsTitle: `declare` without a title. Slack opens the declare form
	// instead of replying.
	NeedsTitle bool
	// Confirm is set when the reply asks the user to confirm a runbook
	// run; the front end renders it (buttons, a prompt).
	Confirm *Confirmation
	// Sections is a long reply in parts (the on-call list, a part per
	// escalation path); Text is them joined. Slack shows each part as a
	// section block.
	Sections []string
	// Catchup is set by `catchup`; front ends render it (Slack as blocks
	// within its limits) and Text holds it in full as light markup.
	Catchup *incident.Catchup
}

// Confirmation asks the requester to confirm a runbook run. Text is Slack
// mrkdwn describing exactly what will run; the front end adds Confirm and
// Cancel controls that carry only RunID.
type Confirmation struct {
	RunID string
	Text  string
}

// Pager is the PagerDuty side of `page` and `escalate`.
type Pager interface {
	Page(ctx context.Context, ref incident.Ref, target, message string, by incident.Actor) (string, error)
	Escalate(ctx context.Context, ref incident.Ref, by incident.Actor) (string, error)
}

// Runbooks is the runbook side of `runbooks` and `run`.
type Runbooks interface {
	List(ctx context.Context, req Request) (string, error)
	Run(ctx context.Context, req Request, args string) (Reply, error)
}

// Postmortems drafts postmortems for `postmortem`.
type Postmortems interface {
	Draft(ctx context.Context, ref incident.Ref, by incident.Actor) (string, error)
}

// Config configures a Dispatcher.
type Config struct {
	Service  *incident.Service
	Location *time.Location // times in replies; default UTC
	Options  Options
	// Logger records every command (verb, user, channel, incident,
	// outcome; never the text, which may hold runbook parameters).
	Logger *zap.Logger
	// PagerStatusSync: acknowledging, mitigating and resolving here are
	// mirrored to the linked pager incident. When false, replies about a
	// linked incident say that the pager was not changed.
	PagerStatusSync bool
	// Optional features; nil means not configured, and the commands say so.
	Pager       Pager
	Runbooks    Runbooks
	Postmortems Postmortems
	OnCall      incident.OnCallDirectory
	Handovers   Handovers
}

// Dispatcher runs commands.
type Dispatcher struct {
	cfg Config
}

// NewDispatcher returns a dispatcher.
func NewDispatcher(cfg Config) *Dispatcher {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Logger = cfg.Logger.Named("command")
	return &Dispatcher{cfg: cfg}
}

// Handle parses and runs one command and returns the reply. It never
// returns an internal error's text to the user.
func (d *Dispatcher) Handle(ctx context.Context, req Request) Reply {
	cmd, err := Parse(req.Text, d.cfg.Options)
	if err != nil {
		d.cfg.Logger.Info("command rejected", zap.String("user", req.Actor.ID), zap.String("channel", req.ChannelID), zap.String("reason", "parse"))
		return Reply{Text: err.Error(), Error: true}
	}
	return d.Run(ctx, req, cmd)
}

// Run runs a parsed command.
func (d *Dispatcher) Run(ctx context.Context, req Request, cmd Command) Reply {
	reply, err := d.run(ctx, req, cmd)
	fields := []zap.Field{zap.String("command", string(cmd.Verb)), zap.String("user", req.Actor.ID), zap.String("channel", req.ChannelID)}
	if reply.Incident != nil {
		fields = append(fields, zap.String("incident", reply.Incident.ID()))
	} else if cmd.Incident != 0 {
		fields = append(fields, zap.String("incident", incident.FormatID(cmd.Incident)))
	}
	switch code := incident.ErrorCode(err); code {
	case "":
		d.cfg.Logger.Info("command", fields...)
	case incident.EINTERNAL:
		d.cfg.Logger.Error("command failed", append(fields, zap.Error(err))...)
	default:
		d.cfg.Logger.Info("command refused", append(fields, zap.String("code", code), zap.String("reason", incident.ErrorMessage(err)))...)
	}
	if err != nil {
		msg := incident.ErrorMessage(err)
		if u := Usage(cmd.Verb); u != "" && incident.ErrorCode(err) == incident.EINVALID {
			msg += fmt.Sprintf("\nUsage: `%s`", u)
		}
		return Reply{Text: msg, Error: true}
	}
	return reply
}

func (d *Dispatcher) run(ctx context.Context, req Request, cmd Command) (Reply, error) {
	svc := d.cfg.Service
	ref := incident.Ref{Number: cmd.Incident, ChannelID: req.ChannelID}
	by := req.Actor
	changed := func(inc *incident.Incident, err error, format string) (Reply, error) {
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: fmt.Sprintf(format, "*"+inc.ID()+"*") + d.pagerUnchanged(inc, cmd.Verb), Incident: inc}, nil
	}
	switch cmd.Verb {
	case VerbHelp:
		if cmd.Text != "" {
			return CommandHelp(cmd.Text)
		}
		return Reply{Text: HelpText()}, nil
	case VerbDeclare:
		if strings.TrimSpace(cmd.Text) == "" {
			return Reply{NeedsTitle: true, Text: "An incident needs a title."}, nil
		}
		inc, err := svc.Declare(ctx, incident.Declaration{Title: cmd.Text, Severity: cmd.Severity, By: by})
		if err != nil {
			return Reply{}, err
		}
		text := fmt.Sprintf("Declared *%s* (%s): %s\nYou are its commander; its channel `#%s` is being set up and you will be invited.", inc.ID(), inc.Severity, inc.Title, incident.ChannelName(inc.Number, inc.Title, 0))
		if cmd.Note != "" {
			text += "\n" + cmd.Note
		}
		return Reply{
			Text:     text,
			Incident: inc, Declared: true,
		}, nil
	case VerbList:
		return d.list(ctx, cmd.Text, by.ID)
	case VerbStatus:
		inc, err := svc.Get(ctx, ref)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: d.StatusText(inc), Incident: inc}, nil
	case VerbTimeline:
		inc, events, err := svc.Timeline(ctx, ref)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: d.TimelineText(inc, events, 50), Incident: inc}, nil
	case VerbUpdate:
		inc, err := svc.PostStatusUpdate(ctx, ref, cmd.Text, by)
		return changed(inc, err, "Status update posted to %s.")
	case VerbAck:
		inc, err := svc.Acknowledge(ctx, ref, by)
		return changed(inc, err, "%s acknowledged.")
	case VerbMitigate:
		inc, err := svc.Mitigate(ctx, ref, by, cmd.Text)
		return changed(inc, err, "%s marked mitigated.")
	case VerbResolve:
		inc, err := svc.Resolve(ctx, ref, by, cmd.Text)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: fmt.Sprintf("*%s* resolved. Draft the postmortem with `postmortem` when you are ready.", inc.ID()) + d.pagerUnchanged(inc, cmd.Verb), Incident: inc}, nil
	case VerbReopen:
		inc, err := svc.Reopen(ctx, ref, by, cmd.Text)
		return changed(inc, err, "%s reopened.")
	case VerbSev:
		inc, err := svc.SetSeverity(ctx, ref, cmd.Severity, by)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: fmt.Sprintf("*%s* is now %s.", inc.ID(), inc.Severity), Incident: inc}, nil
	case VerbRole:
		inc, err := svc.AssignRole(ctx, ref, cmd.Role, cmd.User, by)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: fmt.Sprintf("<@%s> is now the %s of *%s*.", cmd.User, cmd.Role, inc.ID()), Incident: inc}, nil
	case VerbLead:
		inc, err := svc.AssignRole(ctx, ref, incident.RoleCommander, by.ID, by)
		return changed(inc, err, "You are now the commander of %s.")
	case VerbNote:
		inc, err := svc.AddNote(ctx, ref, cmd.Text, by)
		return changed(inc, err, "Note added to %s.")
	case VerbFollowup:
		if cmd.FollowupOp != "" {
			return d.changeFollowup(ctx, ref, cmd, by)
		}
		inc, err := svc.AddFollowup(ctx, ref, cmd.Text, by)
		if err != nil {
			return Reply{}, err
		}
		n := len(inc.Followups)
		return Reply{Text: fmt.Sprintf("Follow-up #%d recorded on *%s*. Give it an owner with `followup assign %d @someone` and a date with `followup due %d <date>`.", n, inc.ID(), n, n), Incident: inc}, nil
	case VerbTitle, VerbSummary, VerbImpact, VerbService, VerbStarted:
		return d.changeFact(ctx, ref, cmd, by)
	case VerbFollowups:
		inc, err := svc.Get(ctx, ref)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Text: d.FollowupsText(inc), Incident: inc}, nil
	case VerbPage:
		if d.cfg.Pager == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "Paging needs PagerDuty: set PAGERDUTY_API_TOKEN (with PAGERDUTY_FROM_EMAIL) or PAGERDUTY_ROUTING_KEY.")
		}
		target, message := splitWord(cmd.Text)
		text, err := d.cfg.Pager.Page(ctx, ref, target, message, by)
		return Reply{Text: text}, err
	case VerbEscalate:
		if d.cfg.Pager == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "Escalating needs PagerDuty: set PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL.")
		}
		text, err := d.cfg.Pager.Escalate(ctx, ref, by)
		return Reply{Text: text}, err
	case VerbRunbooks:
		if d.cfg.Runbooks == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "No runbooks are loaded (see BOT_RUNBOOKS_DIR).")
		}
		text, err := d.cfg.Runbooks.List(ctx, req)
		return Reply{Text: text}, err
	case VerbRun:
		if d.cfg.Runbooks == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "No runbooks are loaded (see BOT_RUNBOOKS_DIR).")
		}
		return d.cfg.Runbooks.Run(ctx, req, cmd.Text)
	case VerbCatchup:
		return d.catchup(ctx, ref, cmd.Text, by)
	case VerbPostmortem:
		if d.cfg.Postmortems == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "Postmortem drafts are not available in this setup.")
		}
		text, err := d.cfg.Postmortems.Draft(ctx, ref, by)
		return Reply{Text: text}, err
	case VerbOnCall:
		return d.onCall(ctx, cmd.Text)
	case VerbHandover:
		if d.cfg.Handovers == nil {
			return Reply{}, incident.Errorf(incident.EINVALID, "The on-call handover is not available in this setup.")
		}
		text, err := d.cfg.Handovers.Handover(ctx, req)
		return Reply{Text: text}, err
	}
	return Reply{}, errors.New("unhandled verb " + string(cmd.Verb))
}

// catchup builds the catch-up of ref for the requester, from since when
// given (see incident.ParseSince).
func (d *Dispatcher) catchup(ctx context.Context, ref incident.Ref, since string, by incident.Actor) (Reply, error) {
	var from time.Time
	if since != "" {
		t, err := incident.ParseSince(since, d.cfg.Service.Clock().Now(), d.cfg.Location)
		if err != nil {
			return Reply{}, err
		}
		from = t
	}
	c, err := d.cfg.Service.Catchup(ctx, ref, by.ID, from, d.cfg.Location)
	if err != nil {
		return Reply{}, err
	}
	return Reply{Text: c.Text(), Catchup: &c}, nil
}

// pagerUnchanged is the reply's note when a status change of a linked
// incident was not sent to the pager, so nobody believes the page stopped.
func (d *Dispatcher) pagerUnchanged(inc *incident.Incident, verb Verb) string {
	if d.cfg.PagerStatusSync || !inc.Pager.Linked() {
		return ""
	}
	switch verb {
	case VerbAck, VerbMitigate, VerbResolve:
		return fmt.Sprintf("\n:warning: %s was *not* changed: the bot cannot change PagerDuty (no PAGERDUTY_API_TOKEN or PAGERDUTY_ROUTING_KEY, or PAGERDUTY_SYNC_STATUS=false). Do the same in PagerDuty, or it keeps paging.", inc.Pager.Label())
	}
	return ""
}

func (d *Dispatcher) changeFact(ctx context.Context, ref incident.Ref, cmd Command, by incident.Actor) (Reply, error) {
	c := incident.FactChange{Fact: cmd.Fact, Text: cmd.Text}
	if c.Fact == incident.FactStarted {
		t, err := incident.ParseTime(cmd.Text, d.cfg.Service.Clock().Now(), d.cfg.Location)
		if err != nil {
			return Reply{}, err
		}
		c.Started = t
	}
	inc, err := d.cfg.Service.ChangeFact(ctx, ref, c, by)
	if err != nil {
		return Reply{}, err
	}
	var text string
	switch c.Fact {
	case incident.FactTitle:
		text = fmt.Sprintf("*%s* is now titled: %s", inc.ID(), inc.Title)
	case incident.FactSummary, incident.FactImpact:
		text = fmt.Sprintf("The %s of *%s* is recorded.", c.Fact, inc.ID())
	case incident.FactServiceAdd, incident.FactServiceRemove:
		text = fmt.Sprintf("*%s* services: %s.", inc.ID(), strings.Join(inc.Services, ", "))
		if len(inc.Services) == 0 {
			text = fmt.Sprintf("*%s* lists no services now.", inc.ID())
		}
	case incident.FactStarted:
		text = fmt.Sprintf("*%s*: the problem started %s, %s before it was detected. Response times are measured from then.",
			inc.ID(), d.When(inc.StartedAt), templates.Duration(inc.DetectedAt.Sub(inc.StartedAt)))
	}
	return Reply{Text: text, Incident: inc}, nil
}

func (d *Dispatcher) changeFollowup(ctx context.Context, ref incident.Ref, cmd Command, by incident.Actor) (Reply, error) {
	c := incident.FollowupChange{ID: cmd.Followup, Op: cmd.FollowupOp, Owner: cmd.User}
	if c.Op == incident.FollowupDue {
		due, err := incident.ParseDueDate(cmd.Text, d.cfg.Service.Clock().Now(), d.cfg.Location)
		if err != nil {
			return Reply{}, err
		}
		c.Due = due
	}
	inc, err := d.cfg.Service.ChangeFollowup(ctx, ref, c, by)
	if err != nil {
		return Reply{}, err
	}
	f, _ := inc.Followup(c.ID)
	what := incident.FollowupChangeText(map[string]string{"change": string(c.Op), "owner": c.Owner, "due": c.Due}, func(id string) string { return "<@" + id + ">" })
	return Reply{Text: fmt.Sprintf("Follow-up #%d of *%s* %s: %s", f.ID, inc.ID(), what, f.Text), Incident: inc}, nil
}

// FollowupsText lists an incident's follow-ups, numbered as the follow-up
// commands take them.
func (d *Dispatcher) FollowupsText(inc *incident.Incident) string {
	if len(inc.Followups) == 0 {
		return fmt.Sprintf("*%s* has no follow-ups yet. Add one with `followup <text>`.", inc.ID())
	}
	open := 0
	for _, f := range inc.Followups {
		if !f.Done {
			open++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s follow-ups* (%d open of %d):", inc.ID(), open, len(inc.Followups))
	now := d.cfg.Service.Clock().Now()
	for _, f := range inc.Followups {
		fmt.Fprintf(&b, "\n%s", d.FollowupLine(f, now))
	}
	return b.String()
}

// FollowupLine renders one follow-up: "#3 [open] text · owner <@U1> · due
// 2026-12-15 (overdue)".
func (d *Dispatcher) FollowupLine(f incident.Followup, now time.Time) string {
	state := "open"
	if f.Done {
		state = "done"
	}
	owner, due := "none", cmp.Or(f.Due, "none")
	if f.Owner != "" {
		owner = "<@" + f.Owner + ">"
	}
	s := fmt.Sprintf("#%d [%s] %s · owner %s · due %s", f.ID, state, f.Text, owner, due)
	if f.Overdue(now, d.cfg.Location) {
		s += " *(overdue)*"
	}
	if f.Done && !f.DoneAt.IsZero() {
		s += " · done " + d.When(f.DoneAt)
		if f.DoneBy.ID != "" {
			s += " by " + f.DoneBy.Mention()
		}
	}
	return s
}

func (d *Dispatcher) list(ctx context.Context, args, user string) (Reply, error) {
	now := d.cfg.Service.Clock().Now()
	q, err := incident.ParseListQuery(strings.Fields(args), now, d.cfg.Location)
	if err != nil {
		return Reply{}, err
	}
	all, err := d.cfg.Service.List(ctx, q.Filter())
	if err != nil {
		return Reply{}, err
	}
	var incs []*incident.Incident
	for _, inc := range all {
		if q.Match(inc, user) {
			incs = append(incs, inc)
		}
	}
	if len(incs) == 0 {
		if args == "" {
			return Reply{Text: "No open incidents. :tada:"}, nil
		}
		return Reply{Text: q.String() + ": none."}, nil
	}
	page, pages := q.PageOf(incs)
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* (%d):", q, len(incs))
	for _, inc := range page {
		fmt.Fprintf(&b, "\n• %s", d.ListLine(inc, now))
	}
	if len(page) == 0 {
		fmt.Fprintf(&b, "\nThere is no page %d.", q.Page)
	}
	if pages > 1 {
		fmt.Fprintf(&b, "\nPage %d of %d", q.Page, pages)
		if q.Page < pages {
			fmt.Fprintf(&b, ": `list %s` for the next", strings.TrimSpace(pageRE.ReplaceAllString(args, "")+" page="+strconv.Itoa(q.Page+1)))
		}
		b.WriteString(".")
	}
	return Reply{Text: b.String()}, nil
}

var pageRE = regexp.MustCompile(`(?i)\s*\bpage=\S*`)

// ListLine renders one incident as a line of a list.
func (d *Dispatcher) ListLine(inc *incident.Incident, now time.Time) string {
	s := fmt.Sprintf("*%s* %s %s: %s", inc.ID(), inc.Severity, inc.Status, inc.Title)
	if inc.Chat.ChannelID != "" {
		s += fmt.Sprintf(" <#%s>", inc.Chat.ChannelID)
	}
	if c := inc.Commander(); c != "" {
		s += fmt.Sprintf(", IC <@%s>", c)
	}
	if inc.Status.Open() {
		s += ", open " + incident.SinceText(now, inc.DetectedAt)
	}
	return s
}

// StatusText renders an incident's status card as text.
func (d *Dispatcher) StatusText(inc *incident.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* %s, %s: %s", inc.ID(), inc.Severity, inc.Status, inc.Title)
	if inc.Description != "" {
		fmt.Fprintf(&b, "\n%s", inc.Description)
	}
	if inc.Impact != "" {
		fmt.Fprintf(&b, "\nImpact: %s", inc.Impact)
	}
	if len(inc.Services) > 0 {
		fmt.Fprintf(&b, "\nServices: %s", strings.Join(inc.Services, ", "))
	}
	b.WriteString("\nRoles:")
	for _, r := range incident.Roles {
		holder := "none"
		if u := inc.Roles[r]; u != "" {
			holder = "<@" + u + ">"
		}
		fmt.Fprintf(&b, " %s %s;", r, holder)
	}
	if !inc.StartedAt.IsZero() {
		fmt.Fprintf(&b, "\nStarted %s", d.When(inc.StartedAt))
	}
	fmt.Fprintf(&b, "\nDetected %s, declared %s by %s", d.When(inc.DetectedAt), d.When(inc.DeclaredAt), inc.DeclaredBy.Mention())
	if !inc.AcknowledgedAt.IsZero() {
		fmt.Fprintf(&b, "\nAcknowledged %s", d.When(inc.AcknowledgedAt))
	}
	if !inc.MitigatedAt.IsZero() {
		fmt.Fprintf(&b, "\nMitigated %s", d.When(inc.MitigatedAt))
	}
	if !inc.ResolvedAt.IsZero() {
		fmt.Fprintf(&b, "\nResolved %s", d.When(inc.ResolvedAt))
	}
	var times []string
	for _, m := range []struct {
		name string
		f    func() (time.Duration, bool)
	}{{"detect", inc.TimeToDetect}, {"acknowledge", inc.TimeToAcknowledge}, {"mitigate", inc.TimeToMitigate}, {"resolve", inc.TimeToResolve}} {
		if v, ok := m.f(); ok {
			times = append(times, fmt.Sprintf("to %s %s", m.name, templates.Duration(v)))
		}
	}
	if len(times) > 0 {
		from := "detection"
		if !inc.StartedAt.IsZero() {
			from = "the start"
		}
		fmt.Fprintf(&b, "\nTime %s (from %s)", strings.Join(times, ", "), from)
	}
	if !inc.LastUpdateAt.IsZero() {
		fmt.Fprintf(&b, "\nLast status update %s", d.When(inc.LastUpdateAt))
	}
	if inc.Chat.ChannelID != "" {
		fmt.Fprintf(&b, "\nChannel: <#%s>", inc.Chat.ChannelID)
	}
	if inc.Pager.URL != "" {
		fmt.Fprintf(&b, "\nPagerDuty: <%s|%s>", inc.Pager.URL, inc.Pager.IncidentID)
	}
	if n := len(inc.Followups); n > 0 {
		fmt.Fprintf(&b, "\nFollow-ups: %d", n)
	}
	return b.String()
}

// TimelineText renders the last max events of a timeline.
func (d *Dispatcher) TimelineText(inc *incident.Incident, events []incident.Event, max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s timeline* (%s, times in %s)", inc.ID(), inc.Title, d.cfg.Location)
	if len(events) > max {
		fmt.Fprintf(&b, "\n…%d earlier events not shown; the postmortem draft has all of them.", len(events)-max)
		events = events[len(events)-max:]
	}
	for _, ev := range events {
		fmt.Fprintf(&b, "\n`%s` %s", d.clock(ev.At), ev.Describe())
	}
	return b.String()
}

// When formats a time in the configured zone, with the zone, so a reader
// elsewhere knows what it means.
func (d *Dispatcher) When(t time.Time) string {
	return t.In(d.cfg.Location).Format("2006-01-02 15:04:05 MST")
}

// clock formats a time of day for timeline lines, whose heading names the
// zone.
func (d *Dispatcher) clock(t time.Time) string {
	return t.In(d.cfg.Location).Format("2006-01-02 15:04:05")
}

// CommandHelp explains one command: its usage, what it does, its other
// names, and an example where one helps.
func CommandHelp(name string) (Reply, error) {
	word, _ := splitWord(strings.TrimPrefix(strings.TrimSpace(name), "/incident "))
	s, ok := byName[strings.ToLower(word)]
	if !ok {
		msg := fmt.Sprintf("There is no command `%s`.", clip(word, 40))
		if near := closest(strings.ToLower(word)); near != "" {
			msg += fmt.Sprintf(" Did you mean `%s`?", near)
		}
		return Reply{}, incident.Errorf(incident.ENOTFOUND, "%s `help` lists them all.", msg)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`: %s", s.usage, s.summary)
	if s.incident {
		b.WriteString("\nIn an incident's channel the incident is implied; elsewhere name it first, e.g. `" + string(s.verb) + " INC-7`.")
	}
	if len(s.aliases) > 0 {
		fmt.Fprintf(&b, "\nAlso: `%s`.", strings.Join(s.aliases, "`, `"))
	}
	if ex := examples[s.verb]; ex != "" {
		fmt.Fprintf(&b, "\nExamples: %s", ex)
	}
	return Reply{Text: b.String()}, nil
}

// examples show commands whose arguments take some explaining.
var examples = map[Verb]string{
	VerbDeclare:  "`declare sev1 Checkout is down`, `declare P2 Search is slow`",
	VerbSev:      "`sev 1`, `sev SEV-2`, `sev P3`, `sev critical`",
	VerbRole:     "`role comms @alice`",
	VerbFollowup: "`followup add a canary stage`, `followup done 2`, `followup assign 2 @bob`, `followup due 2 friday`",
	VerbService:  "`service add checkout-api`, `service remove search`",
	VerbStarted:  "`started 25m ago`, `started 14:05`, `started 2026-12-01 14:05 Europe/Berlin`",
	VerbRun:      "`run check-dns host=example.com --dry-run`",
	VerbPage:     "`page payments-api please join`",
	VerbOnCall:   "`oncall`, `oncall payments`, `oncall PI7DH85`",
	VerbCatchup:  "`catchup`, `catchup 30m`, `catchup 2h`, `catchup 14:05`",
}

// HelpText lists the commands.
func HelpText() string {
	var b strings.Builder
	b.WriteString("*`/incident` commands.* In an incident's channel the incident is implied; anywhere else name it first, e.g. `resolve INC-7 rolled back`.")
	for _, s := range specs {
		fmt.Fprintf(&b, "\n• `%s`: %s", s.usage, s.summary)
	}
	return b.String()
}
