//go:build unix && !linux

package runbook

import "syscall"

// sysProcAttr puts the child in its own process group so the whole tree can
// be signalled as -pgid. Pdeathsig is Linux-only.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
