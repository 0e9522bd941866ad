package sockopt

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// GetBytes reads an option whose value is a structure, up to size bytes,
// and returns what the kernel wrote: x/sys has no getter that keeps
// TCP_INFO's bit fields, TCP_REPAIR_WINDOW or SO_MEMINFO.
func GetBytes(fd, level, opt, size int) ([]byte, error) {
	if size <= 0 {
		return nil, unix.EINVAL
	}
	b := make([]byte, size)
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return nil, errno
	}
	return b[:min(int(n), size)], nil
}

// FilterLen is the number of instructions of the classic socket filter
// attached to fd (SO_ATTACH_FILTER), 0 for none. SO_GET_FILTER with an
// empty buffer gives that count in the option length and copies nothing;
// an eBPF program (SO_ATTACH_BPF) gives EACCES.
func FilterLen(fd int) (int, error) {
	var n uint32
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_GET_FILTER,
		0, uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// SetBytes sets an option whose value is a structure.
func SetBytes(fd, level, opt int, b []byte) error {
	if len(b) == 0 {
		return unix.EINVAL
	}
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
