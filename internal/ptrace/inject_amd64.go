package ptrace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// syscallInsnLen is the length of the x86-64 "syscall" instruction (0f 05).
const syscallInsnLen = 2

// SyscallInsn is the byte pattern of the "syscall" instruction.
var SyscallInsn = []byte{0x0f, 0x05}

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

// legacySyscall injects a call by single-stepping the "syscall"
// instruction set by SetSyscallAddr: used for restore's stubs, which die
// with cryo anyway.
func (t *Tracee) legacySyscall(pre func() error, nr uintptr, a [6]uint64, retp *uint64) error {
	if t.syscallAddr == 0 {
		return fmt.Errorf("thread %d: no syscall instruction known", t.Tid)
	}
	return t.tr.Do(func() error {
		if err := t.blockSignals(); err != nil {
			return err
		}
		r := t.regs
		r.Rax = uint64(nr)
		r.Orig_rax = ^uint64(0) // not in a syscall: no restart fixups
		r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
		r.Rip = t.syscallAddr
		if err := unix.PtraceSetRegs(t.Tid, &r); err != nil {
			return fmt.Errorf("thread %d: set registers for syscall %d: %w", t.Tid, nr, err)
		}
		t.dirty = true
		if pre != nil {
			if err := pre(); err != nil {
				return err
			}
		}
		if err := t.step(nr); err != nil {
			return err
		}
		if err := unix.PtraceGetRegs(t.Tid, &r); err != nil {
			return fmt.Errorf("thread %d: get registers after syscall %d: %w", t.Tid, nr, err)
		}
		*retp = r.Rax
		return nil
	})
}

// step single-steps over the syscall instruction, handling the stops that
// can come first: clone events, and signals (kept and delivered later).
func (t *Tracee) step(nr uintptr) error {
	for {
		if err := ptrace(unix.PTRACE_SINGLESTEP, t.Tid, 0, 0); err != nil {
			return fmt.Errorf("thread %d: single-step syscall %d: %w", t.Tid, nr, err)
		}
		ws, err := wait(t.Tid)
		if err != nil {
			return fmt.Errorf("thread %d: wait for syscall %d: %w", t.Tid, nr, err)
		}
		if ws.Exited() || ws.Signaled() {
			return fmt.Errorf("syscall %d: %w", nr, exitError(t.Tid, ws))
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		if ev := event(ws); ev != 0 {
			if ev == unix.PTRACE_EVENT_CLONE || ev == unix.PTRACE_EVENT_FORK || ev == unix.PTRACE_EVENT_VFORK {
				msg, err := unix.PtraceGetEventMsg(t.Tid)
				if err != nil {
					return fmt.Errorf("thread %d: event message: %w", t.Tid, err)
				}
				t.eventMsg = msg
			}
			continue
		}
		switch sig {
		case unix.SIGTRAP:
			var r unix.PtraceRegs
			if err := unix.PtraceGetRegs(t.Tid, &r); err != nil {
				return fmt.Errorf("thread %d: get registers: %w", t.Tid, err)
			}
			if r.Rip == t.syscallAddr+syscallInsnLen {
				return nil
			}
			// A trap before the instruction ran: step again.
		case unix.SIGSEGV, unix.SIGBUS, unix.SIGILL, unix.SIGFPE:
			return fmt.Errorf("thread %d: %v while injecting syscall %d", t.Tid, sig, nr)
		default:
			// Only unblockable signals get here (all others are blocked).
			if err := t.intercept(sig); err != nil {
				return err
			}
		}
	}
}

// ExitWith makes the thread's process call exit_group(code) and waits until
// it has exited; the tracer's wait hands the zombie to its real parent.
func (t *Tracee) ExitWith(code int) error { return t.exitBy(unix.SYS_EXIT_GROUP, code) }

// ExitThread makes the thread (not the leader) call exit(0) and waits
// until it is gone; the rest of its process stays.
func (t *Tracee) ExitThread() error { return t.exitBy(unix.SYS_EXIT, 0) }

// exitBy sends the thread into exit system call nr with code, and waits
// until it has exited.
func (t *Tracee) exitBy(nr uint64, code int) error {
	if err := t.loadRegs(); err != nil {
		return err
	}
	return t.tr.Do(func() error {
		r := t.regs
		r.Rax, r.Orig_rax, r.Rdi, r.Rip = nr, ^uint64(0), uint64(code), t.syscallAddr
		if err := unix.PtraceSetRegs(t.Tid, &r); err != nil {
			return fmt.Errorf("thread %d: set registers for exit: %w", t.Tid, err)
		}
		return t.runToDeath(0)
	})
}

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
		ws, err := wait(t.Tid)
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
