package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/runbook"
	"github.com/incidentbot/incident-bot/internal/slack"
)

// jobRunbookPost posts a runbook's result (or a note about its request) in
// the incident's channel, durably and in order with the channel's other
// messages.
const jobRunbookPost = "runbook.post"

// shellTeamID is the workspace id of the local shell.
const shellTeamID = "TSHELL"

// runbooks wires the runbook engine to the incident store (authorization
// by incident role, the audit trail on the timeline), to the chat (cards,
// results in the incident's thread) and to the command language. It
// implements command.Runbooks and slack.RunbookActions.
type runbooks struct {
	a        *App
	log      *zap.Logger
	registry *runbook.Registry

	mu     sync.Mutex
	engine *runbook.Engine // nil until the workspace id is known
	active int             // runs started and not finished (the shell waits)
	idle   *sync.Cond

	runs *prometheus.CounterVec
}

var (
	_ command.Runbooks     = (*runbooks)(nil)
	_ slack.RunbookActions = (*runbooks)(nil)
)

func (a *App) initRunbooks() error {
	rb := &runbooks{a: a, log: a.log.Named("runbooks")}
	rb.idle = sync.NewCond(&rb.mu)
	rb.registry = runbook.NewRegistry(a.cfg.RunbooksDir, runbook.LoadOptions{}, rb.log)
	report, err := rb.registry.Reload()
	if err != nil {
		a.log.Warn("runbooks not loaded", zap.String("dir", a.cfg.RunbooksDir), zap.Error(err))
	} else {
		rb.logReport(report)
	}
	rb.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "incidentbot_runbook_runs_total",
		Help: "Runbook runs by runbook and outcome (succeeded, failed, timed_out, canceled, refused, dry_run).",
	}, []string{"runbook", "outcome"})
	a.registry.MustRegister(rb.runs)
	a.runner.Handle(jobRunbookPost, rb.handlePost)

	switch {
	case a.isShell():
		if err := rb.start(shellTeamID); err != nil {
			return err
		}
	case a.slackClient() != nil:
		// The engine denies callers from other workspaces, so it needs this
		// workspace's id: ask Slack now, and keep asking in the background
		// if Slack cannot be reached at start-up.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, _, err := a.slackClient().AuthTest(ctx)
		cancel()
		if err == nil {
			if err := rb.start(id.TeamID); err != nil {
				return err
			}
		} else {
			rb.log.Warn("runbooks wait for Slack: cannot learn the workspace id yet", zap.Error(err))
			a.schedulers = append(a.schedulers, rb.startWhenSlackAnswers)
		}
	default:
		// Without a chat there is nobody to run runbooks; the dispatcher
		// still lists them.
	}
	a.schedulers = append(a.schedulers, rb.reloadOnSIGHUP)
	a.closers = append(a.closers, rb.close)
	a.dispCfg.Runbooks = rb
	return nil
}

