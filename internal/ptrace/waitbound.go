package ptrace

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Every wait for a tracee's stop is bounded: a thread that never reaches
// the stop cryo waits for (a process frozen by its cgroup's freezer, a
// thread in uninterruptible sleep) must make cryo fail in one line, not
// hang it forever, even to SIGTERM (a dump notices a signal between its
// steps only).
//
// A wait first polls (wait4 WNOHANG, yielding in between): a tracee
// usually stops within microseconds. After that it blocks in wait4 on
// another goroutine (any thread of cryo may wait for the tracer thread's
// tracees) and gives up after the tracer's stop timeout. The wait4 then
// stays pending; the thread is marked stuck and its next wait takes that
// pending result first, so no stop is lost to a stale wait.

// DefaultStopTimeout bounds each wait for a ptrace stop. Long enough for
// a thread on a loaded machine or a slow injected call (the munmap or the
// fork of a large process), short enough that a user gets an answer.
const DefaultStopTimeout = 30 * time.Second

// StopTimeoutEnv overrides DefaultStopTimeout (a Go duration, e.g. "5s").
const StopTimeoutEnv = "CRYO_STOP_TIMEOUT"

// stuckRecheck bounds the waits for a thread already stuck once: what is
// left to do with it is a rollback, which must not wait that long again.
const stuckRecheck = 500 * time.Millisecond

// spinWaits is how many times a wait polls before it blocks.
const spinWaits = 200

// ErrNoStop is wrapped by the error of a wait that timed out.
var ErrNoStop = errors.New("did not stop")

// waitResult is what one wait4 for a tracee returned.
type waitResult struct {
	ws  unix.WaitStatus
	err error
}

// stopTimeoutFromEnv reads StopTimeoutEnv; invalid or absent values give
// DefaultStopTimeout.
func stopTimeoutFromEnv() time.Duration {
	if v := os.Getenv(StopTimeoutEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return DefaultStopTimeout
}

// wait waits for the next state change of the thread, at most the
// tracer's stop timeout (stuckRecheck once it was stuck). Runs on the
// tracer thread.
func (t *Tracee) wait() (unix.WaitStatus, error) {
	if t.pending == nil {
		for i := 0; i < spinWaits; i++ {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(t.Tid, &ws, unix.WALL|unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return ws, err
			}
			if pid == t.Tid {
				return ws, nil
			}
			unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		}
		ch := make(chan waitResult, 1)
		go func(tid int) {
			ws, err := wait(tid)
			ch <- waitResult{ws, err}
		}(t.Tid)
		t.pending = ch
	}
	limit := t.tr.stopTimeout
	if t.stuck {
		limit = stuckRecheck
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-t.pending:
		t.pending = nil
		return r.ws, r.err
	case <-timer.C:
		t.stuck = true
		return 0, t.noStopError(limit)
	}
}

// noStopError says which thread did not stop, and what it was doing.
func (t *Tracee) noStopError(limit time.Duration) error {
	task := fmt.Sprintf("/proc/%d/task/%d/", t.Pid, t.Tid)
	state := "?"
	if b, err := os.ReadFile(task + "stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
			state = string(b[i+2])
		}
	}
	wchan, _ := os.ReadFile(task + "wchan")
	why := fmt.Sprintf("state %s", state)
	if w := strings.TrimSpace(string(wchan)); w != "" && w != "0" {
		why += ", waiting in " + w
	}
	hint := ""
	if cg := proc.FrozenCgroup(t.Pid); cg != "" {
		hint = fmt.Sprintf(": its cgroup %s is frozen, thaw it first", cg)
	} else if state == "D" {
		hint = ": it is in uninterruptible sleep"
	}
	return fmt.Errorf("process %d thread %d %w within %v (%s)%s", t.Pid, t.Tid, ErrNoStop, limit, why, hint)
}

// Stuck tells whether a wait for the thread timed out and it has not
// been brought back to a stop since.
func (t *Tracee) Stuck() bool { return t.stuck }

// Recover tries to bring a stuck thread back to an interrupt stop, so that
// a rollback can put it back as it was; it does nothing for a thread that
// is not stuck. If the thread still does not stop, it stays as it is:
// when cryo exits the kernel detaches it, and a guarded injection
// (guard_amd64.go) takes it back to its own state by itself.
func (t *Tracee) Recover() error {
	return t.tr.Do(t.recoverStop)
}

// recoverStop is Recover on the tracer thread.
func (t *Tracee) recoverStop() error {
	if !t.stuck {
		return nil
	}
	if err := ptrace(unix.PTRACE_INTERRUPT, t.Tid, 0, 0); err != nil {
		return fmt.Errorf("interrupt stuck thread %d: %w", t.Tid, err)
	}
	for {
		ws, err := t.wait()
		if err != nil {
			return err
		}
		if ws.Exited() || ws.Signaled() {
			return exitError(t.Tid, ws)
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		switch ev := event(ws); {
		case ev == unix.PTRACE_EVENT_STOP || sig == unix.SIGTRAP|0x80:
			// An interrupt (or group) stop, or the syscall stop the
			// stuck wait was for: a stop a rollback can work from.
			t.stuck = false
			return nil
		case ev != 0:
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
		default:
			// A signal being delivered: kept for Detach, as waitStop does.
			if err := t.intercept(sig); err != nil {
				return err
			}
			if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("continue thread %d: %w", t.Tid, err)
			}
			if err := ptrace(unix.PTRACE_INTERRUPT, t.Tid, 0, 0); err != nil {
				return fmt.Errorf("interrupt thread %d: %w", t.Tid, err)
			}
		}
	}
}
