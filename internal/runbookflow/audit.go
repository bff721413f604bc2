package runbookflow

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/runbook"
)

// UnknownRunbook is the metric label of requests for a runbook that is not
// loaded: whatever name was typed, they share it, so chat cannot create
// metric series.
const UnknownRunbook = "unknown"

// onTimeline are the audit events that get a timeline line: one per
// decision and one per run. The rest (request received, run started, each
// step) are in the log.
var onTimeline = map[runbook.EventKind]bool{
	runbook.EventValidationFailed:  true,
	runbook.EventAuthzDenied:       true,
	runbook.EventConfirmRequested:  true,
	runbook.EventConfirmed:         true,
	runbook.EventApprovalRequested: true,
	runbook.EventApproved:          true,
	runbook.EventDenied:            true,
	runbook.EventExpired:           true,
	runbook.EventCanceled:          true,
	runbook.EventFinished:          true,
}

// audit logs every decision, counts runs and refusals, and records one
// line per decision and per run on the incident's timeline (quietly: the
// result is what the channel sees).
func (f *Flow) audit(ev runbook.Event) {
	fields := []zap.Field{
		zap.String("event", string(ev.Kind)), zap.String("run", ev.RunID), zap.String("runbook", ev.RunbookID),
		zap.String("version", ev.RunbookVersion), zap.String("user", ev.Actor.UserID), zap.String("channel", ev.ChannelID),
		zap.String("incident", ev.IncidentID), zap.Bool("dry_run", ev.DryRun),
	}
	if ev.Status != "" {
		fields = append(fields, zap.String("status", string(ev.Status)))
	}
	if ev.Reason != "" {
		fields = append(fields, zap.String("reason", ev.Reason))
	}
	if len(ev.Argv) > 0 {
		fields = append(fields, zap.Strings("argv", ev.Argv))
	}
	f.log.Info("runbook audit", fields...)

	switch ev.Kind {
	case runbook.EventStarted:
		f.mu.Lock()
		f.active++
		f.mu.Unlock()
	case runbook.EventFinished:
		outcome := string(ev.Status)
		if ev.DryRun {
			outcome = "dry_run"
		}
		f.runs.WithLabelValues(f.metricLabel(ev.RunbookID), outcome).Inc()
	case runbook.EventValidationFailed, runbook.EventAuthzDenied:
		f.runs.WithLabelValues(f.metricLabel(ev.RunbookID), "refused").Inc()
	}
	if !onTimeline[ev.Kind] {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, ok := incident.ParseID(ev.IncidentID)
	if !ok && ev.ChannelID != "" {
		// Decisions taken before the engine looked the incident up (early
		// refusals) belong to the channel's incident.
		if inc, err := f.cfg.Service.Get(ctx, incident.Ref{ChannelID: ev.ChannelID}); err == nil {
			n, ok = inc.Number, true
		}
	}
	if !ok {
		return
	}
	tev := f.timelineEvent(ev)
	if _, err := f.cfg.Service.Record(ctx, incident.Ref{Number: n}, tev); err != nil {
		f.log.Error("recording a runbook decision on the timeline", zap.String("incident", ev.IncidentID), zap.Error(err))
	}
}

// metricLabel is the runbook's id when it is loaded, UnknownRunbook
// otherwise.
func (f *Flow) metricLabel(id string) string {
	if _, ok := f.registry.Lookup(id); ok && id != "" {
		return id
	}
	return UnknownRunbook
}

// timelineEvent is the timeline entry of an audit event: its Text is the
// one line people read; Data carries the same facts for the postmortem.
func (f *Flow) timelineEvent(ev runbook.Event) incident.Event {
	actor := incident.Actor{ID: ev.Actor.UserID, Name: ev.Actor.DisplayName, Source: f.source}
	kind := incident.EventRunbookRequested
	if ev.Kind == runbook.EventFinished {
		kind = incident.EventRunbookRan
	}
	data := map[string]string{"run_id": ev.RunID, "decision": string(ev.Kind), "dry_run": strconv.FormatBool(ev.DryRun)}
	if ev.RunbookID != "" {
		data["runbook"] = ev.RunbookID
	}
	if p := paramText(ev.Params); p != "" {
		data["params"] = p
	}
	if r := reasonLine(ev.Reason); r != "" {
		data["reason"] = plainMentions(r)
	}
	if ev.Status != "" {
		data["outcome"] = string(ev.Status)
	}
	if code, ok := exitCode(ev); ok {
		data["exit_code"] = strconv.Itoa(code)
	}
	if ev.Kind == runbook.EventFinished {
		data["duration_ms"] = strconv.FormatInt(ev.DurationMS, 10)
	}
	tev := incident.Event{
		Kind:  kind,
		At:    ev.Time,
		Actor: actor,
		Text:  Line(ev, actor.Mention()),
		Key:   "runbook:" + ev.RunID + ":" + string(ev.Kind) + ":" + ev.Actor.UserID,
		Data:  data,
		Quiet: true,
	}
	if ev.RunID == "" { // refused before a request existed: no natural key
		tev.Key = ""
	}
	return tev
}

// exitCode is the exit status worth showing: real runs that ran a step
// and exited (a dry run, a signal or a run that never started has none).
func exitCode(ev runbook.Event) (int, bool) {
	if ev.Kind != runbook.EventFinished || ev.DryRun || ev.ExitCode == nil || *ev.ExitCode < 0 {
		return 0, false
	}
	return *ev.ExitCode, true
}

// Line renders one audit event as the single timeline line people read:
// who, what (runbook, redacted parameters, run id), and the outcome with
// its reason, exit code and duration. who is the actor's mention.
func Line(ev runbook.Event, who string) string {
	what := "a runbook"
	if ev.RunbookID != "" {
		what = "`" + runbook.EscapeSlack(ev.RunbookID) + "`"
	}
	if p := paramText(ev.Params); p != "" {
		what += " " + p
	}
	if ev.DryRun {
		what += " (dry run)"
	}
	run := ""
	if ev.RunID != "" {
		run = " (run " + ev.RunID + ")"
	}
	var s string
	switch ev.Kind {
	case runbook.EventValidationFailed, runbook.EventAuthzDenied:
		s = who + " was refused " + what
		if run != "" { // a click on a pending request, or its re-check
			s = who + " was refused on " + what + run
		}
	case runbook.EventConfirmRequested:
		s = who + " requested " + what + run + "; waiting for their confirmation"
	case runbook.EventConfirmed:
		s = who + " confirmed " + what + run
	case runbook.EventApprovalRequested:
		s = who + " asked for approval of " + what + run
	case runbook.EventApproved:
		s = who + " approved " + what + run
	case runbook.EventDenied:
		s = who + " denied " + what + run
	case runbook.EventExpired:
		s = "The request for " + what + run + " expired"
	case runbook.EventCanceled:
		s = "The request for " + what + run + " was canceled"
	case runbook.EventFinished:
		verb := " ran "
		if ev.DryRun {
			verb = " dry-ran "
			what = strings.TrimSuffix(what, " (dry run)")
		}
		s = who + verb + what + run + ": " + string(ev.Status)
		var facts []string
		if code, ok := exitCode(ev); ok {
			facts = append(facts, "exit "+strconv.Itoa(code))
		}
		facts = append(facts, FormatDuration(time.Duration(ev.DurationMS)*time.Millisecond))
		if len(ev.Approvers) > 0 {
			var by []string
			for _, a := range ev.Approvers {
				by = append(by, "<@"+a+">")
			}
			facts = append(facts, "approved by "+strings.Join(by, ", "))
		}
		s += " (" + strings.Join(facts, ", ") + ")"
	default:
		s = who + ": " + string(ev.Kind) + " " + what + run
	}
	if r := reasonLine(ev.Reason); r != "" && (ev.Kind != runbook.EventFinished || ev.Status != runbook.StatusSucceeded) {
		s += ": " + r
	}
	return s
}

// paramText renders audited parameters as name=`value` (secrets are already
// masked by the engine), each value in a code span so mrkdwn shows * _ ~ as
// typed.
func paramText(ps []runbook.AuditParam) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = runbook.EscapeSlack(p.Name) + "=" + runbook.InlineCode(p.Label)
	}
	return strings.Join(parts, " ")
}

