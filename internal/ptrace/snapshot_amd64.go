package ptrace

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoSnapshot is wrapped by Snapshot's error when the process cannot be
// snapshotted safely: its injections are not guarded, so no exit path for
// the child can be built from the process's own code.
var ErrNoSnapshot = errors.New("no guarded injection: no safe exit path for a snapshot child")

// SnapshotAreaSize is the room Snapshot needs at its area, for a thread
// whose XSAVE area has xsize bytes (0 when it is not guarded).
func SnapshotAreaSize(xsize int) uint64 {
	if xsize == 0 {
		return 0
	}
	return frameSlot(xsize) + 3*frameLen(xsize)
}

// XstateSize is the size of the thread's XSAVE area as the guard saved it
// (0 when the thread is not guarded).
func (t *Tracee) XstateSize() int {
	if t.guard == nil {
		return 0
	}
	return len(t.guard.xstate)
}

// Offsets in a frame of the registers Snapshot patches.
const (
	frameRdi = sfMcontext + 8*8
	frameRdx = sfMcontext + 8*12
	frameRax = sfMcontext + 8*13
)

// Snapshot makes a copy-on-write copy of t's process, a process that is
// not its child, and returns it stopped (traced). area is 64-byte aligned
// scratch memory of the process, SnapshotAreaSize bytes, unused meanwhile.
//
// How, and why each step is safe if cryo dies at any instant (no process
// of the tree may run the copy's code or keep a zombie):
//
//  1. Three frames are written in area: E makes a thread exit(0) with
//     every signal blocked; F1 makes it call wait4(pid, __WALL) and then
//     go on to F2; F2 is t's own state, as its guard frame.
//  2. clone(CLONE_VM|CLONE_FILES, exit signal 0, stack E) is injected
//     into t with its stack at F1 (instead of its guard frame): A shares
//     t's memory, so only B's clone copies page tables. A stops at
//     birth (auto-attached). If cryo dies, A returns from clone to the
//     "syscall; ret" gadget's ret, which pops E's pretcode: it exits; t
//     runs F1's wait4, which reaps A, then F2 puts it back as it was.
//     Until A's pid is written into F1, F1 waits with pid -1 and __WCLONE
//     (only children with exit signal 0, such as A).
//  3. clone(CLONE_FILES, exit signal 0, stack E) is injected into A
//     (guarded, its frame below E, which is A's own state: its exit). The
//     grandchild B, with a copy-on-write copy of the memory, is the
//     snapshot; its stack is E too.
//  4. setsid is injected into B (guarded the same way: its frame is its
//     exit), so that B is in no session of the tree.
//  5. A is killed and reaped by cryo, then by t (an injected wait4, which
//     replaces the F1 chain). B, orphaned, belongs to the nearest child
//     subreaper or init, which reap it when it exits: cryo kills it once
//     its pages are read, or it exits by E if cryo dies.
//
// CLONE_FILES shares the descriptor table: the copies hold no extra
// reference to pipes or sockets, and their exit closes nothing.
func (t *Tracee) Snapshot(area uint64) (*Tracee, error) {
	if t.guard == nil {
		return nil, ErrNoSnapshot
	}
	if area%frameAlign != 0 {
		return nil, fmt.Errorf("snapshot of %d: area %#x is not aligned", t.Pid, area)
	}
	if err := t.loadRegs(); err != nil {
		return nil, err
	}
	xs := t.guard.xstate
	g := t.guard.g.gadgets
	n := frameLen(len(xs))
	e := area + frameSlot(len(xs)) // room below it for A's own frame
	f1, f2 := e+n, e+2*n

	var mask uint64
	if err := t.tr.Do(func() (err error) { mask, err = t.origMask(); return err }); err != nil {
		return nil, fmt.Errorf("snapshot of %d: signal mask: %w", t.Pid, err)
	}
	exit := t.regs
	exit.Rip, exit.Rax, exit.Orig_rax, exit.Rdi, exit.Rsp = g.SyscallRet, unix.SYS_EXIT, ^uint64(0), 0, e
	reap := t.regs
	reap.Rip, reap.Rax, reap.Orig_rax, reap.Rsp = g.SyscallRet, unix.SYS_WAIT4, ^uint64(0), f2
	reap.Rdi, reap.Rsi, reap.Rdx, reap.R10 = ^uint64(0), 0, unix.WCLONE, 0
	fe, err := buildFrame(exit, ^uint64(0), xs, g.Sigreturn, e)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d: %w", t.Pid, err)
	}
	ff1, err := buildFrame(reap, ^uint64(0), xs, g.Sigreturn, f1)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d: %w", t.Pid, err)
	}
	ff2, err := buildFrame(resumable(t.regs, false), mask, xs, g.Sigreturn, f2)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %d: %w", t.Pid, err)
	}
	all := append(append(fe, ff1...), ff2...)
	if err := WriteMem(t.Pid, e, all); err != nil {
		return nil, fmt.Errorf("snapshot of %d: write its frames: %w", t.Pid, err)
	}

	t.chain = f1
	// A shares t's memory (CLONE_VM): copying the page tables once, for
	// B, is enough (a fork of 1 GiB copies 262144 entries).
	ret, err := t.Syscall(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_FILES, e, 0, 0, 0)
	t.chain = 0
	if err != nil {
		// No child: F1 must not wait for anything.
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], unix.SYS_GETPID)
		WriteMem(t.Pid, f1+frameRax, b[:])
		return nil, fmt.Errorf("snapshot of %d: clone: %w", t.Pid, err)
	}
	a := int(ret)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(a))
	perr := WriteMem(t.Pid, f1+frameRdi, b[:])
	binary.LittleEndian.PutUint64(b[:], unix.WALL)
	if err := WriteMem(t.Pid, f1+frameRdx, b[:]); perr == nil {
		perr = err
	}
	var snap *Tracee
	if perr == nil {
		snap, err = t.grandchild(a, e)
	} else {
		err = perr
	}
	// A goes, whatever happened: killed, reaped by cryo, then by t.
	unix.Kill(a, unix.SIGKILL)
	t.tr.reap(a)
	if _, werr := t.Syscall(unix.SYS_WAIT4, uint64(a), 0, unix.WALL, 0); werr != nil && err == nil {
		err = fmt.Errorf("reap %d: %w", a, werr)
	}
	if err != nil {
		if snap != nil {
			snap.Kill()
			snap.WaitExit()
		}
		return nil, fmt.Errorf("snapshot of %d: %w", t.Pid, err)
	}
	return snap, nil
}

