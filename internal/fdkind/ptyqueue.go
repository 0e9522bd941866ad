package fdkind

// What the dump and the restore of a pseudo-terminal pair both do: name
// its slave, and queue bytes for its master.

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// PtsPath is the slave of pty index in cryo's devpts.
func PtsPath(index uint32) string { return fmt.Sprintf("/dev/pts/%d", index) }

// QueueForMaster writes data on the slave of a pty, reached from its master
// (TIOCGPTPEER: the pair's own devpts, past an exclusive slave), for the
// master to read, unchanged: output processing (OPOST) is off meanwhile.
func QueueForMaster(master int, data []byte) error {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if errno != 0 {
		return fmt.Errorf("TIOCGPTPEER: %w", errno)
	}
	fd := int(r)
	defer unix.Close(fd)
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	raw := *t
	raw.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	// The line discipline takes the bytes as the kernel's flip-buffer work
	// moves them on, which a busy machine delays: wait for room (a bounded
	// time) rather than fail on a full buffer.
	deadline := time.Now().Add(queueTimeout)
	for len(data) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, data)
		switch {
		case err == nil:
			data = data[n:]
		case err == unix.EAGAIN && time.Now().Before(deadline):
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err = unix.Poll(pfd, 100); err == unix.EINTR {
				err = nil
			}
		}
	}
	if rerr := unix.IoctlSetTermios(fd, unix.TCSETS, t); err == nil {
		err = rerr
	}
	return err
}

// queueTimeout bounds how long QueueForMaster waits for room in the pty.
const queueTimeout = 5 * time.Second