// reasonLine folds a (multi-line, Slack-safe) refusal into one line: the
// bullets are kept, joined with "; ", and the closing "Nothing was run."
// and the runbook's usage are dropped (the line says it was refused).
func reasonLine(reason string) string {
	reason, _, _ = strings.Cut(reason, "\nUsage: ")
	var head, rest []string
	var bullets []string
	for _, line := range strings.Split(reason, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", line == "Nothing was run.":
		case strings.HasPrefix(line, "• "):
			bullets = append(bullets, strings.TrimPrefix(line, "• "))
		case len(bullets) == 0 && len(rest) == 0:
			head = append(head, line)
		default:
			rest = append(rest, line)
		}
	}
	s := strings.Join(head, " ")
	if len(bullets) > 0 {
		s = strings.TrimSuffix(s, ":") + ": " + strings.Join(bullets, "; ")
	}
	if len(rest) > 0 {
		s += ". " + strings.Join(rest, " ")
	}
	for _, tail := range []string{" Nothing was run; request it again.", " Nothing was run."} {
		s = strings.TrimSuffix(s, tail)
	}
	return strings.TrimSuffix(strings.TrimSpace(s), ".")
}

var mention = regexp.MustCompile(`<(?:@|!subteam\^)([A-Za-z0-9._-]+)(?:\|[^>]*)?>`)

// plainMentions writes Slack mentions as @id, for data read outside Slack
// (the postmortem draft).
func plainMentions(s string) string { return mention.ReplaceAllString(s, "@$1") }

// FormatDuration shows a run's duration: milliseconds under a second,
// tenths of a second under a minute, then minutes and seconds.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return d.Round(time.Second).String()
}
