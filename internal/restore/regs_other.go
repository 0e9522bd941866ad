//go:build !amd64

package restore

import "golang.org/x/sys/unix"

// Restore needs this architecture's registers and system call table, which
// cryo does not have yet: these stand-ins keep the tree building. They are
// never reached, since every injected call fails first with a
// *ptrace.ArchError (and Restore refuses before it starts).

// sysDup2 and sysUnlink are no system call: nothing is injected here.
const (
	sysDup2   = ^uintptr(0)
	sysUnlink = ^uintptr(0)
)

// setCallRegs leaves regs as they are.
func setCallRegs(regs *unix.PtraceRegs, ip uint64, nr uint64, a0, a1, a2 uint64) {}

// restartSyscall leaves regs as they are.
func restartSyscall(regs *unix.PtraceRegs) {}

// stackPointer returns 0.
func stackPointer(regs *unix.PtraceRegs) uint64 { return 0 }