// grandchild adopts t's clone a, stopped at birth, and makes it clone the
// snapshot (stack e, its exit frame), which it returns stopped.
func (t *Tracee) grandchild(a int, e uint64) (*Tracee, error) {
	ta, err := t.tr.Adopt(a, a)
	if err != nil {
		return nil, fmt.Errorf("child %d: %w", a, err)
	}
	if err := ta.SetGuard(NewGuard(t.guard.g.gadgets)); err != nil {
		return nil, fmt.Errorf("child %d: %w", a, err)
	}
	ret, err := ta.Syscall(unix.SYS_CLONE, unix.CLONE_FILES, e, 0, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("child %d: clone: %w", a, err)
	}
	b := int(ret)
	tb, err := t.tr.Adopt(b, b)
	if err != nil {
		unix.Kill(b, unix.SIGKILL)
		t.tr.reap(b)
		return nil, fmt.Errorf("grandchild %d: %w", b, err)
	}
	// A session of its own: once dead, until init reaps it, the snapshot
	// must not pass for a process of the tree's session outside the tree
	// (the next dump would refuse the tree).
	err = tb.SetGuard(NewGuard(t.guard.g.gadgets))
	if err == nil {
		_, err = tb.Syscall(unix.SYS_SETSID)
	}
	if err != nil {
		tb.Kill()
		tb.WaitExit()
		return nil, fmt.Errorf("grandchild %d: setsid: %w", b, err)
	}
	return tb, nil
}

// reap waits until the killed tracee pid is gone (bounded), as WaitExit.
func (tr *Tracer) reap(pid int) { (&Tracee{tr: tr, Tid: pid, Pid: pid}).WaitExit() }
