package dump

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// dumpLeftOutSocket describes a socket in the net namespace left out of
// the images (empty_ns: a container's, which the restore makes new with
// its loopback up). TCP and UDP sockets are read from a copy of theirs,
// which needs nothing of their namespace, and come back in the new one:
// a server listening in a container answers on its loopback again. Unix
// sockets there would need sock_diag run inside the namespace: refused.
func (p *process) dumpLeftOutSocket(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("%s (%s)", p.fdName(fd), target)
	ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: bad socket link", where)
	}
	s, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	family, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN)
	unix.Close(s)
	if err != nil {
		return nil, fmt.Errorf("%s: socket family: %w", where, err)
	}
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, fmt.Errorf("%s: a socket of family %d in the net namespace left out of the dump (empty_ns): only TCP and UDP sockets are supported there yet", where, family)
	}
	return p.dumpInet(ft, fd, target, uint32(ino), info)
}
