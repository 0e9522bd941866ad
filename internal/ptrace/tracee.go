package ptrace

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Tracee is one traced thread. Its methods must be called through its
// Tracer (they call Do themselves), so they are safe from any goroutine,
// but a Tracee is not meant for concurrent use.
type Tracee struct {
	tr  *Tracer
	Tid int
	// Pid is the thread-group id the thread belongs to.
	Pid int

	regs      unix.PtraceRegs // registers at the stop, restored by Detach
	regsValid bool
	dirty     bool // registers changed since the stop

	syscallAddr uint64 // address of a "syscall" instruction in the tracee
	eventMsg    uint   // PTRACE_GETEVENTMSG of the last clone/fork event

	// GroupStopped is true when the thread was found in a group stop
	// (the process was stopped by SIGSTOP/SIGTSTP before we came).
	GroupStopped bool
	// pending holds signals that arrived while we held the thread; they
	// are delivered again on Detach so that none is lost.
	pending []syscall.Signal
}

// Tracer returns the tracer owning t.
func (t *Tracee) Tracer() *Tracer { return t.tr }

// event returns the PTRACE_EVENT_* number of a stop status, or 0.
func event(ws unix.WaitStatus) int { return int(uint32(ws)>>16) & 0xff }

func wait(tid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(tid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		return ws, err
	}
}

func exitError(tid int, ws unix.WaitStatus) error {
	if ws.Signaled() {
		return fmt.Errorf("thread %d was killed by %v", tid, ws.Signal())
	}
	return fmt.Errorf("thread %d exited with status %d", tid, ws.ExitStatus())
}

// Seize attaches to thread tid of process pid with PTRACE_SEIZE and stops it
// with PTRACE_INTERRUPT. Signals that arrive meanwhile are kept and delivered
// again on Detach.
func (tr *Tracer) Seize(pid, tid int) (*Tracee, error) {
	t := &Tracee{tr: tr, Tid: tid, Pid: pid}
	err := tr.Do(func() error {
		if err := ptrace(unix.PTRACE_SEIZE, tid, 0, baseOptions); err != nil {
			return fmt.Errorf("seize thread %d: %w", tid, err)
		}
		if err := ptrace(unix.PTRACE_INTERRUPT, tid, 0, 0); err != nil {
			return fmt.Errorf("interrupt thread %d: %w", tid, err)
		}
		return t.waitStop(true)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// waitStop waits until the thread sits in a ptrace stop we can work in.
// With interrupted set it expects the stop caused by PTRACE_INTERRUPT and
// moves signal-delivery stops out of the way.
func (t *Tracee) waitStop(interrupted bool) error {
	for {
		ws, err := wait(t.Tid)
		if err != nil {
			return fmt.Errorf("wait thread %d: %w", t.Tid, err)
		}
		if ws.Exited() || ws.Signaled() {
			return exitError(t.Tid, ws)
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		switch ev := event(ws); {
		case ev == unix.PTRACE_EVENT_STOP:
			// Interrupt stop (SIGTRAP) or group stop (stop signal).
			t.GroupStopped = sig != unix.SIGTRAP
			return nil
		case ev != 0:
			// A fork/clone event the thread was about to report: let it go on;
			// the interrupt is still pending and stops it right after.
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
		case !interrupted:
			// Auto-attached children start in a SIGSTOP signal-delivery stop;
			// the stub starts in the SIGTRAP of its execve.
			if sig == unix.SIGSTOP || sig == unix.SIGTRAP {
				return nil
			}
			t.pending = append(t.pending, sig)
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
		default:
			// A signal was being delivered: keep it for later and let the
			// pending interrupt stop the thread.
			t.pending = append(t.pending, sig)
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
			if err := ptrace(unix.PTRACE_INTERRUPT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("interrupt thread %d: %w", t.Tid, err)
			}
		}
	}
}

// PendingSignals returns the signals intercepted while the thread was held.
func (t *Tracee) PendingSignals() []syscall.Signal { return t.pending }

// Regs returns the registers the thread had when it stopped (or the ones
// set last by SetRegs).
func (t *Tracee) Regs() (unix.PtraceRegs, error) {
	if err := t.loadRegs(); err != nil {
		return unix.PtraceRegs{}, err
	}
	return t.regs, nil
}

func (t *Tracee) loadRegs() error {
	if t.regsValid {
		return nil
	}
	return t.tr.Do(func() error {
		if err := unix.PtraceGetRegs(t.Tid, &t.regs); err != nil {
			return fmt.Errorf("get registers of thread %d: %w", t.Tid, err)
		}
		t.regsValid = true
		return nil
	})
}

// SetRegs replaces the registers the thread resumes with.
func (t *Tracee) SetRegs(r unix.PtraceRegs) error {
	return t.tr.Do(func() error {
		if err := unix.PtraceSetRegs(t.Tid, &r); err != nil {
			return fmt.Errorf("set registers of thread %d: %w", t.Tid, err)
		}
		t.regs, t.regsValid, t.dirty = r, true, false
		return nil
	})
}

// SetOptions sets ptrace options (PTRACE_O_*) on top of clone following.
func (t *Tracee) SetOptions(extra int) error {
	return t.tr.Do(func() error {
		if err := ptrace(unix.PTRACE_SETOPTIONS, t.Tid, 0, uintptr(baseOptions|extra)); err != nil {
			return fmt.Errorf("set ptrace options of thread %d: %w", t.Tid, err)
		}
		return nil
	})
}

// restoreRegs puts back the registers saved at the stop if an injection
// changed them. Runs on the tracer thread.
func (t *Tracee) restoreRegs() error {
	if !t.dirty {
		return nil
	}
	if err := unix.PtraceSetRegs(t.Tid, &t.regs); err != nil {
		return fmt.Errorf("restore registers of thread %d: %w", t.Tid, err)
	}
	t.dirty = false
	return nil
}

// Detach restores the registers if injections changed them, detaches, and
// delivers again the signals intercepted while the thread was held.
func (t *Tracee) Detach() error {
	return t.tr.Do(func() error {
		if err := t.restoreRegs(); err != nil {
			return err
		}
		if err := ptrace(unix.PTRACE_DETACH, t.Tid, 0, 0); err != nil {
			return fmt.Errorf("detach thread %d: %w", t.Tid, err)
		}
		for _, sig := range t.pending {
			// Best effort: the signal was already dequeued once; queue it again.
			_ = unix.Tgkill(t.Pid, t.Tid, sig)
		}
		t.pending = nil
		return nil
	})
}

// Kill sends SIGKILL to the thread group (the caller reaps it).
func (t *Tracee) Kill() error {
	if err := unix.Kill(t.Pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill %d: %w", t.Pid, err)
	}
	return nil
}
