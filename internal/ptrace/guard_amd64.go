package ptrace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Guarded injection: system calls injected into a thread of a tree being
// dumped run so that, if cryo dies at any instant (SIGKILL, OOM killer), the
// thread finds its own state again by itself.
//
// Each call runs from a "syscall; ret" sequence found in the thread's own
// code, with RSP pointing at a signal frame (struct rt_sigframe) that holds
// the thread's original registers, signal mask and XSAVE state. Its
// pretcode is a "mov $15,%rax; syscall" (rt_sigreturn) sequence of the
// thread's own code, such as glibc's __restore_rt. While cryo is alive it
// stops the thread at the call's syscall-exit stop and moves it on; if cryo
// is gone, the thread executes the "ret", pops pretcode, and rt_sigreturn
// puts back everything the frame holds. No code of the tracee is modified.
//
// The frame of the first call (the mmap of the scratch area) and of the
// last (its munmap) is on the thread's own stack, below the red zone; the
// others are in the scratch area, one per thread.

// Gadgets are the two code sequences of the tracee that guarded
// injection needs.
type Gadgets struct {
	// SyscallRet is the address of "syscall; ret" (0f 05 c3).
	SyscallRet uint64
	// Sigreturn is the address of "mov $15,%rax; syscall" or
	// "mov $15,%eax; syscall": an rt_sigreturn path of the tracee's.
	Sigreturn uint64
}

// Byte patterns of the gadgets.
const (
	syscallRetCode = "\x0f\x05\xc3"                         // syscall; ret
	sigreturnRax   = "\x48\xc7\xc0\x0f\x00\x00\x00\x0f\x05" // mov $15,%rax; syscall (glibc, Go)
	sigreturnEax   = "\xb8\x0f\x00\x00\x00\x0f\x05"         // mov $15,%eax; syscall (musl)
)

// gadgetChunk is how much of a mapping FindGadgets reads at a time, into
// one reused buffer: reading a large program's text whole into a fresh
// buffer cost about 100 ms of page faults per dump on this kind of VM.
const gadgetChunk = 1 << 20

// gadgetOverlap is how far consecutive chunks overlap, so that a gadget
// across a chunk boundary is found (longer than the longest gadget).
const gadgetOverlap = 16

// FindGadgets looks for the gadgets in the executable private mappings of
// process pid, smallest first: the vDSO and the C library usually hold
// both, and a large program text is then never read. ok is false when
// one is missing: the process's injections then cannot be guarded.
func FindGadgets(pid int, maps []proc.Mapping) (g Gadgets, ok bool) {
	var cand []proc.Mapping
	for _, m := range maps {
		if m.Prot&unix.PROT_EXEC == 0 || m.Shared || m.Path == "[vsyscall]" || m.Size() > 256<<20 {
			continue
		}
		cand = append(cand, m)
	}
	sort.SliceStable(cand, func(i, j int) bool { return cand[i].Size() < cand[j].Size() })
	var buf []byte
	for _, m := range cand {
		for off := uint64(0); off < m.Size(); off += gadgetChunk {
			n := min(m.Size()-off, gadgetChunk+gadgetOverlap)
			if uint64(cap(buf)) < n {
				buf = make([]byte, min(m.Size(), gadgetChunk+gadgetOverlap))
			}
			b := buf[:n]
			if ReadMem(pid, m.Start+off, b) != nil {
				break
			}
			at := m.Start + off
			if g.SyscallRet == 0 {
				if i := bytes.Index(b, []byte(syscallRetCode)); i >= 0 {
					g.SyscallRet = at + uint64(i)
				}
			}
			if g.Sigreturn == 0 {
				for _, code := range []string{sigreturnRax, sigreturnEax} {
					if i := bytes.Index(b, []byte(code)); i >= 0 {
						g.Sigreturn = at + uint64(i)
						break
					}
				}
			}
			if g.SyscallRet != 0 && g.Sigreturn != 0 {
				return g, true
			}
		}
	}
	return g, false
}

