// Package sockdiag asks the kernel about sockets through NETLINK_SOCK_DIAG:
// for Unix sockets their type, state, name, peer and queues, which /proc
// does not tell.
package sockdiag

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Unix is what the kernel reports of one Unix socket.
type Unix struct {
	Ino      uint32
	Type     uint8 // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
	State    uint8 // TCP_ESTABLISHED (1), TCP_CLOSE (7), TCP_LISTEN (10)...
	Name     string
	HasName  bool
	Peer     uint32   // peer's inode, 0 if none
	Icons    []uint32 // connections waiting to be accepted (listeners)
	RQueue   uint32   // listeners: backlog length; others: bytes queued to read
	WQueue   uint32   // listeners: max backlog
	Shutdown uint8
	VfsIno   uint32 // inode of the bound path, if any
	VfsDev   uint32
}

// Request attributes and replies (linux/unix_diag.h).
const (
	udiagShowName     = 1 << 0
	udiagShowVFS      = 1 << 1
	udiagShowPeer     = 1 << 2
	udiagShowIcons    = 1 << 3
	udiagShowRQLen    = 1 << 4
	udiagShowShutdown = 1 << 7

	attrName     = 0
	attrVFS      = 1
	attrPeer     = 2
	attrIcons    = 3
	attrRQLen    = 4
	attrShutdown = 6
)

// Unixes returns every Unix socket of the caller's network namespace, by
// inode.
func Unixes() (map[uint32]*Unix, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	// nlmsghdr (16) + unix_diag_req (24)
	req := make([]byte, 40)
	binary.LittleEndian.PutUint32(req[0:], 40)
	binary.LittleEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.LittleEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.LittleEndian.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNIX
	binary.LittleEndian.PutUint32(req[20:], 0xffffffff) // all states
	binary.LittleEndian.PutUint32(req[28:], udiagShowName|udiagShowVFS|udiagShowPeer|udiagShowIcons|udiagShowRQLen|udiagShowShutdown)
	binary.LittleEndian.PutUint32(req[32:], 0xffffffff) // cookie: any
	binary.LittleEndian.PutUint32(req[36:], 0xffffffff)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag: send: %w", err)
	}
	out := map[uint32]*Unix{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag: receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.LittleEndian.Uint32(m.Data)); e != 0 {
						return nil, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
					}
				}
				return out, nil
			}
			u, err := parseUnix(m.Data)
			if err != nil {
				return nil, err
			}
			out[u.Ino] = u
		}
	}
}

// parseUnix decodes unix_diag_msg (16 bytes) and its attributes.
func parseUnix(b []byte) (*Unix, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("sock_diag: short message")
	}
	u := &Unix{Type: b[1], State: b[2], Ino: binary.LittleEndian.Uint32(b[4:])}
	for a := b[16:]; len(a) >= 4; {
		l := int(binary.LittleEndian.Uint16(a))
		typ := binary.LittleEndian.Uint16(a[2:])
		if l < 4 || l > len(a) {
			return nil, fmt.Errorf("sock_diag: bad attribute length %d", l)
		}
		v := a[4:l]
		switch typ {
		case attrName:
			u.Name, u.HasName = string(v), true
		case attrVFS:
			if len(v) >= 8 {
				u.VfsIno, u.VfsDev = binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
			}
		case attrPeer:
			if len(v) >= 4 {
				u.Peer = binary.LittleEndian.Uint32(v)
			}
		case attrIcons:
			for i := 0; i+4 <= len(v); i += 4 {
				u.Icons = append(u.Icons, binary.LittleEndian.Uint32(v[i:]))
			}
		case attrRQLen:
			if len(v) >= 8 {
				u.RQueue, u.WQueue = binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
			}
		case attrShutdown:
			if len(v) >= 1 {
				u.Shutdown = v[0]
			}
		}
		a = a[min((l+3)&^3, len(a)):]
	}
	return u, nil
}

// Sockaddr is struct sockaddr_un for a name as Unix reports it: a path
// (given NUL-terminated) or an abstract name (leading NUL, exact length).
func Sockaddr(name []byte) []byte {
	sa := binary.LittleEndian.AppendUint16(nil, unix.AF_UNIX)
	sa = append(sa, name...)
	if len(name) > 0 && name[0] != 0 {
		sa = append(sa, 0)
	}
	return sa
}
