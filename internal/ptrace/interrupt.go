package ptrace

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Seizing a frozen cgroup (CRIU's freeze_cgroup). A thread the cgroup v1
// freezer holds does not stop for PTRACE_INTERRUPT until it is thawed,
// so Seize, which waits for the stop, cannot be used on it. Instead every
// thread of the frozen cgroup is attached and asked to stop with Interrupt
// while nothing in the cgroup runs; the cgroup is then thawed, and each
// thread stops on its way back to user space, before it runs another
// instruction of its own (a fork it makes meanwhile is followed, the
// options being set at the attach). Seize of such a thread only waits for
// that stop; ReleaseInterrupted lets go of the ones no Seize took.

// Interrupt attaches to thread tid of process pid with PTRACE_SEIZE and
// asks it to stop with PTRACE_INTERRUPT, without waiting for the stop. A
// later Seize of tid waits for it instead of attaching again.
func (tr *Tracer) Interrupt(pid, tid int) error {
	return tr.Do(func() error {
		if err := ptrace(unix.PTRACE_SEIZE, tid, 0, baseOptions); err != nil {
			return fmt.Errorf("seize thread %d: %w", tid, err)
		}
		if err := ptrace(unix.PTRACE_INTERRUPT, tid, 0, 0); err != nil {
			// Attached but not asked to stop: let it go again.
			ptrace(unix.PTRACE_DETACH, tid, 0, 0)
			return fmt.Errorf("interrupt thread %d: %w", tid, err)
		}
		if tr.interrupted == nil {
			tr.interrupted = map[int]int{}
		}
		tr.interrupted[tid] = pid
		return nil
	})
}

// takeInterrupted reports whether tid was attached by Interrupt and not
// yet taken, and marks it taken. Runs on the tracer thread.
func (tr *Tracer) takeInterrupted(tid int) bool {
	if _, ok := tr.interrupted[tid]; !ok {
		return false
	}
	delete(tr.interrupted, tid)
	return true
}

// ReleaseInterrupted detaches the threads Interrupt attached that no Seize
// took, once each has stopped (signals intercepted meanwhile are queued
// again), and returns how many there were. A thread that exited is
// skipped. The first error is returned after every thread was tried.
func (tr *Tracer) ReleaseInterrupted() (int, error) {
	var tids []int
	var first error
	err := tr.Do(func() error {
		for tid := range tr.interrupted {
			tids = append(tids, tid)
		}
		sort.Ints(tids)
		for _, tid := range tids {
			t := &Tracee{tr: tr, Tid: tid, Pid: tr.interrupted[tid]}
			delete(tr.interrupted, tid)
			if err := t.waitStop(true); err != nil {
				continue // it exited: nothing to let go
			}
			for _, info := range t.intercepted {
				requeue(t.Pid, t.Tid, info)
			}
			if err := ptrace(unix.PTRACE_DETACH, tid, 0, 0); err != nil && first == nil {
				first = fmt.Errorf("detach thread %d: %w", tid, err)
			}
		}
		return nil
	})
	if err != nil {
		return len(tids), err
	}
	return len(tids), first
}
