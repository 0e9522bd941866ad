package restore

import "golang.org/x/sys/unix"

// System calls restore injects that only x86-64 has under these names
// (other architectures have dup3 and unlinkat only).
const (
	sysDup2   = unix.SYS_DUP2
	sysUnlink = unix.SYS_UNLINK
)

// setCallRegs points regs at the syscall instruction at ip, ready to make
// system call nr with three arguments when the thread resumes (it is not
// in a system call: no restart fixups).
func setCallRegs(regs *unix.PtraceRegs, ip uint64, nr uint64, a0, a1, a2 uint64) {
	regs.Rip, regs.Rax, regs.Orig_rax = ip, nr, ^uint64(0)
	regs.Rdi, regs.Rsi, regs.Rdx = a0, a1, a2
}

// restartSyscall turns the registers of a thread dumped inside a system
// call that is to be restarted into those that make it again (as the
// kernel's signal return does), and takes the thread out of the call.
func restartSyscall(regs *unix.PtraceRegs) {
	if int64(regs.Orig_rax) >= 0 {
		switch int64(regs.Rax) {
		case errRestartSys, errRestartNoIntr, errRestartNoHand, errRestartRestartBlock:
			regs.Rax = regs.Orig_rax
			regs.Rip -= 2
		}
	}
	regs.Orig_rax = ^uint64(0)
}

// stackPointer returns the thread's stack pointer.
func stackPointer(regs *unix.PtraceRegs) uint64 { return regs.Rsp }