func (rb *runbooks) logReport(r *runbook.LoadReport) {
	for _, p := range r.Errors {
		rb.log.Error("runbook excluded", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	warn := rb.log.Warn
	if rb.a.isShell() {
		warn = rb.log.Info // `/incident runbooks` says what is unavailable
	}
	for _, p := range r.Warnings {
		warn("runbook warning", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	rb.log.Info("runbooks loaded", zap.String("dir", r.Dir), zap.Int("valid", len(r.Runbooks)), zap.Int("excluded", len(r.Rejected)))
}

func (rb *runbooks) start(teamID string) error {
	a := rb.a
	cfg := runbook.Config{
		Registry:   rb.registry,
		TeamID:     teamID,
		Incidents:  runbookIncidents{svc: a.svc},
		Notifier:   rb,
		Audit:      rb.audit,
		Logger:     rb.log,
		Clock:      a.clock,
		DisableAll: a.cfg.Runbooks.Disabled,
		LocalUsers: a.isShell(),
	}
	if c := a.slackClient(); c != nil {
		cfg.GroupMembers = c.UserGroupMembers
	}
	if d := a.cfg.Runbooks.SecretsDir; d != "" {
		cfg.Secrets = runbook.FileSecrets{Dir: d}
	}
	engine, err := runbook.NewEngine(cfg)
	if err != nil {
		return err
	}
	rb.mu.Lock()
	rb.engine = engine
	rb.mu.Unlock()
	return nil
}

func (rb *runbooks) startWhenSlackAnswers(ctx context.Context) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, _, err := rb.a.slackClient().AuthTest(actx)
		cancel()
		if err != nil {
			rb.log.Warn("runbooks still wait for Slack", zap.Error(err))
			continue
		}
		if err := rb.start(id.TeamID); err != nil {
			return err
		}
		rb.log.Info("runbooks ready", zap.String("team", id.TeamID))
		return nil
	}
}

// reloadOnSIGHUP reloads the runbook files on SIGHUP. Requests already
// validated keep their version and abort before exec if it changed.
func (rb *runbooks) reloadOnSIGHUP(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			report, err := rb.registry.Reload()
			if err != nil {
				rb.log.Error("runbook reload failed; keeping the loaded set", zap.Error(err))
				continue
			}
			rb.log.Info("runbooks reloaded on SIGHUP")
			rb.logReport(report)
		}
	}
}

func (rb *runbooks) close(ctx context.Context) error {
	e := rb.current()
	if e == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return e.Close(ctx)
}

func (rb *runbooks) current() *runbook.Engine {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.engine
}

var errRunbooksNotReady = incident.Errorf(incident.EINVALID, "Runbooks are not ready: the bot could not reach Slack to learn this workspace's id yet. Try again in a minute.")

func (rb *runbooks) caller(teamID string, actor incident.Actor) runbook.Caller {
	if rb.a.isShell() {
		teamID = shellTeamID
	}
	return runbook.Caller{TeamID: teamID, UserID: actor.ID, DisplayName: actor.Name}
}

// List implements command.Runbooks.
func (rb *runbooks) List(ctx context.Context, req command.Request) (string, error) {
	e := rb.current()
	if e == nil {
		return "", errRunbooksNotReady
	}
	inv := runbook.Invocation{Caller: rb.caller(req.TeamID, req.Actor), ChannelID: req.ChannelID}
	return runbook.ListText(e.Runbooks(ctx, inv)), nil
}

// Run implements command.Runbooks: `/incident run <id> [name=value ...] [--dry-run]`.
func (rb *runbooks) Run(ctx context.Context, req command.Request, args string) (command.Reply, error) {
	e := rb.current()
	if e == nil {
		return command.Reply{}, errRunbooksNotReady
	}
	sub, err := e.Submit(ctx, runbook.Invocation{Caller: rb.caller(req.TeamID, req.Actor), ChannelID: req.ChannelID, Text: args})
	return rb.present(ctx, sub, err)
}

// present turns the engine's answer into what the person sees: a refusal,
// a confirmation card, an approval request posted in the incident's thread,
// or the acknowledgement that the run started.
func (rb *runbooks) present(ctx context.Context, sub *runbook.Submission, err error) (command.Reply, error) {
	if ue, ok := runbook.AsUserError(err); ok {
		return command.Reply{Text: ue.Message, Error: true}, nil
	}
	if err != nil {
		return command.Reply{}, fmt.Errorf("runbook request: %w", err)
	}
	switch {
	case sub.Card != nil:
		text := sub.Card.Text()
		return command.Reply{Text: text, Pending: slack.Card{Text: text, RunID: sub.RunID, Buttons: slack.ConfirmButtons}}, nil
	case sub.Approval != nil:
		if err := rb.postApproval(ctx, sub.Approval); err != nil {
			return command.Reply{}, err
		}
		msg := sub.Message
		if msg == "" {
			msg = "Confirmed. Waiting for approval (run " + sub.RunID + ")."
		}
		return command.Reply{Text: msg}, nil
	}
	return command.Reply{Text: sub.Message}, nil
}