// Guard is the guarded-injection state shared by the threads of one
// process: its gadgets and the area of its scratch mapping that holds the
// threads' frames.
type Guard struct {
	gadgets Gadgets
	area    uint64         // start of the frame area; 0 while there is none
	size    uint64         // its length
	next    uint64         // first free byte of the area
	slots   map[int]uint64 // frame address by thread
}

// NewGuard returns a guard using the gadgets; its frames go on the
// threads' stacks until SetArea gives it room in scratch memory.
func NewGuard(g Gadgets) *Guard { return &Guard{gadgets: g, slots: map[int]uint64{}} }

// GuardAreaSize is the room SetArea needs for n threads with XSAVE areas
// of xsize bytes.
func GuardAreaSize(n int, xsize int) uint64 { return uint64(n) * frameSlot(xsize) }

// SetArea gives the guard [addr, addr+size) of the tracee's scratch
// mapping for the threads' frames.
func (g *Guard) SetArea(addr, size uint64) {
	g.area, g.size, g.next = addr, size, 0
	g.slots = map[int]uint64{}
}

// ClearArea forgets the frame area (before the mapping goes away); the
// frames go on the threads' stacks again.
func (g *Guard) ClearArea() {
	g.area, g.size, g.next = 0, 0, 0
	g.slots = map[int]uint64{}
}

// Layout of struct rt_sigframe on x86-64 (arch/x86/include/asm/sigframe.h,
// uapi asm/sigcontext.h and asm/ucontext.h).
const (
	sfUcFlags   = 8          // uc.uc_flags
	sfMcontext  = 48         // uc.uc_mcontext (struct sigcontext)
	sfSigmask   = 304        // uc.uc_sigmask
	sfFpstate   = 448        // the XSAVE area, 64-byte aligned
	redZone     = 128        // bytes below RSP the ABI lets code use
	fpxMagic1   = 0x46505853 // FP_XSTATE_MAGIC1
	fpxMagic2   = 0x46505845 // FP_XSTATE_MAGIC2
	swReserved  = 464        // fxsave's sw_reserved (struct _fpx_sw_bytes)
	ucFlagsAll  = 1 | 2 | 4  // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
	errRestart0 = -512       // ERESTARTSYS
	errRestart1 = -513       // ERESTARTNOINTR
	errRestart2 = -514       // ERESTARTNOHAND
	errRestartB = -516       // ERESTART_RESTARTBLOCK
	frameAlign  = uint64(64) // XRSTOR needs a 64-byte aligned area
)

// frameLen is the length of a frame holding an XSAVE area of xsize bytes
// (and FP_XSTATE_MAGIC2 after it).
func frameLen(xsize int) uint64 {
	return (sfFpstate + uint64(xsize) + 4 + frameAlign - 1) &^ (frameAlign - 1)
}

// frameSlot is the room one thread's frame takes in the area.
func frameSlot(xsize int) uint64 { return frameLen(xsize) + 256 }

// resumable returns the registers that make a thread stopped at r go on
// as if it had never stopped, for a resumption that bypasses the kernel's
// own syscall restart (rt_sigreturn and syscall-exit stops both do): an
// interrupted call is entered again. restartSyscall picks, for a call that
// asked for ERESTART_RESTARTBLOCK, restart_syscall (exact, when nothing
// reset the thread's restart block: the tracer's path) rather than the
// original call again (rt_sigreturn resets the restart block, so a sleep
// starts over: the frame's path).
func resumable(r unix.PtraceRegs, restartSyscall bool) unix.PtraceRegs {
	if int64(r.Orig_rax) >= 0 {
		switch int64(r.Rax) {
		case errRestart0, errRestart1, errRestart2:
			r.Rax = r.Orig_rax
			r.Rip -= syscallInsnLen
		case errRestartB:
			r.Rax = r.Orig_rax
			if restartSyscall {
				r.Rax = unix.SYS_RESTART_SYSCALL
			}
			r.Rip -= syscallInsnLen
		}
	}
	r.Orig_rax = ^uint64(0)
	return r
}

