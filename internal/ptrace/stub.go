package ptrace

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StubName is argv[0] of the blank stubs that restores and probes start
// from the program's own binary. They are stopped before any of their code
// runs; should one ever run, cryo.Init makes it leave at once.
const StubName = "cryo-restore-stub"

// StartStub forks and executes path with PTRACE_TRACEME, traced by the tracer
// thread. The stub stops with SIGTRAP right after execve, before any of its
// own code runs, so it is a blank process to build into. files become the
// stub's descriptors 0, 1, 2, ... The stub is killed if the tracer dies.
func (tr *Tracer) StartStub(path string, argv []string, files []uintptr) (*Tracee, error) {
	var t *Tracee
	err := tr.Do(func() error {
		pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Env:   []string{},
			Files: files,
			Sys:   &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL},
		})
		if err != nil {
			return fmt.Errorf("start stub %s: %w", path, err)
		}
		t = &Tracee{tr: tr, Tid: pid, Pid: pid}
		if err := t.waitStop(false); err != nil {
			return fmt.Errorf("stub %d: %w", pid, err)
		}
		if err := ptrace(unix.PTRACE_SETOPTIONS, pid, 0, baseOptions|unix.PTRACE_O_EXITKILL); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("stub %d: set options: %w", pid, err)
		}
		return nil
	})
	return t, err
}

// Adopt returns the tracee for a thread or child that was auto-attached by
// a clone event (from an injected clone3) and waits for its first stop.
func (tr *Tracer) Adopt(pid, tid int) (*Tracee, error) {
	t := &Tracee{tr: tr, Tid: tid, Pid: pid}
	if err := tr.Do(func() error { return t.waitStop(false) }); err != nil {
		return nil, err
	}
	return t, nil
}

// ReapAll reaps every child of this process that has exited, without blocking.
func ReapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL|unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// WaitExit waits until the killed thread has exited and reaps it. It gives
// up after a few seconds rather than hang a cleanup.
func (t *Tracee) WaitExit() {
	_ = t.tr.Do(func() error {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(t.Tid, &ws, unix.WALL|unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || (pid == t.Tid && (ws.Exited() || ws.Signaled())) {
				return nil
			}
			if pid == t.Tid && ws.Stopped() {
				ptrace(unix.PTRACE_CONT, t.Tid, 0, 0)
				continue
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	})
}
