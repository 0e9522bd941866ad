package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SiginfoSize is sizeof(siginfo_t).
const SiginfoSize = 128

// peekSiginfoArgs is struct ptrace_peeksiginfo_args.
type peekSiginfoArgs struct {
	off   uint64
	flags uint32
	nr    int32
}

const peekSiginfoShared = 1 // PTRACE_PEEKSIGINFO_SHARED

// PendingSiginfo returns the queued, not yet delivered signals of the thread
// (shared: of the whole process) as raw siginfo_t records, without
// dequeuing them.
func (t *Tracee) PendingSiginfo(shared bool) ([][]byte, error) {
	var out [][]byte
	err := t.tr.Do(func() error {
		const batch = 32
		buf := make([]byte, batch*SiginfoSize)
		args := peekSiginfoArgs{nr: batch}
		if shared {
			args.flags = peekSiginfoShared
		}
		for {
			r1, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKSIGINFO, uintptr(t.Tid),
				uintptr(unsafe.Pointer(&args)), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
			if e != 0 {
				return fmt.Errorf("peek pending signals of thread %d: %w", t.Tid, e)
			}
			n := int(r1)
			for i := 0; i < n; i++ {
				out = append(out, append([]byte(nil), buf[i*SiginfoSize:(i+1)*SiginfoSize]...))
			}
			if n < batch {
				return nil
			}
			args.off += uint64(n)
			if len(out) > 1<<16 {
				return fmt.Errorf("thread %d: more than %d pending signals", t.Tid, 1<<16)
			}
		}
	})
	return out, err
}

// getSiginfo reads the siginfo of the signal the thread is stopped for.
// Runs on the tracer thread.
func getSiginfo(tid int) ([]byte, error) {
	buf := make([]byte, SiginfoSize)
	if err := ptrace(unix.PTRACE_GETSIGINFO, tid, 0, uintptr(unsafe.Pointer(&buf[0]))); err != nil {
		return nil, err
	}
	return buf, nil
}

// siCode returns si_code of a raw siginfo_t.
func siCode(info []byte) int32 {
	return int32(uint32(info[8]) | uint32(info[9])<<8 | uint32(info[10])<<16 | uint32(info[11])<<24)
}

// siSigno returns si_signo of a raw siginfo_t.
func siSigno(info []byte) int { return int(info[0]) | int(info[1])<<8 }

// siTkill is SI_TKILL.
const siTkill = -6

// requeue queues an intercepted signal again, from the tracer. The kernel
// lets another process queue a siginfo only with a negative si_code other
// than SI_TKILL (sigqueue's); anything else is sent again with tgkill,
// which keeps the signal but not its sender details. Runs on the tracer
// thread; best effort.
func requeue(pid, tid int, info []byte) {
	sig := siSigno(info)
	if code := siCode(info); code < 0 && code != siTkill {
		_, _, e := unix.Syscall6(unix.SYS_RT_TGSIGQUEUEINFO, uintptr(pid), uintptr(tid), uintptr(sig), uintptr(unsafe.Pointer(&info[0])), 0, 0)
		if e == 0 {
			return
		}
	}
	_ = unix.Tgkill(pid, tid, unix.Signal(sig))
}
