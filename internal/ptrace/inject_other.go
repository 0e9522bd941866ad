//go:build !amd64

package ptrace

import "runtime"

// SyscallInsn is empty: cryo knows no system call instruction of this
// architecture yet.
var SyscallInsn []byte

// FindSyscallInsn fails with an *ArchError: there is no instruction to look
// for on this architecture yet.
func FindSyscallInsn(pid int, start, end uint64) (uint64, error) {
	return 0, &ArchError{Arch: runtime.GOARCH}
}

// legacySyscall fails with an *ArchError: setting up a system call needs
// this architecture's register layout.
func (t *Tracee) legacySyscall(pre func() error, nr uintptr, a [6]uint64, retp *uint64) error {
	return &ArchError{Arch: runtime.GOARCH}
}

// exitBy fails with an *ArchError, as legacySyscall does.
func (t *Tracee) exitBy(nr uint64, code int) error {
	return &ArchError{Arch: runtime.GOARCH}
}
