package dump

import "golang.org/x/sys/unix"

// namedCall is a system call cryo injects, for a warning that names it.
type namedCall struct {
	name string
	nr   int32
}

// injectedCalls returns the filters' arch for this build's tracees and
// the calls every dump injects into each process (the scratch mapping,
// the state only injection reads), which a thread's filters are
// evaluated against.
func injectedCalls() (arch uint32, calls []namedCall) {
	return unix.AUDIT_ARCH_X86_64, []namedCall{
		{"mmap", unix.SYS_MMAP}, {"munmap", unix.SYS_MUNMAP}, {"prctl", unix.SYS_PRCTL},
		{"rt_sigaction", unix.SYS_RT_SIGACTION}, {"sigaltstack", unix.SYS_SIGALTSTACK}, {"brk", unix.SYS_BRK},
	}
}

// sigreturnNr is rt_sigreturn, which brings a guarded thread back should
// cryo die.
const sigreturnNr = unix.SYS_RT_SIGRETURN
