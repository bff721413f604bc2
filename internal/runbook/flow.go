package runbook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Submit handles "/incident run <text>": parse, validate, authorize,
// rate-limit and then, depending on the runbook, return a confirmation
// card, an approval request, or start the run (or dry run) at once. Every
// refusal is audited and returned as a *UserError. Nothing executes before
// Submit returns except a run that needs neither confirmation nor approval
// (and dry-run probes), and those only after every check passed.
func (e *Engine) Submit(ctx context.Context, inv Invocation) (*Submission, error) {
	base := Event{Actor: inv.Caller.actor(), ChannelID: inv.ChannelID}
	refuse := func(kind EventKind, ue *UserError) (*Submission, error) {
		e.mu.Lock()
		e.refuse.allow(rateKey(inv.Caller), e.clock.Now())
		e.mu.Unlock()
		ev := base
		ev.Kind, ev.Reason = kind, ue.Message
		e.emit(ev)
		return nil, ue
	}
	// The raw text is not audited: it may contain a secret parameter.
	e.emit(withKind(base, EventRequestReceived))
	now := e.clock.Now()
	if ue := e.admit(inv.Caller, now); ue != nil {
		return refuse(EventAuthzDenied, ue)
	}
	cmd, perr := ParseCommand(inv.Text)
	if idShape.MatchString(cmd.RunbookID) {
		base.RunbookID = cmd.RunbookID
	}
	rb, found := e.cfg.Registry.Lookup(cmd.RunbookID)
	if perr != nil {
		ue, _ := AsUserError(perr)
		if found {
			ue = userError(ue.Kind, ue.Message, rb.Usage())
		}
		return refuse(EventValidationFailed, ue)
	}
	if !found {
		return refuse(EventValidationFailed, e.unknownRunbook(cmd.RunbookID))
	}
	if cmd.Help {
		return &Submission{Message: "*" + EscapeSlack(rb.ID) + "*: " + EscapeSlack(rb.Title) + "\n" + rb.Help()}, nil
	}
	base.RunbookVersion = rb.Version
	if !rb.Enabled {
		return refuse(EventValidationFailed, userError(KindDisabled, "Runbook "+rb.ID+" is disabled. Nothing was run."))
	}
	inc, d := e.auth.requester(ctx, rb, inv.Caller, inv.ChannelID, inv.isDM())
	if d != nil {
		return refuse(EventAuthzDenied, deniedError(rb, d, ""))
	}
	base.IncidentID = inc.ID
	params, err := rb.BindCommand(cmd)
	if err != nil {
		ue, _ := AsUserError(err)
		return refuse(EventValidationFailed, ue)
	}
	if !rb.Available() && !cmd.DryRun {
		return refuse(EventValidationFailed, unavailableError(rb))
	}
	targets, ue := e.resolveTargets(ctx, rb, params)
	if ue != nil {
		return refuse(EventValidationFailed, ue)
	}
	req, ue := e.newRequest(rb, inv, inc, params, targets, cmd.DryRun, now)
	if ue != nil {
		return refuse(EventValidationFailed, ue)
	}
	if !req.dryRun {
		// Everything that can be known now is checked before anyone is
		// asked to confirm or approve (and again before exec).
		if ue := e.runnableNow(req, now); ue != nil {
			return refuse(EventValidationFailed, ue)
		}
		if req.approval {
			if ue := e.approvable(ctx, req); ue != nil {
				return refuse(EventAuthzDenied, ue)
			}
		}
	}
	return e.dispatch(ctx, req, now)
}

func withKind(ev Event, k EventKind) Event {
	ev.Kind = k
	return ev
}