// buildFrame returns the rt_sigframe that rt_sigreturn turns back into
// registers r, signal mask mask and XSAVE area xstate (as ptrace's
// NT_X86_XSTATE gives it). It must be placed at a 64-byte aligned address
// with pretcode at offset 0.
func buildFrame(r unix.PtraceRegs, mask uint64, xstate []byte, pretcode uint64, at uint64) ([]byte, error) {
	if len(xstate) < swReserved+48 {
		return nil, fmt.Errorf("XSAVE area of %d bytes is too short", len(xstate))
	}
	f := make([]byte, frameLen(len(xstate)))
	le := binary.LittleEndian
	le.PutUint64(f[0:], pretcode)
	le.PutUint64(f[sfUcFlags:], ucFlagsAll)
	// uc_link and uc_stack stay zero: a zero stack_t leaves the thread's
	// sigaltstack as it is.
	gp := []uint64{r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
		r.Rdi, r.Rsi, r.Rbp, r.Rbx, r.Rdx, r.Rax, r.Rcx, r.Rsp, r.Rip, r.Eflags}
	for i, v := range gp {
		le.PutUint64(f[sfMcontext+8*i:], v)
	}
	seg := sfMcontext + 8*len(gp) // cs, gs, fs, ss: 16 bits each
	le.PutUint16(f[seg:], uint16(r.Cs))
	le.PutUint16(f[seg+2:], uint16(r.Gs))
	le.PutUint16(f[seg+4:], uint16(r.Fs))
	le.PutUint16(f[seg+6:], uint16(r.Ss))
	// err, trapno, oldmask, cr2 stay zero; then the fpstate pointer.
	le.PutUint64(f[seg+8+32:], at+sfFpstate)
	le.PutUint64(f[sfSigmask:], mask)
	fp := f[sfFpstate:]
	copy(fp, xstate)
	// ptrace's sw_reserved holds XCR0; a signal frame's holds
	// struct _fpx_sw_bytes, without which rt_sigreturn restores only the
	// legacy FXSAVE part.
	xfeatures := le.Uint64(xstate[swReserved:])
	sw := fp[swReserved : swReserved+48]
	for i := range sw {
		sw[i] = 0
	}
	le.PutUint32(sw[0:], fpxMagic1)
	le.PutUint32(sw[4:], uint32(len(xstate)+4)) // extended_size
	le.PutUint64(sw[8:], xfeatures)
	le.PutUint32(sw[16:], uint32(len(xstate))) // xstate_size
	le.PutUint32(fp[len(xstate):], fpxMagic2)
	return f, nil
}

// guardState is one thread's part of guarded injection.
type guardState struct {
	g      *Guard
	xstate []byte // the thread's XSAVE area at the stop
	// armed is true while the thread's registers point at a gadget and a
	// frame rather than its own state.
	armed bool
}

// SetGuard makes every later injected call of t guarded by g. It saves
// what the frames need (registers, XSAVE area); call it while t is in the
// stop it was seized in.
func (t *Tracee) SetGuard(g *Guard) error {
	if err := t.loadRegs(); err != nil {
		return err
	}
	x, err := t.Xstate()
	if err != nil {
		return err
	}
	t.guard = &guardState{g: g, xstate: x}
	return nil
}

// Guarded reports whether t's injections are guarded.
func (t *Tracee) Guarded() bool { return t.guard != nil }

// origMask is the thread's own signal mask. Runs on the tracer thread.
func (t *Tracee) origMask() (uint64, error) {
	if t.blocked {
		return t.mask, nil
	}
	return getSigmask(t.Tid)
}

// frameAddr picks where t's frame goes: its slot in the guard's area, or
// below the red zone of its own stack. Runs on the tracer thread.
func (t *Tracee) frameAddr() (addr uint64, onStack bool, err error) {
	g := t.guard.g
	n := frameLen(len(t.guard.xstate))
	if g.area != 0 {
		if a, ok := g.slots[t.Tid]; ok {
			return a, false, nil
		}
		a := (g.area + g.next + frameAlign - 1) &^ (frameAlign - 1)
		if a+n <= g.area+g.size {
			g.slots[t.Tid] = a
			g.next = a + n - g.area
			return a, false, nil
		}
	}
	a := (t.regs.Rsp - redZone - n) &^ (frameAlign - 1)
	return a, true, nil
}

