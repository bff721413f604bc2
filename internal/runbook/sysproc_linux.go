package runbook

import "syscall"

// sysProcAttr puts the child in its own process group (so the whole tree
// can be signalled as -pgid) and asks Linux to SIGKILL it if the bot dies.
// Pdeathsig fires when the forking OS thread exits; the Go runtime rarely
// retires threads, so this is a best-effort backstop, not the primary
// control (the group kill is).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