// admit applies the checks that need no runbook: the kill switch,
// identity, shutdown, and the per-user rate limits: one on requests that
// run or wait for someone (recorded by dispatch), and a separate, more
// generous one on refused requests (recorded by refuse), so a few typos
// never lock anyone out while probing stays bounded.
func (e *Engine) admit(c Caller, now time.Time) *UserError {
	if e.cfg.DisableAll {
		return userError(KindDisabled, "Runbooks are disabled on this bot. Nothing was run.")
	}
	if err := e.auth.identity(c); err != nil {
		return userError(KindDenied, "Access denied: "+EscapeSlack(err.Error())+". Nothing was run.")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return userError(KindShuttingDown, "The bot is shutting down. Nothing was run.")
	}
	if wait := e.refuse.wait(rateKey(c), now); wait > 0 {
		return userError(KindRateLimited, fmt.Sprintf("Too many refused runbook requests: at most %d per minute. Try again in %s. Nothing was run.",
			e.refuse.limit, formatDuration(max(wait.Round(time.Second), time.Second))))
	}
	if wait := e.rate.wait(rateKey(c), now); wait > 0 {
		return rateLimited(e.rate.limit, wait)
	}
	return nil
}

func rateKey(c Caller) string { return c.TeamID + "/" + c.UserID }

func rateLimited(limit int, wait time.Duration) *UserError {
	return userError(KindRateLimited, fmt.Sprintf("Too many runbook runs and requests: at most %d per minute. Try again in %s. Nothing was run.",
		limit, formatDuration(max(wait.Round(time.Second), time.Second))))
}

func (e *Engine) unknownRunbook(id string) *UserError {
	if idShape.MatchString(id) && e.cfg.Registry.Rejected(id) {
		return userError(KindUnknown, "Runbook "+id+" failed validation and is not loaded; ask the runbook owners to fix it. Nothing was run.")
	}
	return userError(KindUnknown, "Unknown runbook "+echo(id)+". /incident runbooks lists the ones you can run. Nothing was run.")
}

// deniedError refuses a run of rb. who names the person who lacks the
// right when it is not the person acting ("" for "you").
func deniedError(rb *Runbook, d *denial, who string) *UserError {
	return userError(KindDenied, "Access denied for "+rb.ID+": "+d.about(who)+". Nothing was run.")
}

// runnableNow refuses a request that could not start now for a reason
// that will not go away while someone confirms or approves it: the
// runbook's cooldown for this target, or a run of it already holding the
// target. The bot-wide cap is transient and only checked at launch.
func (e *Engine) runnableNow(req *request, now time.Time) *UserError {
	e.mu.Lock()
	reason := e.slots.blocked(req.rb, req.key, now)
	e.mu.Unlock()
	if reason == "" {
		return nil
	}
	return userError(KindBusy, "Run of "+req.rb.ID+" not requested: "+EscapeSlack(reason)+". Nothing was run and nobody was asked to approve.")
}