// postApproval posts the approval request with Approve and Deny buttons in
// the incident's thread (under its summary).
func (rb *runbooks) postApproval(ctx context.Context, ap *runbook.ApprovalRequest) error {
	thread := rb.threadOf(ctx, ap.ChannelID)
	card := slack.Card{Text: ap.Text(), RunID: ap.RunID, Buttons: slack.ApproveButtons}
	if c := rb.a.slackClient(); c != nil {
		if _, err := c.PostCard(ctx, ap.ChannelID, thread, card); err != nil {
			return fmt.Errorf("posting the approval request: %w", err)
		}
		return nil
	}
	if rb.a.chat == nil {
		return incident.Errorf(incident.EINVALID, "There is no chat to ask for approval in.")
	}
	text := card.Text + "\n(Another person approves with `/approve " + ap.RunID + "` or denies with `/deny " + ap.RunID + "`.)"
	_, err := rb.a.chat.Post(ctx, ap.ChannelID, incident.Message{Kind: incident.MessageText, Text: text, ThreadID: thread})
	return err
}

// threadOf returns the summary message of the incident bound to a channel,
// the thread runbook conversations go to ("" if none).
func (rb *runbooks) threadOf(ctx context.Context, channelID string) string {
	inc, err := rb.a.svc.Get(ctx, incident.Ref{ChannelID: channelID})
	if err != nil {
		return ""
	}
	return inc.Chat.SummaryID
}

// act runs one of the card buttons (or the shell's /confirm, /approve...).
func (rb *runbooks) act(ctx context.Context, verb, runID, teamID string, actor incident.Actor) (string, error) {
	e := rb.current()
	if e == nil {
		return "", errRunbooksNotReady
	}
	c := rb.caller(teamID, actor)
	var (
		sub *runbook.Submission
		err error
	)
	switch verb {
	case "confirm":
		sub, err = e.Confirm(ctx, runID, c)
	case "cancel":
		sub, err = e.Cancel(ctx, runID, c)
	case "approve":
		sub, err = e.Approve(ctx, runID, c)
	case "deny":
		sub, err = e.Deny(ctx, runID, c)
	default:
		return "", fmt.Errorf("unknown runbook action %q", verb)
	}
	reply, err := rb.present(ctx, sub, err)
	if err != nil {
		return "", err
	}
	return reply.Text, nil
}

// Confirm implements slack.RunbookActions.
func (rb *runbooks) Confirm(ctx context.Context, c slack.RunbookClick) (string, error) {
	return rb.act(ctx, "confirm", c.RunID, c.TeamID, c.Actor)
}

// Cancel implements slack.RunbookActions.
func (rb *runbooks) Cancel(ctx context.Context, c slack.RunbookClick) (string, error) {
	return rb.act(ctx, "cancel", c.RunID, c.TeamID, c.Actor)
}

// Approve implements slack.RunbookActions.
func (rb *runbooks) Approve(ctx context.Context, c slack.RunbookClick) (string, error) {
	return rb.act(ctx, "approve", c.RunID, c.TeamID, c.Actor)
}

// Deny implements slack.RunbookActions.
func (rb *runbooks) Deny(ctx context.Context, c slack.RunbookClick) (string, error) {
	return rb.act(ctx, "deny", c.RunID, c.TeamID, c.Actor)
}

// runbookPost is the payload of a runbook.post job.
type runbookPost struct {
	Channel  string `json:"channel"`
	Incident int64  `json:"incident,omitempty"`
	Text     string `json:"text"`
}

// RunFinished implements runbook.Notifier: the full redacted output is
// stored with the run, and the result is posted in the incident's thread
// through the job queue (so it is not lost if Slack is down), or shown to
// the requester alone when the runbook says so.
func (rb *runbooks) RunFinished(ctx context.Context, r runbook.Result) {
	defer rb.finished()
	rb.storeRun(ctx, r)
	if r.Where == "ephemeral" {
		rb.tellRequester(ctx, r.ChannelID, r.Requester.UserID, r.Text)
		return
	}
	rb.enqueuePost(ctx, r.ChannelID, r.IncidentID, r.Text)
}

