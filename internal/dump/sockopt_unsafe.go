package dump

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// getsockoptBytes reads an option that is a struct into buf and returns the
// length the kernel wrote.
func getsockoptBytes(s, level, opt int, buf []byte) (int, error) {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
