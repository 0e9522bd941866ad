package ptrace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// syscallInsnLen is the length of the x86-64 "syscall" instruction (0f 05).
const syscallInsnLen = 2

// SyscallInsn is the byte pattern of the "syscall" instruction.
var SyscallInsn = []byte{0x0f, 0x05}

// FindSyscallInsn returns the address of a "syscall" instruction inside
// [start, end) of process pid (normally its [vdso]), the only code a blank
// or frozen tracee is sure to have for injected system calls.
func FindSyscallInsn(pid int, start, end uint64) (uint64, error) {
	buf := make([]byte, end-start)
	if err := ReadMem(pid, start, buf); err != nil {
		return 0, err
	}
	for i := 0; i+1 < len(buf); i++ {
		if buf[i] == SyscallInsn[0] && buf[i+1] == SyscallInsn[1] {
			return start + uint64(i), nil
		}
	}
	return 0, fmt.Errorf("no syscall instruction in %d's vdso at %#x-%#x", pid, start, end)
}

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
		ws, err := t.wait()
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
