// Package runbookflow connects the runbook engine (package runbook) to the
// incidents and the chat: it authorizes by incident role through the
// incident store, records every decision on the incident's timeline,
// answers `/incident runbooks` and `/incident run`, turns the engine's
// answers into what people see (a confirmation, an approval request in
// the incident's thread, the result), and delivers results through the
// durable job queue.
//
// It knows no chat platform: it talks to the chat through Presenter, which
// both the Slack adapter and the local shell implement, and hands the
// front end a typed command.Confirmation to render as buttons or a prompt.
package runbookflow

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
)

// JobPost posts a runbook's result (or a note about its request) in the
// incident's channel, durably and in order with the channel's other
// messages.
const JobPost = "runbook.post"

// LocalTeamID is the workspace id of the local shell.
const LocalTeamID = "TSHELL"

// Presenter is what the flow needs of the chat beyond incident.Chat. The
// Slack client and the shell's chat implement it.
type Presenter interface {
	// PostApprovalRequest posts text in the thread threadID of channelID
	// (the channel itself when "") with Approve and Deny controls that
	// carry only runID.
	PostApprovalRequest(ctx context.Context, channelID, threadID, runID, text string) error
	// PostEphemeral shows text to userID alone in channelID.
	PostEphemeral(ctx context.Context, channelID, userID, text string) error
}

// Config configures a Flow.
type Config struct {
	Dir        string // BOT_RUNBOOKS_DIR
	SecretsDir string // BOT_RUNBOOK_SECRETS_DIR; "" means runbooks with secrets cannot run
	Disabled   bool   // BOT_RUNBOOKS_DISABLED
	Service    *incident.Service
	// Store keeps run outputs and the JobPost jobs; register HandlePost
	// for JobPost with the job runner.
	Store incident.Store
	// Chat posts messages; nil: results wait in the queue.
	Chat incident.Chat
	// Presenter shows approvals and private results; nil: approvals cannot
	// be asked for.
	Presenter Presenter
	// GroupMembers backs user_groups (Slack's usergroups.users.list).
	GroupMembers runbook.GroupMembersFunc
	// Local is the shell: callers are local user names, every one of them
	// in every user group, in workspace LocalTeamID.
	Local      bool
	Clock      incident.Clock
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Flow implements command.Runbooks and the card buttons.
type Flow struct {
	cfg      Config
	log      *zap.Logger
	registry *runbook.Registry
	source   incident.Source

	mu     sync.Mutex
	engine *runbook.Engine // nil until the workspace id is known
	active int             // runs started and not finished (the shell waits)
	idle   *sync.Cond

	runs *prometheus.CounterVec
}

var _ command.Runbooks = (*Flow)(nil)

// New loads the runbooks and registers the flow's job and metrics. Call
// Start with the workspace id before runbooks can run.
func New(cfg Config) *Flow {
	f := &Flow{cfg: cfg, log: cfg.Logger.Named("runbooks"), source: incident.SourceSlack}
	if cfg.Local {
		f.source = incident.SourceShell
	}
	f.idle = sync.NewCond(&f.mu)
	f.registry = runbook.NewRegistry(cfg.Dir, runbook.LoadOptions{}, f.log)
	report, err := f.registry.Reload()
	if err != nil {
		f.log.Warn("runbooks not loaded", zap.String("dir", cfg.Dir), zap.Error(err))
	} else {
		f.logReport(report)
	}
	f.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "incidentbot_runbook_runs_total",
		Help: "Runbook runs by runbook and outcome (succeeded, failed, timed_out, canceled, refused, dry_run). " +
			"Requests for runbooks that are not loaded share the runbook label \"" + UnknownRunbook + "\".",
	}, []string{"runbook", "outcome"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(f.runs)
	}
	return f
}