// finished counts a run as done once its result is queued.
func (rb *runbooks) finished() {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.active > 0 {
		rb.active--
	}
	rb.idle.Broadcast()
}

// RequestClosed implements runbook.Notifier: a request that expired or was
// dropped is told in the thread, so its stale buttons are explained.
func (rb *runbooks) RequestClosed(ctx context.Context, c runbook.Closed) {
	text := fmt.Sprintf("Runbook request %s (%s) by <@%s> ended without running: %s.", c.RunID, runbook.EscapeSlack(c.RunbookID), c.Requester.UserID, c.State)
	if c.Reason != "" {
		text += " " + c.Reason
	}
	rb.enqueuePost(ctx, c.ChannelID, c.IncidentID, text)
}

func (rb *runbooks) storeRun(ctx context.Context, r runbook.Result) {
	body, err := json.Marshal(r)
	if err == nil {
		err = rb.a.store.Update(ctx, func(tx incident.Tx) error {
			_, err := tx.PutDoc("runbook-run", r.RunID, body)
			return err
		})
	}
	if err != nil {
		rb.log.Error("storing the run's output", zap.String("run", r.RunID), zap.Error(err))
	}
}

func (rb *runbooks) tellRequester(ctx context.Context, channel, user, text string) {
	if c := rb.a.slackClient(); c != nil {
		if err := c.PostEphemeral(ctx, channel, user, text); err != nil {
			rb.log.Warn("telling the requester", zap.Error(err))
		}
		return
	}
	rb.enqueuePost(ctx, channel, "", text)
}

func (rb *runbooks) enqueuePost(ctx context.Context, channel, incidentID, text string) {
	p := runbookPost{Channel: channel, Text: text}
	key := "runbook:" + channel
	if n, ok := incident.ParseID(incidentID); ok {
		p.Incident, key = n, incident.ChatJobKey(n)
	}
	payload, _ := json.Marshal(p)
	err := rb.a.store.Update(ctx, func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: jobRunbookPost, Key: key, Due: rb.a.clock.Now(), Payload: payload, Created: rb.a.clock.Now()})
	})
	if err != nil {
		rb.log.Error("queueing a runbook message", zap.String("channel", channel), zap.Error(err))
	}
}

func (rb *runbooks) handlePost(ctx context.Context, job incident.Job) error {
	var p runbookPost
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return incident.Errorf(incident.EINVALID, "bad runbook.post payload: %v", err)
	}
	if rb.a.chat == nil {
		return incident.Retryable(errors.New("no chat platform configured"), time.Minute)
	}
	thread := ""
	if p.Incident != 0 {
		if inc, err := rb.a.svc.Get(ctx, incident.Ref{Number: p.Incident}); err == nil {
			thread = inc.Chat.SummaryID
		}
	}
	// Exactly once across kills: the job's id names the post (issue 17).
	key := incident.PostKey{Kind: incident.PostRunbookResult, Seq: strconv.FormatUint(job.ID, 10)}
	if p.Incident != 0 {
		key.Incident = incident.FormatID(p.Incident)
	}
	_, err := incident.PostOnce(ctx, rb.a.store, rb.a.chat, rb.a.clock, key, p.Channel, incident.Message{Kind: incident.MessageText, Text: p.Text, ThreadID: thread})
	return err
}