// writeFrame writes t's frame at addr. Runs on the tracer thread.
func (t *Tracee) writeFrame(addr uint64) error {
	mask, err := t.origMask()
	if err != nil {
		return fmt.Errorf("thread %d: signal mask: %w", t.Tid, err)
	}
	f, err := buildFrame(resumable(t.regs, false), mask, t.guard.xstate, t.guard.g.gadgets.Sigreturn, addr)
	if err != nil {
		return fmt.Errorf("thread %d: %w", t.Tid, err)
	}
	if err := WriteMem(t.Pid, addr, f); err != nil {
		return fmt.Errorf("thread %d: write its signal frame: %w", t.Tid, err)
	}
	return nil
}

// guardedSyscall is SyscallAfter for a guarded thread. Runs on the tracer
// thread; t.regs are loaded.
func (t *Tracee) guardedSyscall(pre func() error, nr uintptr, a [6]uint64) (uint64, error) {
	fl := t.tr.Fault
	frame, onStack, err := t.frameAddr()
	if err != nil {
		return 0, err
	}
	if t.chain != 0 {
		frame, onStack = t.chain, false
	}
	// The frame is written before the registers point at it. A frame in
	// the area is written once: it never changes.
	if t.chain == 0 && (onStack || t.written != frame) {
		if err := t.writeFrame(frame); err != nil {
			return 0, err
		}
		t.written = frame
	}
	fl.Point("inject: frame written")
	r := t.regs
	r.Rax = uint64(nr)
	r.Orig_rax = ^uint64(0)
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
	r.Rip = t.guard.g.gadgets.SyscallRet
	r.Rsp = frame
	if err := unix.PtraceSetRegs(t.Tid, &r); err != nil {
		return 0, fmt.Errorf("thread %d: set registers for syscall %d: %w", t.Tid, nr, err)
	}
	t.guard.armed = true
	fl.Point("inject: registers set")
	// Blocked only now that the frame would put the thread's own mask
	// back: no signal is delivered into the injected call.
	if err := t.blockAll(); err != nil {
		return 0, err
	}
	fl.Point("inject: signals blocked")
	if pre != nil {
		if err := pre(); err != nil {
			return 0, err
		}
	}
	ret, err := t.runSyscall(nr)
	if err != nil {
		return 0, err
	}
	fl.Point("inject: call done")
	return ret, nil
}

// blockAll blocks every signal (SIGTRAP too: no single-step here). Runs on
// the tracer thread.
func (t *Tracee) blockAll() error {
	if t.blocked {
		return nil
	}
	mask, err := getSigmask(t.Tid)
	if err != nil {
		return fmt.Errorf("get signal mask of thread %d: %w", t.Tid, err)
	}
	t.mask = mask
	if err := setSigmask(t.Tid, ^uint64(0)); err != nil {
		return fmt.Errorf("block signals of thread %d: %w", t.Tid, err)
	}
	t.blocked = true
	return nil
}

// sysgoodTrap is the stop signal of a syscall stop (PTRACE_O_TRACESYSGOOD).
const sysgoodTrap = unix.SIGTRAP | 0x80

