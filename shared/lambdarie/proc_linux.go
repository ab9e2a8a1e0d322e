package lambdarie

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr puts the emulator in a process group of its own (so that Close can signal it
// and whatever it left) and asks the kernel to send it SIGTERM if this process dies first, on
// which it kills its runtime and exits: a test binary killed on -timeout leaves no emulator.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// proc identifies a process beyond its pid, which the kernel may reuse: by its start time.
type proc struct {
	pid   int
	start string
}

// procOf identifies the running process pid (a zero start when it is gone).
func procOf(pid int) proc {
	_, _, start, _ := stat(pid)
	return proc{pid: pid, start: start}
}

// stat returns a process's parent pid, state and start time from /proc/PID/stat.
func stat(pid int) (ppid int, state, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, "", "", false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], f[19], true
}

// children lists the live child processes of pid.
func children(pid int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, start, ok := stat(p); ok && ppid == pid && state != "Z" {
			out = append(out, proc{pid: p, start: start})
		}
	}
	return out
}

// alive reports whether the process still runs (a zombie has ended: only its exit status is
// left for its parent to collect).
func (p proc) alive() bool {
	_, state, start, ok := stat(p.pid)
	return ok && start == p.start && state != "Z" && state != "X"
}

// killGroup sends SIGKILL to the process and its group (the emulator starts the runtime as a
// group leader), unless the pid now belongs to another process.
func (p proc) killGroup() {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

func (p proc) waitGone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for p.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
