package ptrace

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoSnapshot is wrapped by Snapshot's error when the process cannot be
// snapshotted safely: its injections are not guarded, so no exit path for
// the child can be built from the process's own code.
var ErrNoSnapshot = errors.New("no guarded injection: no safe exit path for a snapshot child")

// SnapshotFrameSize is the room Snapshot needs at frameAt for the child's
// exit frame, for a thread whose XSAVE area has xsize bytes.
func SnapshotFrameSize(xsize int) uint64 { return frameLen(xsize) }

// XstateSize is the size of the thread's XSAVE area as the guard saved it
// (0 when the thread is not guarded).
func (t *Tracee) XstateSize() int {
	if t.guard == nil {
		return 0
	}
	return len(t.guard.xstate)
}

// Snapshot makes a copy-on-write copy of t's process: it injects
// clone(CLONE_FILES, exit signal 0) into t and returns the child, stopped
// at birth (it is auto-attached: the tree is seized with
// PTRACE_O_TRACECLONE). The child never runs the process's code:
//
//   - its stack pointer is frameAt, where Snapshot first writes a signal
//     frame whose registers make it call exit(0) from the process's own
//     "syscall; ret" gadget, with every signal blocked. If cryo dies, the
//     child is detached, returns from clone to that gadget's "ret", which
//     pops the frame's pretcode (the rt_sigreturn gadget), and exits;
//   - CLONE_FILES shares the descriptor table, so the child holds no extra
//     reference to pipes or sockets, and its exit closes nothing;
//   - exit signal 0 sends no SIGCHLD to the process, and only
//     wait4(__WALL) sees the child: the caller kills it, reaps it as its
//     tracer, and then has the process reap it (see ReapChild).
//
// frameAt must be 64-byte aligned, in writable memory of the process that
// nothing else uses until the clone is done, with SnapshotFrameSize bytes.
func (t *Tracee) Snapshot(frameAt uint64) (*Tracee, error) {
	if t.guard == nil {
		return nil, ErrNoSnapshot
	}
	if frameAt%frameAlign != 0 {
		return nil, fmt.Errorf("snapshot of %d: frame address %#x is not aligned", t.Pid, frameAt)
	}
	if err := t.loadRegs(); err != nil {
		return nil, err
	}
	r := t.regs
	r.Rip = t.guard.g.gadgets.SyscallRet
	r.Rax = unix.SYS_EXIT
	r.Orig_rax = ^uint64(0)
	r.Rdi = 0
	r.Rsp = frameAt
	f, err := buildFrame(r, ^uint64(0), t.guard.xstate, t.guard.g.gadgets.Sigreturn, frameAt)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d: %w", t.Pid, err)
	}
	if err := WriteMem(t.Pid, frameAt, f); err != nil {
		return nil, fmt.Errorf("snapshot of %d: write the child's exit frame: %w", t.Pid, err)
	}
	ret, err := t.Syscall(unix.SYS_CLONE, unix.CLONE_FILES, frameAt, 0, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d: clone: %w", t.Pid, err)
	}
	pid := int(ret)
	c, err := t.tr.Adopt(pid, pid)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		t.tr.reap(pid)
		return nil, fmt.Errorf("snapshot of %d: child %d: %w", t.Pid, pid, err)
	}
	return c, nil
}

// reap waits until the killed tracee pid is gone (bounded), as WaitExit.
func (tr *Tracer) reap(pid int) { (&Tracee{tr: tr, Tid: pid, Pid: pid}).WaitExit() }