// audit logs every decision and records it on the incident's timeline
// (quietly: the result is what the channel sees), and counts runs.
func (rb *runbooks) audit(ev runbook.Event) {
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
	rb.log.Info("runbook audit", fields...)

	switch ev.Kind {
	case runbook.EventStarted:
		rb.mu.Lock()
		rb.active++
		rb.mu.Unlock()
	case runbook.EventFinished:
		outcome := string(ev.Status)
		if ev.DryRun {
			outcome = "dry_run"
		}
		rb.runs.WithLabelValues(ev.RunbookID, outcome).Inc()
	case runbook.EventValidationFailed, runbook.EventAuthzDenied:
		rb.runs.WithLabelValues(ev.RunbookID, "refused").Inc()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, ok := incident.ParseID(ev.IncidentID)
	if !ok && ev.ChannelID != "" {
		// Decisions taken before the engine looked the incident up (the
		// request itself, early refusals) belong to the channel's incident.
		if inc, err := rb.a.svc.Get(ctx, incident.Ref{ChannelID: ev.ChannelID}); err == nil {
			n, ok = inc.Number, true
		}
	}
	if !ok {
		return
	}
	kind := incident.EventRunbookRequested
	if ev.Kind == runbook.EventFinished {
		kind = incident.EventRunbookRan
	}
	data := map[string]string{"runbook": ev.RunbookID, "run_id": ev.RunID, "decision": string(ev.Kind), "dry_run": strconv.FormatBool(ev.DryRun)}
	if ev.Reason != "" {
		data["reason"] = firstLine(ev.Reason)
	}
	if ev.Status != "" {
		data["outcome"] = string(ev.Status)
	}
	if ev.ExitCode != nil {
		data["exit_code"] = strconv.Itoa(*ev.ExitCode)
	}
	if ev.DurationMS > 0 {
		data["duration_ms"] = strconv.FormatInt(ev.DurationMS, 10)
	}
	source := incident.SourceSlack
	if rb.a.isShell() {
		source = incident.SourceShell
	}
	tev := incident.Event{
		Kind:  kind,
		At:    ev.Time,
		Actor: incident.Actor{ID: ev.Actor.UserID, Name: ev.Actor.DisplayName, Source: source},
		Text:  describeRunbookEvent(ev),
		Key:   "runbook:" + ev.RunID + ":" + string(ev.Kind) + ":" + ev.Step,
		Data:  data,
		Quiet: true,
	}
	if ev.RunID == "" { // refused before a request existed: no natural key
		tev.Key = ""
	}
	if _, err := rb.a.svc.Record(ctx, incident.Ref{Number: n}, tev); err != nil {
		rb.log.Error("recording a runbook decision on the timeline", zap.String("incident", ev.IncidentID), zap.Error(err))
	}
}

func describeRunbookEvent(ev runbook.Event) string {
	who := "<@" + ev.Actor.UserID + ">"
	rbID := "`" + ev.RunbookID + "`"
	if ev.RunbookID == "" {
		rbID = "a runbook"
	}
	dry := ""
	if ev.DryRun {
		dry = " (dry run)"
	}
	var s string
	switch ev.Kind {
	case runbook.EventRequestReceived:
		var params []string
		for _, p := range ev.Params {
			params = append(params, p.Name+"="+p.Label)
		}
		s = strings.TrimSpace(fmt.Sprintf("%s asked to run %s%s %s", who, rbID, dry, strings.Join(params, " ")))
	case runbook.EventValidationFailed:
		s = fmt.Sprintf("Request by %s to run %s refused: invalid", who, rbID)
	case runbook.EventAuthzDenied:
		s = fmt.Sprintf("Request by %s to run %s refused: not allowed", who, rbID)
	case runbook.EventConfirmRequested:
		s = fmt.Sprintf("%s asked to confirm %s", who, rbID)
	case runbook.EventConfirmed:
		s = fmt.Sprintf("%s confirmed %s", who, rbID)
	case runbook.EventApprovalRequested:
		s = fmt.Sprintf("Approval requested for %s", rbID)
	case runbook.EventApproved:
		s = fmt.Sprintf("%s approved %s", who, rbID)
	case runbook.EventDenied:
		s = fmt.Sprintf("%s denied %s", who, rbID)
	case runbook.EventExpired:
		s = fmt.Sprintf("Request to run %s expired", rbID)
	case runbook.EventCanceled:
		s = fmt.Sprintf("Request to run %s canceled", rbID)
	case runbook.EventStarted:
		s = fmt.Sprintf("%s started%s", rbID, dry)
	case runbook.EventStepFinished:
		s = fmt.Sprintf("%s step %s: %s", rbID, ev.Step, ev.Status)
	case runbook.EventFinished:
		s = fmt.Sprintf("%s finished%s: %s", rbID, dry, ev.Status)
		if ev.ExitCode != nil && *ev.ExitCode >= 0 {
			s += fmt.Sprintf(" (exit %d, %s)", *ev.ExitCode, (time.Duration(ev.DurationMS) * time.Millisecond).String())
		}
	default:
		s = fmt.Sprintf("%s: %s", rbID, ev.Kind)
	}
	if ev.Reason != "" && ev.Kind != runbook.EventFinished {
		s += ": " + firstLine(ev.Reason)
	}
	return s
}

// firstLine keeps the first line of a (possibly long, multi-line) reason.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(strings.TrimSpace(line), ":")
}

