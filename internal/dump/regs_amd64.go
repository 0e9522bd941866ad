package dump

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// describeRegs says where a stuck thread stopped, for a failed dump's
// report: the instruction pointer, the system call and its result.
func describeRegs(r *unix.PtraceRegs) string {
	return fmt.Sprintf(", stopped at rip %#x (syscall %d, result %#x)", r.Rip, int64(r.Orig_rax), r.Rax)
}
