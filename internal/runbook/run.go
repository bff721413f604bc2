package runbook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Status is how a run ended.
type Status string

// Run statuses.
const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusTimedOut  Status = "timed_out"
	StatusCanceled  Status = "canceled"
)

// StepResult is one executed (or skipped) step.
type StepResult struct {
	Name     string
	Argv     []string // display form: secrets masked, redacted
	Status   Status
	ExitCode int // -1 if killed by a signal or not started
	Duration time.Duration
	Skipped  string // why a dry-run probe was not run; "" if it ran
}

// Result is the outcome of a run or dry run, delivered to
// Notifier.RunFinished. Output is already sanitised and redacted; Text is
// ready to post (inert mrkdwn within the runbook's chat limits).
type Result struct {
	RunID          string
	RunbookID      string
	RunbookVersion string
	Title          string
	DryRun         bool
	Requester      Actor
	ChannelID      string
	IncidentID     string
	Status         Status
	ExitCode       int    // of the last step that ran; -1 if none or signalled
	FailedStep     string // the step that did not succeed
	Reason         string // why it failed before or outside a step, if so
	Started        time.Time
	Finished       time.Time
	Steps          []StepResult
	// Planned is, for a dry run, the rendered argv of every real step.
	Planned []PlannedStep
	// Output is the retained redacted output (first 64 KiB, a marker, the
	// last part): store it with the run for "full output".
	Output      string
	OutputStats OutputStats
	// Where says whether Text goes to the thread or as an ephemeral reply.
	Where string
	Text  string
}

// run executes the request's steps (or dry-run probes) and builds the
// Result. It never panics on process trouble; everything becomes a status.
func (e *Engine) run(ctx context.Context, req *request) Result {
	rb := req.rb
	res := Result{
		RunID: req.id, RunbookID: rb.ID, RunbookVersion: rb.Version, Title: rb.Title, DryRun: req.dryRun,
		Requester: req.caller.actor(), ChannelID: req.channelID, IncidentID: req.incident.ID,
		Status: StatusSucceeded, ExitCode: -1, Started: e.clock.Now(), Where: rb.Output.Chat.Where,
	}
	if req.dryRun {
		res.Planned = req.plan(req.steps)
	}
	runCtx, cancel := context.WithTimeout(ctx, rb.Limits.Timeout)
	defer cancel()

	redactor, env, err := e.prepare(runCtx, req)
	if redactor == nil {
		redactor = newRedactor(nil, rb.Output.redact)
	}
	sink := newOutputSink(redactor, rb.Output.CaptureMaxBytes)
	if err == nil {
		e.runSteps(runCtx, req, env, sink, redactor, &res)
	} else {
		res.Status, res.Reason = StatusFailed, err.Error()
	}
	res.Output, res.OutputStats = sink.finish()
	res.Finished = e.clock.Now()
	res.Text = resultText(&res, rb.Output.Chat)
	return res
}

// prepare resolves secrets, builds the redactor that masks them and every
// secret parameter, and makes the per-run directory. The returned env
// still needs HOME/TMPDIR, which runSteps adds with the directory.
func (e *Engine) prepare(ctx context.Context, req *request) (*Redactor, []string, error) {
	rb := req.rb
	var secretValues []string
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	for _, v := range rb.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	for _, s := range rb.Secrets {
		if e.cfg.Secrets == nil {
			return nil, nil, fmt.Errorf("secret %s could not be resolved: %w", s.Ref, errNoSecrets)
		}
		v, err := e.cfg.Secrets.Resolve(ctx, s.Ref)
		if err != nil {
			e.log.Warn("secret resolution failed") // the error text may name paths; not logged
			return nil, nil, fmt.Errorf("secret %s could not be resolved; nothing was run", s.Ref)
		}
		secretValues = append(secretValues, v)
		env = append(env, s.Env+"="+v)
	}
	for _, p := range req.params {
		if p.Secret {
			secretValues = append(secretValues, p.Value)
		}
	}
	return newRedactor(secretValues, rb.Output.redact), env, nil
}

