package dump

import (
	"encoding/binary"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kcmpEpollTfd tells whether descriptor fd1 of pid1 is the file that the
// epoll set epfd of pid2 watches as the toff-th watch numbered tfd.
func kcmpEpollTfd(pid1, fd1, pid2, epfd int, tfd, toff uint32) (bool, error) {
	// struct kcmp_epoll_slot { __u32 efd, tfd, toff; }
	slot := make([]byte, 12)
	binary.NativeEndian.PutUint32(slot[0:], uint32(epfd))
	binary.NativeEndian.PutUint32(slot[4:], tfd)
	binary.NativeEndian.PutUint32(slot[8:], toff)
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpEpollTFD, uintptr(fd1), uintptr(unsafe.Pointer(&slot[0])), 0)
	runtime.KeepAlive(slot)
	if e != 0 {
		return false, e
	}
	return r == 0, nil
}