// waitIdle waits until no runbook run is in progress, or ctx ends. The
// shell uses it so a run's result is printed before the next prompt.
func (rb *runbooks) waitIdle(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		rb.mu.Lock()
		rb.idle.Broadcast()
		rb.mu.Unlock()
	})
	defer stop()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for rb.active > 0 && ctx.Err() == nil {
		rb.idle.Wait()
	}
}

// runbookIncidents answers the engine's questions from the incident store.
type runbookIncidents struct{ svc *incident.Service }

func (r runbookIncidents) IncidentForChannel(ctx context.Context, channelID string) (runbook.IncidentInfo, bool, error) {
	inc, err := r.svc.Get(ctx, incident.Ref{ChannelID: channelID})
	switch incident.ErrorCode(err) {
	case "":
		return runbook.IncidentInfo{ID: inc.ID(), Open: inc.Status.Open()}, true, nil
	case incident.EINVALID, incident.ENOTFOUND: // not an incident channel
		return runbook.IncidentInfo{}, false, nil
	}
	return runbook.IncidentInfo{}, false, err
}

func (r runbookIncidents) Roles(ctx context.Context, incidentID, userID string) ([]string, error) {
	n, ok := incident.ParseID(incidentID)
	if !ok {
		return nil, fmt.Errorf("bad incident id %q", incidentID)
	}
	inc, err := r.svc.Get(ctx, incident.Ref{Number: n})
	if err != nil {
		return nil, err
	}
	var roles []string
	for _, role := range inc.RolesOf(userID) {
		roles = append(roles, string(role))
	}
	return roles, nil
}

// shellConfirm asks at the prompt whether to run what a card describes.
func (a *App) shellConfirm(ctx context.Context, req command.Request, pending any, ask func(string) (string, bool)) string {
	card, ok := pending.(slack.Card)
	rb, ok2 := a.dispCfg.Runbooks.(*runbooks)
	if !ok || !ok2 || card.Buttons != slack.ConfirmButtons {
		return ""
	}
	answer, ok := ask("Run it? [y/N]")
	verb := "cancel"
	if ok && (strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")) {
		verb = "confirm"
	}
	text, err := rb.act(ctx, verb, card.RunID, shellTeamID, req.Actor)
	if err != nil {
		return incident.ErrorMessage(err)
	}
	return text
}

// shellAction runs /confirm, /cancel, /approve and /deny typed in the shell.
func (a *App) shellAction(ctx context.Context, verb, runID string, actor incident.Actor) string {
	rb, ok := a.dispCfg.Runbooks.(*runbooks)
	if !ok {
		return "runbooks are not available"
	}
	text, err := rb.act(ctx, verb, runID, shellTeamID, actor)
	if err != nil {
		return incident.ErrorMessage(err)
	}
	return text
}
