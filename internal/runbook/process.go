package runbook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// procSpec is one process to run: argv only, never a shell.
type procSpec struct {
	argv  []string
	env   []string // complete; never inherited from the bot
	dir   string
	grace time.Duration // SIGTERM → SIGKILL
	drain time.Duration // wait for pipe EOF after the group is dead
}

// procOutcome is how a process ended.
type procOutcome struct {
	exitCode int   // -1 when killed by a signal or never started
	stopped  error // the context's error if the context ended the process
	err      error // failure to start
}

// runProcess runs spec with stdout and stderr on one pipe copied into out,
// stdin on /dev/null, in a new process group. When ctx ends it sends
// SIGTERM to the group, then SIGKILL after spec.grace. When the leader has
// exited, whatever is left in the group is killed, and the pipe is read
// until EOF for at most spec.drain (a grandchild that left the group may
// hold it open). It returns only when its goroutines are done.
func runProcess(ctx context.Context, spec procSpec, out io.Writer) procOutcome {
	pr, pw, err := os.Pipe()
	if err != nil {
		return procOutcome{exitCode: -1, err: fmt.Errorf("creating output pipe: %w", err)}
	}
	defer pr.Close()
	cmd := &exec.Cmd{
		Path:        spec.argv[0],
		Args:        spec.argv,
		Env:         spec.env,
		Dir:         spec.dir,
		Stdin:       nil, // /dev/null
		Stdout:      pw,  // an *os.File: handed to the child, no copying goroutine in os/exec
		Stderr:      pw,
		SysProcAttr: sysProcAttr(),
	}
	startErr := cmd.Start()
	pw.Close() // only the child (and its children) hold the write end now
	if startErr != nil {
		return procOutcome{exitCode: -1, err: fmt.Errorf("starting %s: %w", spec.argv[0], startErr)}
	}
	pgid := cmd.Process.Pid

	drained := make(chan struct{})
	go func() {
		defer close(drained)
		copyAll(out, pr)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var outcome procOutcome
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		outcome.stopped = ctx.Err()
		waitErr = terminateGroup(pgid, spec.grace, waited)
	}
	// Steps are synchronous: background processes left in the group die
	// with the step.
	_ = unix.Kill(-pgid, unix.SIGKILL)

	timer := time.NewTimer(spec.drain)
	select {
	case <-drained:
	case <-timer.C:
		_ = pr.SetReadDeadline(time.Now()) // unblocks the reader
		<-drained
	}
	timer.Stop()

	outcome.exitCode = -1
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		outcome.exitCode = 0
	case errors.As(waitErr, &exitErr):
		outcome.exitCode = exitErr.ExitCode() // -1 if signalled
	default:
		outcome.err = fmt.Errorf("waiting for %s: %w", spec.argv[0], waitErr)
	}
	return outcome
}

// terminateGroup sends SIGTERM to the group and SIGKILL after grace, and
// returns the leader's wait result.
func terminateGroup(pgid int, grace time.Duration, waited <-chan error) error {
	_ = unix.Kill(-pgid, unix.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-waited:
		return err
	case <-timer.C:
		_ = unix.Kill(-pgid, unix.SIGKILL)
		return <-waited
	}
}

// copyAll reads r to EOF (or error) into w. w never fails (outputSink),
// so the child is never left blocked on a full pipe.
func copyAll(w io.Writer, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}
