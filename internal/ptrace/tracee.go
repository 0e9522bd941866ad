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
	// StopSignal is the signal of that group stop (SIGSTOP, SIGTSTP,
	// SIGTTIN, SIGTTOU): the one the parent's waitpid(WUNTRACED) reports.
	StopSignal unix.Signal
	// intercepted holds the siginfo of signals that were being delivered
	// when we stopped the thread; they are queued again on Detach so that
	// none is lost, and a dump saves them with the pending ones.
	intercepted [][]byte

	// While we inject system calls every signal is blocked, so that queued
	// signals stay queued (with their siginfo) instead of being delivered
	// into our injected code. mask is the thread's own mask, put back on
	// Detach.
	blocked bool
	mask    uint64

	// guard is set for a thread whose injections survive cryo's death
	// (see guard_amd64.go); written is where its frame was written last.
	guard   *guardState
	written uint64
	// chain, when set, is the stack pointer of the next guarded call in
	// place of the thread's own frame: a chain of frames already written
	// (see Snapshot).
	chain uint64
	// last describes the last injected call, for failure reports.
	last string

	// pending is a wait4 for the thread still running on another
	// goroutine after a wait timed out; stuck says one did (see
	// waitbound.go).
	pending chan waitResult
	stuck   bool
}

// Tracer returns the tracer owning t.
func (t *Tracee) Tracer() *Tracer { return t.tr }

// event returns the PTRACE_EVENT_* number of a stop status, or 0.
func event(ws unix.WaitStatus) int { return int(uint32(ws)>>16) & 0xff }

// wait blocks until thread tid changes state (unbounded: only for the
// goroutine of a bounded wait, see Tracee.wait).
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
		if tr.takeInterrupted(tid) {
			// Attached and asked to stop by Interrupt already.
			return t.waitStop(true)
		}
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
		ws, err := t.wait()
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
			if t.GroupStopped {
				t.StopSignal = sig
			}
			return nil
		case ev != 0:
			// A fork/clone event the thread was about to report: let it go on;
			// the interrupt is still pending and stops it right after.
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
		case !interrupted && (sig == unix.SIGSTOP || sig == unix.SIGTRAP):
			// Auto-attached children start in a SIGSTOP signal-delivery stop;
			// the stub starts in the SIGTRAP of its execve.
			return nil
		default:
			// A signal was being delivered: keep it for later and let the
			// pending interrupt stop the thread.
			if err := t.intercept(sig); err != nil {
				return err
			}
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
			if !interrupted {
				continue
			}
			if err := ptrace(unix.PTRACE_INTERRUPT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("interrupt thread %d: %w", t.Tid, err)
			}
		}
	}
}

// intercept records the signal the thread is in a delivery stop for; the
// caller then resumes it with signal 0, which suppresses the delivery.
// Runs on the tracer thread.
func (t *Tracee) intercept(sig syscall.Signal) error {
	info, err := getSiginfo(t.Tid)
	if err != nil {
		return fmt.Errorf("thread %d: siginfo of %v: %w", t.Tid, sig, err)
	}
	t.intercepted = append(t.intercepted, info)
	return nil
}

// InterceptedSignals returns the siginfo of signals that were being
// delivered when the thread was stopped; they precede its pending ones.
func (t *Tracee) InterceptedSignals() [][]byte { return t.intercepted }

// blockSignals blocks every signal while injections run. Runs on the
// tracer thread.
func (t *Tracee) blockSignals() error {
	if t.blocked {
		return nil
	}
	mask, err := getSigmask(t.Tid)
	if err != nil {
		return fmt.Errorf("get signal mask of thread %d: %w", t.Tid, err)
	}
	t.mask = mask
	// SIGTRAP stays open: single-stepping raises it with force_sig, which
	// would reset a blocked SIGTRAP's handler to SIG_DFL.
	if err := setSigmask(t.Tid, ^uint64(0)&^(1<<(unix.SIGTRAP-1))); err != nil {
		return fmt.Errorf("block signals of thread %d: %w", t.Tid, err)
	}
	t.blocked = true
	return nil
}

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
		if err := t.recoverStop(); err != nil {
			return err
		}
		if t.guard != nil {
			if err := t.disarm(); err != nil {
				return err
			}
		}
		if err := t.restoreRegs(); err != nil {
			return err
		}
		if err := t.unblock(); err != nil {
			return err
		}
		for _, info := range t.intercepted {
			requeue(t.Pid, t.Tid, info)
		}
		t.intercepted = nil
		if err := ptrace(unix.PTRACE_DETACH, t.Tid, 0, 0); err != nil {
			return fmt.Errorf("detach thread %d: %w", t.Tid, err)
		}
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

// unblock puts back the signal mask saved when injections blocked every
// signal (t.blocked); it does nothing otherwise. Runs on the tracer thread.
func (t *Tracee) unblock() error {
	if !t.blocked {
		return nil
	}
	if err := setSigmask(t.Tid, t.mask); err != nil {
		return fmt.Errorf("restore signal mask of thread %d: %w", t.Tid, err)
	}
	t.blocked = false
	return nil
}
