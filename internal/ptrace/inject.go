package ptrace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetSyscallAddr tells the tracee where a "syscall" instruction lives in its
// address space (normally inside [vdso]). It must be updated when that
// mapping moves.
func (t *Tracee) SetSyscallAddr(addr uint64) { t.syscallAddr = addr }

// SyscallAddr returns the address set by SetSyscallAddr.
func (t *Tracee) SyscallAddr() uint64 { return t.syscallAddr }

// EventMsg returns PTRACE_GETEVENTMSG of the last clone event seen during an
// injection: the new thread's or child's TID.
func (t *Tracee) EventMsg() uint { return t.eventMsg }

// Syscall injects one system call into the stopped thread and returns its raw
// result (a negative errno is returned as an error of type unix.Errno). The
// thread's own registers are put back on Detach.
func (t *Tracee) Syscall(nr uintptr, args ...uint64) (uint64, error) {
	return t.SyscallAfter(nil, nr, args...)
}

// SyscallAfter is Syscall with pre run on the tracer thread right before
// the call starts, in the same step: nothing else of cryo's runs between
// them (used to set ns_last_pid just before an injected clone).
func (t *Tracee) SyscallAfter(pre func() error, nr uintptr, args ...uint64) (uint64, error) {
	if len(args) > 6 {
		return 0, fmt.Errorf("syscall %d: %d arguments, at most 6", nr, len(args))
	}
	if err := t.loadRegs(); err != nil {
		return 0, err
	}
	var a [6]uint64
	copy(a[:], args)
	t.last = fmt.Sprintf("syscall %d(%#x, %#x, %#x, %#x, %#x, %#x): running", nr, a[0], a[1], a[2], a[3], a[4], a[5])
	var ret uint64
	var err error
	if t.guard != nil {
		err = t.tr.Do(func() (err error) {
			ret, err = t.guardedSyscall(pre, nr, a)
			return err
		})
	} else {
		err = t.legacySyscall(pre, nr, a, &ret)
	}
	if err != nil {
		t.last = t.last[:len(t.last)-len("running")] + "failed: " + err.Error()
		return 0, err
	}
	t.last = fmt.Sprintf("%s = %#x", t.last[:len(t.last)-len(": running")], ret)
	if int64(ret) < 0 && int64(ret) >= -4095 {
		return ret, unix.Errno(-int64(ret))
	}
	return ret, nil
}

// LastCall describes the last system call injected into the thread (with
// its result), or "" if none was.
func (t *Tracee) LastCall() string { return t.last }

// ExitWith makes the thread's process call exit_group(code) and waits until
// it has exited; the tracer's wait hands the zombie to its real parent.
func (t *Tracee) ExitWith(code int) error { return t.exitBy(unix.SYS_EXIT_GROUP, code) }

// ExitThread makes the thread (not the leader) call exit(0) and waits
// until it is gone; the rest of its process stays.
func (t *Tracee) ExitThread() error { return t.exitBy(unix.SYS_EXIT, 0) }

// KillWith kills the thread's process with sig through its default action,
// so that its exit status says it was killed by sig.
func (t *Tracee) KillWith(sig unix.Signal) error {
	return t.tr.Do(func() error {
		if err := setSigmask(t.Tid, 0); err != nil {
			return fmt.Errorf("thread %d: unblock signals: %w", t.Tid, err)
		}
		t.blocked = false
		if err := t.restoreRegs(); err != nil {
			return err
		}
		if err := unix.Tgkill(t.Pid, t.Tid, sig); err != nil {
			return fmt.Errorf("thread %d: send %v: %w", t.Tid, sig, err)
		}
		return t.runToDeath(sig)
	})
}

// runToDeath resumes the thread until it exits, delivering sig when it
// stops for it. Runs on the tracer thread.
func (t *Tracee) runToDeath(sig unix.Signal) error {
	deliver := 0
	for {
		// A thread SIGKILL hit is no longer in a ptrace stop (ESRCH): it
		// is on its way out, and the wait below sees it go.
		if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, uintptr(deliver)); err != nil && err != unix.ESRCH {
			return fmt.Errorf("thread %d: continue: %w", t.Tid, err)
		}
		ws, err := t.wait()
		if err != nil {
			return fmt.Errorf("thread %d: wait: %w", t.Tid, err)
		}
		if ws.Exited() || ws.Signaled() {
			return nil
		}
		deliver = 0
		if ws.Stopped() && event(ws) == 0 && ws.StopSignal() == sig {
			deliver = int(sig)
		}
	}
}
