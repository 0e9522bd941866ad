package ptrace

import (
	"golang.org/x/sys/unix"
)

// ptrace issues one raw request. It must run on the tracer thread.
func ptrace(req int, tid int, addr, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Options set on every tracee: follow clones so that threads and children
// created by injected clone3 are traced from their first instruction, and
// report syscall stops as SIGTRAP|0x80 (guarded injection tells them from
// other traps so). Never PTRACE_O_EXITKILL here: a tree being dumped must
// outlive cryo; only restore's stubs get it (StartStub).
const (
	baseOptions = unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACESYSGOOD
)