// runSteps executes steps in order in a fresh 0700 directory (HOME and
// TMPDIR), stopping at the first step that does not succeed.
func (e *Engine) runSteps(ctx context.Context, req *request, env []string, sink *outputSink, red *Redactor, res *Result) {
	dir, err := os.MkdirTemp(e.cfg.WorkDir, "runbook-"+req.id+"-")
	if err != nil {
		res.Status, res.Reason = StatusFailed, "could not create the run directory"
		e.log.Error("creating run directory failed")
		return
	}
	defer os.RemoveAll(dir)
	env = append(env, "HOME="+dir, "TMPDIR="+dir)
	steps := req.stepsToRun()
	for _, s := range steps {
		sr := e.runStep(ctx, req, s, env, dir, sink, red, len(steps) > 1)
		res.Steps = append(res.Steps, sr)
		if sr.Skipped != "" {
			continue
		}
		res.ExitCode = sr.ExitCode
		if sr.Status != StatusSucceeded {
			res.Status, res.FailedStep = sr.Status, s.step.Name
			return
		}
	}
}

func (e *Engine) runStep(ctx context.Context, req *request, s renderedStep, env []string, dir string, sink *outputSink, red *Redactor, header bool) StepResult {
	sr := StepResult{Name: s.step.Name, Argv: redactAll(red, s.display), ExitCode: -1}
	if s.step.Unavailable != "" {
		sr.Skipped = "probe skipped: " + s.step.Unavailable
		sink.note("==> " + sr.Name + ": " + sr.Skipped)
		return sr
	}
	if header {
		sink.note("==> " + sr.Name)
	}
	start := e.clock.Now()
	stepCtx, cancel := context.WithTimeout(ctx, s.step.Timeout)
	out := runProcess(stepCtx, procSpec{argv: s.argv, env: env, dir: dir, grace: e.cfg.KillGrace, drain: e.cfg.DrainTimeout}, sink)
	cancel()
	sink.endStep()
	sr.Duration = e.clock.Now().Sub(start)
	sr.ExitCode = out.exitCode
	switch {
	case errors.Is(out.stopped, context.DeadlineExceeded):
		sr.Status = StatusTimedOut
	case out.stopped != nil:
		sr.Status = StatusCanceled
	case out.err != nil:
		sr.Status = StatusFailed
		sink.note("==> " + sr.Name + ": could not be started")
		e.log.Warn("runbook step failed to start")
	case slices.Contains(req.rb.Output.SuccessExitCodes, out.exitCode):
		sr.Status = StatusSucceeded
	default:
		sr.Status = StatusFailed
	}
	ev := e.event(req, EventStepFinished)
	ev.Step, ev.Argv, ev.Status = sr.Name, sr.Argv, sr.Status
	ev.ExitCode, ev.DurationMS = &sr.ExitCode, sr.Duration.Milliseconds()
	e.emit(ev)
	return sr
}

func redactAll(r *Redactor, argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Redact(a)
	}
	return out
}

// resultText renders the result for chat: a status line, for dry runs the
// plan, and the output within the runbook's chat limits.
func resultText(res *Result, chat ChatOutput) string {
	var b strings.Builder
	what := "Run"
	if res.DryRun {
		what = "Dry run"
	}
	b.WriteString(what + " " + res.RunID + " of *" + EscapeSlack(res.Title) + "* (" + res.RunbookID + "): *" + string(res.Status) + "*")
	b.WriteString(" in " + res.Finished.Sub(res.Started).Round(time.Millisecond).String())
	if res.ExitCode >= 0 && len(res.Steps) > 0 {
		b.WriteString(", exit " + strconv.Itoa(res.ExitCode))
	}
	if res.FailedStep != "" {
		b.WriteString(", step " + res.FailedStep)
	}
	if res.Reason != "" {
		b.WriteString(": " + EscapeSlack(res.Reason))
	}
	b.WriteString("\n")
	if res.DryRun {
		b.WriteString("Nothing was changed.\n")
		writePlan(&b, "Would run", res.Planned)
		if len(res.Steps) == 0 {
			b.WriteString("No dry-run probes are declared.")
			return b.String()
		}
		b.WriteString("*Probe output:*\n")
	}
	header := b.String()
	budget := chat.MaxChars - len([]rune(header))
	if budget < 200 {
		budget = 200 // always leave room for the truncation note
	}
	return header + formatOutput(res.Output, res.OutputStats.BytesDropped, chat, budget, res.RunID)
}
