package netlock

import (
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// LockInNetNS is Lock in the net namespace of process nsPid instead of the
// caller's: for connections inside a container's namespace, whose packets
// never pass through the caller's. The table goes away with the namespace.
func LockInNetNS(nsPid, pid int, conns []Conn) error {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", nsPid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("network lock: net namespace of process %d: %w", nsPid, err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return fmt.Errorf("network lock: %w", err)
	}
	return lock(c, pid, conns)
}