func (f *Flow) logReport(r *runbook.LoadReport) {
	for _, p := range r.Errors {
		f.log.Error("runbook excluded", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	warn := f.log.Warn
	if f.cfg.Local {
		warn = f.log.Info // `/incident runbooks` says what is unavailable
	}
	for _, p := range r.Warnings {
		warn("runbook warning", zap.String("file", p.File), zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	f.log.Info("runbooks loaded", zap.String("dir", r.Dir), zap.Int("valid", len(r.Runbooks)), zap.Int("excluded", len(r.Rejected)))
}

// Start builds the engine for workspace teamID (ignored when Local).
func (f *Flow) Start(teamID string) error {
	if f.cfg.Local {
		teamID = LocalTeamID
	}
	cfg := runbook.Config{
		Registry:     f.registry,
		TeamID:       teamID,
		Incidents:    incidents{svc: f.cfg.Service},
		Notifier:     f,
		Audit:        f.audit,
		Logger:       f.log,
		Clock:        f.cfg.Clock,
		DisableAll:   f.cfg.Disabled,
		LocalUsers:   f.cfg.Local,
		GroupMembers: f.cfg.GroupMembers,
	}
	if d := f.cfg.SecretsDir; d != "" {
		cfg.Secrets = runbook.FileSecrets{Dir: d}
	}
	if f.cfg.Store != nil {
		cfg.Requests = requests{store: f.cfg.Store}
	}
	engine, err := runbook.NewEngine(cfg)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.engine = engine
	f.mu.Unlock()
	return nil
}

// StartWhen retries learning the workspace id every 30 s until it works
// or ctx ends, then starts the engine. For when Slack is unreachable at
// start-up.
func (f *Flow) StartWhen(learn func(ctx context.Context) (string, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			id, err := learn(lctx)
			cancel()
			if err != nil {
				f.log.Warn("runbooks still wait for Slack", zap.Error(err))
				continue
			}
			if err := f.Start(id); err != nil {
				return err
			}
			f.log.Info("runbooks ready", zap.String("team", id))
			return nil
		}
	}
}

// ReloadOnSIGHUP reloads the runbook files on SIGHUP until ctx ends.
// Requests already validated keep their version and abort before exec if
// it changed.
func (f *Flow) ReloadOnSIGHUP(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			report, err := f.registry.Reload()
			if err != nil {
				f.log.Error("runbook reload failed; keeping the loaded set", zap.Error(err))
				continue
			}
			f.log.Info("runbooks reloaded on SIGHUP")
			f.logReport(report)
		}
	}
}

// Close stops running runbooks (SIGTERM, then SIGKILL) and joins them.
func (f *Flow) Close(ctx context.Context) error {
	e := f.current()
	if e == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return e.Close(ctx)
}

func (f *Flow) current() *runbook.Engine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.engine
}

var errNotReady = incident.Errorf(incident.EINVALID, "Runbooks are not ready: the bot could not reach Slack to learn this workspace's id yet. Try again in a minute.")

func (f *Flow) caller(teamID string, actor incident.Actor) runbook.Caller {
	if f.cfg.Local {
		teamID = LocalTeamID
	}
	return runbook.Caller{TeamID: teamID, UserID: actor.ID, DisplayName: actor.Name}
}

// List implements command.Runbooks.
func (f *Flow) List(ctx context.Context, req command.Request) (string, error) {
	e := f.current()
	if e == nil {
		return "", errNotReady
	}
	inv := runbook.Invocation{Caller: f.caller(req.TeamID, req.Actor), ChannelID: req.ChannelID}
	return e.List(ctx, inv), nil
}

// Run implements command.Runbooks: `/incident run <id> [name=value ...] [--dry-run]`.
func (f *Flow) Run(ctx context.Context, req command.Request, args string) (command.Reply, error) {
	e := f.current()
	if e == nil {
		return command.Reply{}, errNotReady
	}
	sub, err := e.Submit(ctx, runbook.Invocation{Caller: f.caller(req.TeamID, req.Actor), ChannelID: req.ChannelID, Text: args})
	return f.present(ctx, sub, err)
}

