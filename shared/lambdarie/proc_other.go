//go:build unix && !linux

package lambdarie

import (
	"syscall"
	"time"
)

// sysProcAttr puts the emulator in a process group of its own, so that Close can signal it.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// proc is a process the emulator started. Without /proc, the emulator's children are not
// tracked here: Close relies on the emulator killing its runtime on SIGTERM.
type proc struct{ pid int }

func children(int) []proc { return nil }

func (p proc) killGroup() {}

func procOf(pid int) proc { return proc{pid: pid} }

func (p proc) waitGone(time.Duration) bool { return true }
