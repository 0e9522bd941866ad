package ptrace

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cryo-cr/cryo/internal/seccomp"
	"golang.org/x/sys/unix"
)

// seccompMetadata is struct seccomp_metadata (uapi linux/ptrace.h).
type seccompMetadata struct {
	filterOff uint64
	flags     uint64
}

// SeccompFilters reads the thread's seccomp filter chain, oldest first
// (index 0 of PTRACE_SECCOMP_GET_FILTER is the first filter installed),
// with the flags PTRACE_GET_SECCOMP_METADATA reports. The kernel allows
// both only to a tracer with CAP_SYS_ADMIN in the initial user namespace
// that is not under seccomp itself (EACCES otherwise).
func (t *Tracee) SeccompFilters() ([]seccomp.Filter, error) {
	var chain []seccomp.Filter
	err := t.tr.Do(func() error {
		for i := 0; ; i++ {
			n, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(t.Tid), uintptr(i), 0, 0, 0)
			if e == unix.ENOENT {
				return nil
			}
			if e != 0 {
				return fmt.Errorf("thread %d: read seccomp filter %d: %w", t.Tid, i, e)
			}
			if i >= seccomp.MaxChain {
				return fmt.Errorf("thread %d: more than %d seccomp filters", t.Tid, seccomp.MaxChain)
			}
			if n == 0 || n > seccomp.MaxInsns {
				return fmt.Errorf("thread %d: seccomp filter %d has %d instructions", t.Tid, i, n)
			}
			prog := make([]byte, n*seccomp.InsnSize)
			got, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(t.Tid), uintptr(i), uintptr(unsafe.Pointer(&prog[0])), 0, 0)
			if e != 0 {
				return fmt.Errorf("thread %d: read seccomp filter %d: %w", t.Tid, i, e)
			}
			if got != n {
				return fmt.Errorf("thread %d: seccomp filter %d changed size while read", t.Tid, i)
			}
			md := seccompMetadata{filterOff: uint64(i)}
			_, _, e = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_METADATA, uintptr(t.Tid), unsafe.Sizeof(md), uintptr(unsafe.Pointer(&md)), 0, 0)
			if e != 0 {
				return fmt.Errorf("thread %d: read metadata of seccomp filter %d: %w", t.Tid, i, e)
			}
			chain = append(chain, seccomp.Filter{Prog: prog, Flags: uint32(md.flags)})
		}
	})
	return chain, err
}

// SuspendSeccomp sets PTRACE_O_SUSPEND_SECCOMP on the thread, on top of
// the options it has (exitKill for restore's stubs), so that the calls
// cryo injects skip its seccomp filters or strict mode. The option dies
// with the tracer: should cryo die, the thread is under its filters again.
// The kernel allows it only to a tracer with CAP_SYS_ADMIN in the initial
// user namespace that is not under seccomp itself: ErrNoSuspend then.
func (t *Tracee) SuspendSeccomp(exitKill bool) error {
	opts := baseOptions | unix.PTRACE_O_SUSPEND_SECCOMP
	if exitKill {
		opts |= unix.PTRACE_O_EXITKILL
	}
	return t.tr.Do(func() error {
		err := ptrace(unix.PTRACE_SETOPTIONS, t.Tid, 0, uintptr(opts))
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("thread %d: %w", t.Tid, ErrNoSuspend)
		}
		if err != nil {
			return fmt.Errorf("thread %d: suspend seccomp: %w", t.Tid, err)
		}
		return nil
	})
}

// ErrNoSuspend says that the kernel refused PTRACE_O_SUSPEND_SECCOMP.
var ErrNoSuspend = errors.New("suspending seccomp needs CAP_SYS_ADMIN in the initial user namespace, a tracer not under seccomp and a kernel with CONFIG_CHECKPOINT_RESTORE")