// present turns the engine's answer into what the person sees: a refusal,
// a confirmation, an approval request posted in the incident's thread, or
// the acknowledgement that the run started.
func (f *Flow) present(ctx context.Context, sub *runbook.Submission, err error) (command.Reply, error) {
	if ue, ok := runbook.AsUserError(err); ok {
		return command.Reply{Text: ue.Message, Error: true}, nil
	}
	if err != nil {
		return command.Reply{}, fmt.Errorf("runbook request: %w", err)
	}
	switch {
	case sub.Card != nil:
		text := sub.Card.Text()
		return command.Reply{Text: text, Confirm: &command.Confirmation{RunID: sub.RunID, Text: text}}, nil
	case sub.Approval != nil:
		if err := f.postApproval(ctx, sub.Approval); err != nil {
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

// postApproval posts the approval request in the incident's thread (under
// its summary).
func (f *Flow) postApproval(ctx context.Context, ap *runbook.ApprovalRequest) error {
	if f.cfg.Presenter == nil {
		return incident.Errorf(incident.EINVALID, "There is no chat to ask for approval in.")
	}
	if err := f.cfg.Presenter.PostApprovalRequest(ctx, ap.ChannelID, f.threadOf(ctx, ap.ChannelID), ap.RunID, ap.Text()); err != nil {
		return fmt.Errorf("posting the approval request: %w", err)
	}
	return nil
}

// threadOf returns the summary message of the incident bound to a channel,
// the thread runbook conversations go to ("" if none).
func (f *Flow) threadOf(ctx context.Context, channelID string) string {
	inc, err := f.cfg.Service.Get(ctx, incident.Ref{ChannelID: channelID})
	if err != nil {
		return ""
	}
	return inc.Chat.SummaryID
}

// Action is a button on a runbook card (or the shell's stand-in).
type Action string

// Card actions.
const (
	ActionConfirm Action = "confirm"
	ActionCancel  Action = "cancel"
	ActionApprove Action = "approve"
	ActionDeny    Action = "deny"
)

// Act runs one of the card buttons for runID as actor of workspace teamID
// and returns the text to show them.
func (f *Flow) Act(ctx context.Context, action Action, runID, teamID string, actor incident.Actor) (string, error) {
	e := f.current()
	if e == nil {
		return "", errNotReady
	}
	c := f.caller(teamID, actor)
	var (
		sub *runbook.Submission
		err error
	)
	switch action {
	case ActionConfirm:
		sub, err = e.Confirm(ctx, runID, c)
	case ActionCancel:
		sub, err = e.Cancel(ctx, runID, c)
	case ActionApprove:
		sub, err = e.Approve(ctx, runID, c)
	case ActionDeny:
		sub, err = e.Deny(ctx, runID, c)
	default:
		return "", fmt.Errorf("unknown runbook action %q", action)
	}
	reply, err := f.present(ctx, sub, err)
	if err != nil {
		return "", err
	}
	return reply.Text, nil
}

// AnswerPrompt asks at a prompt whether to run what a confirmation shows
// (the shell's Confirm and Cancel buttons) and returns the outcome.
func (f *Flow) AnswerPrompt(ctx context.Context, req command.Request, conf command.Confirmation, ask func(question string) (string, bool)) string {
	answer, ok := ask("Run it? [y/N]")
	action := ActionCancel
	if ok && (strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")) {
		action = ActionConfirm
	}
	return f.ActText(ctx, action, conf.RunID, req.TeamID, req.Actor)
}

// ActText is Act with errors turned into the text to show.
func (f *Flow) ActText(ctx context.Context, action Action, runID, teamID string, actor incident.Actor) string {
	text, err := f.Act(ctx, action, runID, teamID, actor)
	if err != nil {
		return incident.ErrorMessage(err)
	}
	return text
}

// post is the payload of a runbook.post job.
type post struct {
	Channel  string `json:"channel"`
	Incident int64  `json:"incident,omitempty"`
	Text     string `json:"text"`
}

// RunFinished implements runbook.Notifier: the full redacted output is
// stored with the run, and the result is posted in the incident's thread
// through the job queue (so it is not lost if the chat is down), or shown
// to the requester alone when the runbook says so.
func (f *Flow) RunFinished(ctx context.Context, r runbook.Result) {
	defer f.finished()
	f.storeRun(ctx, r)
	if r.Where == runbook.WhereEphemeral && f.cfg.Presenter != nil {
		if err := f.cfg.Presenter.PostEphemeral(ctx, r.ChannelID, r.Requester.UserID, r.Text); err != nil {
			f.log.Warn("telling the requester", zap.Error(err))
		}
		return
	}
	f.enqueuePost(ctx, r.ChannelID, r.IncidentID, r.Text)
}

// finished counts a run as done once its result is queued.
func (f *Flow) finished() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active > 0 {
		f.active--
	}
	f.idle.Broadcast()
}

// RequestClosed implements runbook.Notifier: a request that expired or was
// dropped is told in the thread, so its stale buttons are explained.
func (f *Flow) RequestClosed(ctx context.Context, c runbook.Closed) {
	text := fmt.Sprintf("Runbook request %s (%s) by <@%s> ended without running: %s.", c.RunID, runbook.EscapeSlack(c.RunbookID), c.Requester.UserID, c.State)
	if c.Reason != "" {
		text += " " + c.Reason
	}
	f.enqueuePost(ctx, c.ChannelID, c.IncidentID, text)
}

func (f *Flow) storeRun(ctx context.Context, r runbook.Result) {
	body, err := json.Marshal(r)
	if err == nil {
		err = f.cfg.Store.Update(ctx, func(tx incident.Tx) error {
			_, err := tx.PutDoc("runbook-run", r.RunID, body)
			return err
		})
	}
	if err != nil {
		f.log.Error("storing the run's output", zap.String("run", r.RunID), zap.Error(err))
	}
}

func (f *Flow) enqueuePost(ctx context.Context, channel, incidentID, text string) {
	p := post{Channel: channel, Text: text}
	key := "runbook:" + channel
	if n, ok := incident.ParseID(incidentID); ok {
		p.Incident, key = n, incident.ChatJobKey(n)
	}
	payload, _ := json.Marshal(p)
	now := f.cfg.Clock.Now()
	err := f.cfg.Store.Update(ctx, func(tx incident.Tx) error {
		return tx.Enqueue(&incident.Job{Kind: JobPost, Key: key, Due: now, Payload: payload, Created: now})
	})
	if err != nil {
		f.log.Error("queueing a runbook message", zap.String("channel", channel), zap.Error(err))
	}
}

// HandlePost runs a JobPost job: it posts in the incident's thread.
func (f *Flow) HandlePost(ctx context.Context, job incident.Job) error {
	var p post
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return incident.Errorf(incident.EINVALID, "bad runbook.post payload: %v", err)
	}
	if f.cfg.Chat == nil {
		return incident.Retryable(errors.New("no chat platform configured"), time.Minute)
	}
	thread := ""
	if p.Incident != 0 {
		if inc, err := f.cfg.Service.Get(ctx, incident.Ref{Number: p.Incident}); err == nil {
			thread = inc.Chat.SummaryID
		}
	}
	// Exactly once across kills: the job's id names the post (issue 17).
	key := incident.PostKey{Kind: incident.PostRunbookResult, Seq: strconv.FormatUint(job.ID, 10)}
	if p.Incident != 0 {
		key.Incident = incident.FormatID(p.Incident)
	}
	_, err := incident.PostOnce(ctx, f.cfg.Store, f.cfg.Chat, f.cfg.Clock, key, p.Channel, incident.Message{Kind: incident.MessageText, Text: p.Text, ThreadID: thread})
	return err
}

// WaitIdle waits until no runbook run is in progress, or ctx ends. The
// shell uses it so a run's result is printed before the next prompt.
func (f *Flow) WaitIdle(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.idle.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.active > 0 && ctx.Err() == nil {
		f.idle.Wait()
	}
}

// incidents answers the engine's questions from the incident store.
type incidents struct{ svc *incident.Service }

func (r incidents) IncidentForChannel(ctx context.Context, channelID string) (runbook.IncidentInfo, bool, error) {
	inc, err := r.svc.Get(ctx, incident.Ref{ChannelID: channelID})
	switch incident.ErrorCode(err) {
	case "":
		return runbook.IncidentInfo{ID: inc.ID(), Open: inc.Status.Open()}, true, nil
	case incident.EINVALID, incident.ENOTFOUND: // not an incident channel
		return runbook.IncidentInfo{}, false, nil
	}
	return runbook.IncidentInfo{}, false, err
}

func (r incidents) Roles(ctx context.Context, incidentID, userID string) ([]string, error) {
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
