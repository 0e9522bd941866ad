package sockopt

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// GetBytes reads an option whose value is a structure, up to size bytes,
// and returns what the kernel wrote: x/sys has no getter that keeps
// TCP_INFO's bit fields, TCP_REPAIR_WINDOW or SO_MEMINFO.
func GetBytes(fd, level, opt, size int) ([]byte, error) {
	b := make([]byte, size)
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return nil, errno
	}
	return b[:n], nil
}

// SetBytes sets an option whose value is a structure.
func SetBytes(fd, level, opt int, b []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