// approvable refuses at once a request nobody else could ever approve:
// fewer people than approval.count besides the requester are among the
// configured approvers (users and user-group members).
func (e *Engine) approvable(ctx context.Context, req *request) *UserError {
	ap := req.rb.Approval
	n, err := e.auth.otherMembers(ctx, ap.Approvers, req.caller)
	if err != nil {
		return userError(KindDenied, "Run of "+req.rb.ID+" not requested: could not look up who can approve it, so it is refused. Nothing was run.")
	}
	if n >= 0 && n < ap.Count {
		who := DescribeMembers(ap.Approvers)
		others := "nobody else is"
		if n > 0 {
			others = fmt.Sprintf("only %d other person is", n)
		}
		return userError(KindDenied, fmt.Sprintf("Run of %s not requested: it needs approval by %d person(s) other than you, and %s among its approvers (%s). "+
			"Ask the runbook's owners (%s) to add approvers in %s. Nothing was run.",
			req.rb.ID, ap.Count, others, who, EscapeSlack(orUnknown(req.rb.Owner)), EscapeSlack(req.rb.ID+".yaml")))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func unavailableError(rb *Runbook) *UserError {
	return userError(KindUnavailable, "Runbook "+rb.ID+" cannot run on this host: "+EscapeSlack(rb.Unavailable)+
		". You can still use --dry-run to see what it would do. Nothing was run.")
}

// newRequest renders every step and the concurrency key and builds the
// pending request. targets are the derived placeholders of url and host
// parameters (resolveTargets).
func (e *Engine) newRequest(rb *Runbook, inv Invocation, inc IncidentInfo, params Params, targets map[string]string, dryRun bool, now time.Time) (*request, *UserError) {
	req := &request{
		id: newRunID(now), rb: rb, caller: inv.Caller, channelID: inv.ChannelID, isDM: inv.isDM(),
		incident: inc, params: params, dryRun: dryRun, created: now,
		approval: approvalApplies(rb, params), state: StateStarting,
	}
	if err := req.render(targets); err != nil {
		// Only reserved names can be missing: e.g. {{incident.id}} outside
		// an incident channel.
		return nil, userError(KindInvalid, "Runbook "+rb.ID+" needs an incident channel ("+EscapeSlack(err.Error())+"). Nothing was run.")
	}
	req.hash = e.requestHash(rb, req)
	return req, nil
}

// render fills the argv of every step and probe and the concurrency key.
// It runs when the request is made and again just before exec, with the
// addresses checked then.
func (req *request) render(targets map[string]string) error {
	values := map[string]string{}
	display := map[string]string{}
	for _, v := range req.params {
		values[v.Name], display[v.Name] = v.Value, v.Value
		if v.Secret {
			display[v.Name] = masked
		}
	}
	for name, v := range targets {
		values[name], display[name] = v, v
	}
	reserved := map[string]string{
		ReservedIncidentID: req.incident.ID, ReservedIncidentChannel: req.channelID,
		ReservedRequesterID: req.caller.UserID, ReservedRunID: req.id,
	}
	for name, v := range reserved {
		if checkGlobal(v, false) == nil {
			values[name], display[name] = v, v
		}
	}
	render := func(steps []Step) ([]renderedStep, error) {
		out := make([]renderedStep, len(steps))
		for i, st := range steps {
			out[i] = renderedStep{step: st, argv: make([]string, len(st.argv)), display: make([]string, len(st.argv))}
			for j, t := range st.argv {
				var err error
				if out[i].argv[j], err = t.render(values); err != nil {
					return nil, err
				}
				out[i].display[j], _ = t.render(display)
			}
		}
		return out, nil
	}
	var err error
	if req.steps, err = render(req.rb.Steps); err == nil {
		if req.probes, err = render(req.rb.DryRun); err == nil {
			req.key, err = req.rb.Limits.key.render(values)
		}
	}
	return err
}

// dispatch stores a new request and moves it to its first state. It is
// what counts against the per-user rate limit. A request that waits for
// someone is written to the request store before anyone is asked.
func (e *Engine) dispatch(ctx context.Context, req *request, now time.Time) (*Submission, error) {
	confirm := !req.dryRun && req.rb.Confirm
	e.mu.Lock()
	if ok, wait := e.rate.allow(rateKey(req.caller), now); !ok { // lost a race with the caller's other requests
		e.mu.Unlock()
		ue := rateLimited(e.rate.limit, wait)
		ev := e.event(req, EventValidationFailed)
		ev.Reason = ue.Message
		e.emit(ev)
		return nil, ue
	}
	e.reqs[req.id] = req
	req.persist = confirm || !req.dryRun && req.approval
	e.mu.Unlock()
	switch {
	case confirm:
		ok, err := e.transition(ctx, req, func(r *request, now time.Time) {
			r.state, r.deadline = StateAwaitingConfirmation, now.Add(ConfirmationTTL)
		})
		if err == nil && !ok {
			err = fmt.Errorf("run %s exists already", req.id)
		}
		if err != nil {
			e.forget(req)
			return nil, err
		}
		e.mu.Lock()
		card := e.card(req)
		e.mu.Unlock()
		e.emit(e.event(req, EventConfirmRequested))
		return &Submission{RunID: req.id, State: StateAwaitingConfirmation, Card: card,
			Message: "Please confirm run " + req.id + " of " + req.rb.ID + " within 2 minutes."}, nil
	case !req.dryRun && req.approval:
		sub, err := e.awaitApproval(ctx, req)
		if err != nil && req.rev == 0 {
			e.forget(req)
		}
		return sub, err
	default:
		return e.launch(ctx, req, req.caller)
	}
}

// forget drops a request that could not be stored.
func (e *Engine) forget(req *request) {
	e.mu.Lock()
	delete(e.reqs, req.id)
	e.mu.Unlock()
}

// Confirm is the requester pressing Confirm on the card. Only the requester
// can confirm, once, within ConfirmationTTL; authorization and the runbook
// version are checked again.
func (e *Engine) Confirm(ctx context.Context, runID string, c Caller) (*Submission, error) {
	req, err := e.act(ctx, runID, c, StateAwaitingConfirmation, func(req *request) *UserError {
		if !req.caller.same(c) {
			return userError(KindDenied, "Only the person who requested run "+req.id+" can confirm it.")
		}
		return nil
	}, claim)
	if err != nil {
		return nil, err
	}
	if req.approval {
		kind, ue := e.preflight(ctx, req, c)
		if ue == nil {
			kind, ue = EventCanceled, e.runnableNow(req, e.clock.Now())
		}
		if ue == nil {
			kind, ue = EventAuthzDenied, e.approvable(ctx, req)
		}
		if ue != nil {
			e.abort(ctx, req, kind, ue)
			return nil, ue
		}
		e.emit(e.event(req, EventConfirmed))
		return e.awaitApproval(ctx, req)
	}
	e.emit(e.event(req, EventConfirmed))
	return e.launch(ctx, req, c)
}

// claim moves a request to starting. Done through act, it is the
// compare-and-set that makes double clicks, duplicate events, replayed
// payloads and clicks reaching two replicas harmless.
func claim(r *request, _ time.Time) { r.state = StateStarting }

func describeState(s State) string {
	switch s {
	case StateAwaitingConfirmation:
		return "waiting for the requester to confirm"
	case StateAwaitingApproval:
		return "waiting for approval"
	case StateStarting, StateRunning:
		return "running"
	}
	return string(s)
}

// auditRefusal records a refused button press. A just-expired request
// gets its expired event.
func (e *Engine) auditRefusal(req *request, c Caller, ue *UserError, expired bool) {
	var ev Event
	if req != nil {
		ev = e.event(req, EventValidationFailed)
	} else {
		ev = Event{Kind: EventValidationFailed}
	}
	ev.Actor, ev.Reason = c.actor(), ue.Message
	switch {
	case expired:
		ev.Kind = EventExpired
	case ue.Kind == KindDenied:
		ev.Kind = EventAuthzDenied
	}
	e.emit(ev)
}

// awaitApproval moves a new or claimed request to awaiting_approval and
// stores it.
func (e *Engine) awaitApproval(ctx context.Context, req *request) (*Submission, error) {
	ok, err := e.transition(ctx, req, func(r *request, now time.Time) {
		r.state, r.deadline = StateAwaitingApproval, now.Add(r.rb.Approval.ExpiresAfter)
	})
	if err == nil && !ok {
		err = fmt.Errorf("run %s changed while it was claimed", req.id)
	}
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	a := e.approvalRequest(req)
	e.mu.Unlock()
	e.emit(e.event(req, EventApprovalRequested))
	return &Submission{RunID: req.id, State: StateAwaitingApproval, Approval: a,
		Message: "Run " + req.id + " of " + req.rb.ID + " needs approval by someone else; a request was posted."}, nil
}

// Approve records approver c's approval of this exact request (its hash).
// c must differ from the requester and satisfy approval.approvers now.
// When Count distinct approvals are in, the run starts.
func (e *Engine) Approve(ctx context.Context, runID string, c Caller) (*Submission, error) {
	if _, err := e.approverCheck(ctx, runID, c); err != nil {
		return nil, err
	}
	done := false
	req, err := e.act(ctx, runID, c, StateAwaitingApproval, func(req *request) *UserError {
		if req.approvedBy(c) {
			return userError(KindConflict, "You already approved run "+req.id+".")
		}
		return nil
	}, func(r *request, now time.Time) {
		r.approvals = append(r.approvals, approvalRecord{by: c, hash: r.hash, at: now})
		done = len(r.approvals) >= r.rb.Approval.Count // set on every attempt
		if done {
			r.state = StateStarting
		}
	})
	if err != nil {
		return nil, err
	}
	ev := e.event(req, EventApproved)
	ev.Actor = c.actor()
	e.emit(ev)
	if !done {
		e.mu.Lock()
		progress := e.approvalRequest(req)
		e.mu.Unlock()
		return &Submission{RunID: req.id, State: StateAwaitingApproval, Approval: progress,
			Message: fmt.Sprintf("Approved (%d of %d).", len(progress.ApprovedBy), req.rb.Approval.Count)}, nil
	}
	return e.launch(ctx, req, c)
}

func (r *request) approvedBy(c Caller) bool {
	for _, a := range r.approvals {
		if a.by.same(c) {
			return true
		}
	}
	return false
}

// approverCheck verifies c may approve or deny runID right now. The request
// stays pending if c may not.
func (e *Engine) approverCheck(ctx context.Context, runID string, c Caller) (*request, error) {
	req, expired, err := e.pending(ctx, runID, StateAwaitingApproval)
	ue, err := refusal(err)
	if err != nil {
		return nil, err
	}
	if ue == nil {
		e.mu.Lock()
		switch {
		case req.caller.same(c):
			ue = userError(KindDenied, "You cannot approve or deny your own request; another approver must.")
		case req.approvedBy(c):
			ue = userError(KindConflict, "You already approved run "+req.id+".")
		}
		e.mu.Unlock()
	}
	if ue == nil {
		d := e.auth.identity(c)
		if d == nil {
			d = e.auth.grants(ctx, req.rb.Approval.Approvers, c, req.incident.ID, "approve")
		}
		if d != nil {
			ue = userError(KindDenied, "You cannot approve or deny run "+req.id+" of "+req.rb.ID+": "+d.about("")+". The request stays open for its approvers.")
		}
	}
	if ue != nil {
		e.auditRefusal(req, c, ue, expired)
		return nil, ue
	}
	return req, nil
}

// Deny ends a request awaiting approval. Only an eligible approver (not
// the requester, who uses Cancel) can deny.
func (e *Engine) Deny(ctx context.Context, runID string, c Caller) (*Submission, error) {
	if _, err := e.approverCheck(ctx, runID, c); err != nil {
		return nil, err
	}
	req, err := e.act(ctx, runID, c, StateAwaitingApproval, func(*request) *UserError { return nil },
		func(r *request, now time.Time) { r.end(StateDenied, now) })
	if err != nil {
		return nil, err
	}
	ev := e.event(req, EventDenied)
	ev.Actor = c.actor()
	ev.Reason = "denied by approver"
	e.emit(ev)
	return &Submission{RunID: req.id, State: StateDenied, Message: "Run " + req.id + " of " + req.rb.ID + " was denied. Nothing was run."}, nil
}

// Cancel lets the requester withdraw a pending request or stop a running
// one (SIGTERM, then SIGKILL after the grace period; the result arrives
// through the Notifier with status canceled). A run can only be stopped
// from the process that runs it.
func (e *Engine) Cancel(ctx context.Context, runID string, c Caller) (*Submission, error) {
	req, err := e.fetch(ctx, runID)
	var ue *UserError
	var stop func()
	if err != nil {
		if _, ok := AsUserError(err); !ok {
			return nil, err
		}
		ue = userError(KindUnknown, "Run "+echo(runID)+" is unknown or already finished.")
	} else {
		e.mu.Lock()
		same, state := req.caller.same(c), req.state
		if state == StateRunning {
			stop = req.cancel
		}
		e.mu.Unlock()
		switch {
		case !same:
			ue = userError(KindDenied, "Only the person who requested run "+req.id+" can cancel it.")
		case waitingState(state):
			if _, err := e.act(ctx, runID, c, state, func(*request) *UserError { return nil },
				func(r *request, now time.Time) { r.end(StateCanceled, now) }); err != nil {
				return nil, err
			}
		case stop != nil:
		case state == StateStarting && req.persist:
			ue = userError(KindConflict, "Run "+req.id+" is already running; only the replica of the bot that runs it can stop it, and this is another one.")
		default:
			ue = userError(KindConflict, "Run "+req.id+" is already "+describeState(state)+".")
		}
	}
	if ue != nil {
		e.auditRefusal(req, c, ue, false)
		return nil, ue
	}
	if stop != nil {
		ev := e.event(req, EventCanceled)
		ev.Reason = "stop requested by requester"
		e.emit(ev)
		stop()
		return &Submission{RunID: req.id, State: StateRunning, Message: "Stopping run " + req.id + "…"}, nil
	}
	ev := e.event(req, EventCanceled)
	ev.Reason = "canceled by requester"
	e.emit(ev)
	return &Submission{RunID: req.id, State: StateCanceled, Message: "Run " + req.id + " canceled. Nothing was run."}, nil
}

// preflight re-checks, immediately before exec (and on confirm), that the
// runbook is still the validated version, enabled and installed, that the
// requester is still authorized from the same incident, and that every
// approval is bound to this exact request hash.
// by is who acted (the requester, or the approver whose click completes
// the approvals); a refusal names the requester when it is someone else.
func (e *Engine) preflight(ctx context.Context, req *request, by Caller) (EventKind, *UserError) {
	cur, ok := e.cfg.Registry.Lookup(req.rb.ID)
	switch {
	case !ok || cur.Version != req.rb.Version:
		return EventCanceled, userError(KindChanged, "Runbook "+req.rb.ID+" was changed or removed after run "+req.id+
			" was requested. Nothing was run; request it again to use the current version.")
	case !cur.Enabled:
		return EventCanceled, userError(KindDisabled, "Runbook "+cur.ID+" has been disabled. Nothing was run.")
	case e.cfg.DisableAll:
		return EventCanceled, userError(KindDisabled, "Runbooks are disabled on this bot. Nothing was run.")
	case !req.dryRun && !cur.Available():
		return EventCanceled, unavailableError(cur)
	}
	inc, d := e.auth.requester(ctx, cur, req.caller, req.channelID, req.isDM)
	if d != nil {
		who := ""
		if !by.same(req.caller) {
			who = "<@" + req.caller.UserID + ">, who requested run " + req.id + ","
		}
		return EventAuthzDenied, deniedError(cur, d, who)
	}
	if inc.ID != req.incident.ID {
		return EventAuthzDenied, userError(KindDenied, "The incident bound to this channel changed since run "+req.id+" was requested. Nothing was run.")
	}
	hash := e.requestHash(cur, req)
	for _, a := range req.approvals {
		if a.hash != hash {
			return EventCanceled, userError(KindChanged, "An approval of run "+req.id+" was for different parameters. Nothing was run.")
		}
	}
	return "", nil
}

// abort ends a claimed request whose pre-exec checks failed.
func (e *Engine) abort(ctx context.Context, req *request, kind EventKind, ue *UserError) {
	if _, err := e.transition(ctx, req, func(r *request, now time.Time) { r.end(StateAborted, now) }); err != nil {
		e.log.Warn("recording an aborted runbook request", zap.String("run_id", req.id), zap.Error(err))
	}
	ev := e.event(req, kind)
	ev.Reason = ue.Message
	e.emit(ev)
}

// launch runs the final checks and the running compare-and-set, takes the
// slots, and starts the run in an engine-owned goroutine. req must have
// been claimed (state starting) by the caller.
func (e *Engine) launch(ctx context.Context, req *request, by Caller) (*Submission, error) {
	if kind, ue := e.preflight(ctx, req, by); ue != nil {
		e.abort(ctx, req, kind, ue)
		return nil, ue
	}
	// Network targets are resolved and checked again now, and the steps
	// pinned to the addresses checked: a name may resolve elsewhere than
	// when the request was made.
	targets, ue := e.resolveTargets(ctx, req.rb, req.params)
	if ue == nil && len(targets) > 0 {
		if err := req.render(targets); err != nil {
			ue = userError(KindInvalid, "Run "+req.id+" could not be prepared: "+EscapeSlack(err.Error())+". Nothing was run.")
		}
	}
	if ue != nil {
		e.abort(ctx, req, EventAuthzDenied, ue)
		return nil, ue
	}
	now := e.clock.Now()
	e.mu.Lock()
	switch {
	case e.closed:
		ue = userError(KindShuttingDown, "The bot is shutting down. Nothing was run.")
	case req.state != StateStarting:
		ue = userError(KindConflict, "Run "+req.id+" is already "+describeState(req.state)+".")
	default:
		if reason := e.slots.check(req.rb, req.key, req.dryRun, now); reason != "" {
			ue = userError(KindBusy, "Run "+req.id+" was not started: "+EscapeSlack(reason)+". Nothing was run.")
		}
	}
	if ue != nil {
		e.mu.Unlock()
		e.abort(ctx, req, EventCanceled, ue)
		return nil, ue
	}
	e.slots.acquire(req.key, req.dryRun)
	runCtx, cancel := context.WithCancel(e.ctx)
	req.state, req.cancel = StateRunning, cancel
	e.wg.Add(1)
	e.mu.Unlock()

	ev := e.event(req, EventStarted)
	red := newRedactor(nil, req.rb.Output.redact)
	for _, s := range req.stepsToRun() {
		ev.Argv = append(ev.Argv, s.step.Name+": "+displayArgv(redactAll(red, s.display)))
	}
	e.emit(ev)
	go e.execute(runCtx, cancel, req)
	what := "Running"
	if req.dryRun {
		what = "Dry-running"
	}
	return &Submission{RunID: req.id, State: StateRunning, DryRun: req.dryRun,
		Message: what + " " + req.rb.ID + " as run " + req.id + "; the result will be posted."}, nil
}

func (r *request) stepsToRun() []renderedStep {
	if r.dryRun {
		return r.probes
	}
	return r.steps
}

// execute is the run goroutine: it always releases the slots, records the
// end, audits and notifies.
func (e *Engine) execute(ctx context.Context, cancel context.CancelFunc, req *request) {
	defer e.wg.Done()
	defer cancel()
	res := e.run(ctx, req)
	now := e.clock.Now()
	e.mu.Lock()
	e.slots.release(req.rb, req.key, req.dryRun, res.Status == StatusSucceeded, now)
	e.mu.Unlock()
	// Recorded so a late click elsewhere reads "finished", not "running".
	sctx, scancel := e.notifyContext()
	if _, err := e.transition(sctx, req, func(r *request, now time.Time) { r.end(StateFinished, now) }); err != nil {
		e.log.Warn("recording a finished runbook request", zap.String("run_id", req.id), zap.Error(err))
	}
	scancel()

	ev := e.event(req, EventFinished)
	ev.Status, ev.ExitCode, ev.Reason = res.Status, &res.ExitCode, res.Reason
	ev.DurationMS = res.Finished.Sub(res.Started).Milliseconds()
	ev.Output = &res.OutputStats
	e.emit(ev)
	nctx, ncancel := e.notifyContext()
	defer ncancel()
	e.cfg.Notifier.RunFinished(nctx, res)
}

// errNoSecrets fails runs that need secrets when no resolver is configured.
var errNoSecrets = errors.New("no secret resolver configured")