// runSyscall resumes the thread with PTRACE_SYSCALL through the entry and
// the exit stop of the call it is about to make, and returns the call's
// result. Runs on the tracer thread.
func (t *Tracee) runSyscall(nr uintptr) (uint64, error) {
	fl := t.tr.Fault
	entered := false
	for {
		if err := ptrace(unix.PTRACE_SYSCALL, t.Tid, 0, 0); err != nil {
			return 0, fmt.Errorf("thread %d: run syscall %d: %w", t.Tid, nr, err)
		}
		ws, err := t.wait()
		if err != nil {
			return 0, fmt.Errorf("thread %d: wait for syscall %d: %w", t.Tid, nr, err)
		}
		if ws.Exited() || ws.Signaled() {
			return 0, fmt.Errorf("syscall %d: %w", nr, exitError(t.Tid, ws))
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		switch {
		case sig == sysgoodTrap && !entered:
			entered = true
			fl.Point("inject: syscall entered")
		case sig == sysgoodTrap:
			var r unix.PtraceRegs
			if err := unix.PtraceGetRegs(t.Tid, &r); err != nil {
				return 0, fmt.Errorf("thread %d: get registers after syscall %d: %w", t.Tid, nr, err)
			}
			if r.Rip != t.guard.g.gadgets.SyscallRet+syscallInsnLen {
				return 0, fmt.Errorf("thread %d: syscall %d ended at %#x, not after the injected instruction", t.Tid, nr, r.Rip)
			}
			fl.Point("inject: syscall exited")
			return r.Rax, nil
		case event(ws) != 0:
			// A group stop or an interrupt trap: go on with the call.
		case sig == unix.SIGSEGV || sig == unix.SIGBUS || sig == unix.SIGILL || sig == unix.SIGFPE:
			return 0, fmt.Errorf("thread %d: %v while injecting syscall %d", t.Tid, sig, nr)
		default:
			// Only unblockable signals get here (SIGSTOP): kept, delivered
			// on Detach.
			if err := t.intercept(sig); err != nil {
				return 0, err
			}
		}
	}
}

// disarm puts the thread's own signal mask and registers back, if guarded
// injections changed them.
//
// The thread sits at the syscall-exit stop of its last injected call, where
// a resume never goes through the kernel's syscall restart, and where a
// signal queued meanwhile would run its handler before a restarted call
// (the call would start over instead of failing with EINTR). So it is first
// brought to an interrupt stop (PTRACE_INTERRUPT, PTRACE_CONT: it stops in
// get_signal before it returns to user space), where its original
// registers, with their -ERESTART* value, get the same treatment as if cryo
// had never been there. Until they are set, the gadget and the frame
// would restore everything if cryo died; the mask goes back first for the
// same reason. Runs on the tracer thread.
func (t *Tracee) disarm() error {
	if t.guard == nil || !t.guard.armed {
		return nil
	}
	if err := t.interruptStop(); err != nil {
		return err
	}
	if err := t.unblock(); err != nil {
		return err
	}
	t.tr.Fault.Point("disarm: mask restored")
	if err := unix.PtraceSetRegs(t.Tid, &t.regs); err != nil {
		return fmt.Errorf("restore registers of thread %d: %w", t.Tid, err)
	}
	t.guard.armed = false
	t.dirty = false
	t.written = 0
	t.tr.Fault.Point("disarm: registers restored")
	return nil
}

// interruptStop moves the thread from a syscall-exit stop to an interrupt
// stop. Runs on the tracer thread.
func (t *Tracee) interruptStop() error {
	if err := ptrace(unix.PTRACE_INTERRUPT, t.Tid, 0, 0); err != nil {
		return fmt.Errorf("interrupt thread %d: %w", t.Tid, err)
	}
	if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
		return fmt.Errorf("continue thread %d: %w", t.Tid, err)
	}
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
		if event(ws) == unix.PTRACE_EVENT_STOP {
			return nil
		}
		if sig := ws.StopSignal(); event(ws) == 0 && sig != sysgoodTrap {
			// SIGSTOP or SIGKILL on its way (all else is blocked): kept
			// for Detach.
			if err := t.intercept(sig); err != nil {
				return err
			}
		}
		if err := ptrace(unix.PTRACE_CONT, t.Tid, 0, 0); err != nil {
			return fmt.Errorf("continue thread %d: %w", t.Tid, err)
		}
	}
}

// Disarm gives a guarded thread its own registers and signal mask back
// (its frame in the guard's area is no longer needed); Detach does it too.
func (t *Tracee) Disarm() error { return t.tr.Do(t.disarm) }
