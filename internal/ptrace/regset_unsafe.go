package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xstateMax bounds the XSAVE area; AMX tile data makes it about 11 KiB.
const xstateMax = 16 << 10

// Xstate returns the thread's XSAVE area in the standard (non-compacted)
// format the kernel gives ptrace.
func (t *Tracee) Xstate() ([]byte, error) {
	buf := make([]byte, xstateMax)
	err := t.tr.Do(func() error {
		iov := unix.Iovec{Base: &buf[0]}
		iov.SetLen(len(buf))
		if err := ptrace(unix.PTRACE_GETREGSET, t.Tid, unix.NT_X86_XSTATE, uintptr(unsafe.Pointer(&iov))); err != nil {
			return fmt.Errorf("get xstate of thread %d: %w", t.Tid, err)
		}
		buf = buf[:iov.Len]
		return nil
	})
	return buf, err
}

// SetXstate loads an XSAVE area into the thread.
func (t *Tracee) SetXstate(buf []byte) error {
	if len(buf) == 0 {
		return fmt.Errorf("set xstate of thread %d: empty area", t.Tid)
	}
	return t.tr.Do(func() error {
		iov := unix.Iovec{Base: &buf[0]}
		iov.SetLen(len(buf))
		if err := ptrace(unix.PTRACE_SETREGSET, t.Tid, unix.NT_X86_XSTATE, uintptr(unsafe.Pointer(&iov))); err != nil {
			return fmt.Errorf("set xstate of thread %d: %w", t.Tid, err)
		}
		return nil
	})
}

// SigMask returns the thread's blocked signal mask (its own, not the
// all-blocked mask in force during injections).
func (t *Tracee) SigMask() (uint64, error) {
	if t.blocked {
		return t.mask, nil
	}
	var mask uint64
	err := t.tr.Do(func() error {
		if err := ptrace(unix.PTRACE_GETSIGMASK, t.Tid, 8, uintptr(unsafe.Pointer(&mask))); err != nil {
			return fmt.Errorf("get signal mask of thread %d: %w", t.Tid, err)
		}
		return nil
	})
	return mask, err
}

// SetSigMask sets the thread's blocked signal mask; during injections it
// takes effect on Detach.
func (t *Tracee) SetSigMask(mask uint64) error {
	if t.blocked {
		t.mask = mask
		return nil
	}
	return t.tr.Do(func() error {
		if err := ptrace(unix.PTRACE_SETSIGMASK, t.Tid, 8, uintptr(unsafe.Pointer(&mask))); err != nil {
			return fmt.Errorf("set signal mask of thread %d: %w", t.Tid, err)
		}
		return nil
	})
}

// RseqConfig is struct ptrace_rseq_configuration.
type RseqConfig struct {
	Pointer   uint64
	Size      uint32
	Signature uint32
	Flags     uint32
	_         uint32
}

// Rseq returns the thread's rseq registration (Pointer 0: none).
func (t *Tracee) Rseq() (RseqConfig, error) {
	var c RseqConfig
	err := t.tr.Do(func() error {
		if err := ptrace(unix.PTRACE_GET_RSEQ_CONFIGURATION, t.Tid, unsafe.Sizeof(c), uintptr(unsafe.Pointer(&c))); err != nil {
			return fmt.Errorf("get rseq configuration of thread %d: %w", t.Tid, err)
		}
		return nil
	})
	return c, err
}

// RobustList returns the thread's robust futex list head and length.
// get_robust_list works on any thread the caller may ptrace.
func RobustList(tid int) (head uint64, length uint64, err error) {
	_, _, e := unix.Syscall(unix.SYS_GET_ROBUST_LIST, uintptr(tid), uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&length)))
	if e != 0 {
		return 0, 0, fmt.Errorf("get robust list of thread %d: %w", tid, e)
	}
	return head, length, nil
}

// getSigmask and setSigmask are PTRACE_GETSIGMASK/SETSIGMASK. They run on
// the tracer thread.
func getSigmask(tid int) (uint64, error) {
	var mask uint64
	err := ptrace(unix.PTRACE_GETSIGMASK, tid, 8, uintptr(unsafe.Pointer(&mask)))
	return mask, err
}

func setSigmask(tid int, mask uint64) error {
	return ptrace(unix.PTRACE_SETSIGMASK, tid, 8, uintptr(unsafe.Pointer(&mask)))
}
