package fdkind

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
)

// Socket is a kind whose files restore makes by socket calls, each in one
// process (which one, and when, is restore's: restore/netns.go).
type Socket interface {
	Kind
	// Make makes socket f in the restored process and puts it at its
	// place (Opener.Place).
	Make(m SocketMaker, f *fdinfo.FileEntry) error
}

// SocketOf returns the socket kind of file type t, or nil.
func SocketOf(t fdinfo.FdTypes) Socket {
	s, _ := Lookup(t).(Socket)
	return s
}

// SocketMaker is what restore offers a socket kind to make one socket in a
// restored process.
type SocketMaker interface {
	Opener
	// Put copies b into the process's scratch area and returns its
	// address there; each call reuses the area.
	Put(b []byte) (uint64, error)
	// Read copies len(b) bytes at addr of the process into b.
	Read(addr uint64, b []byte) error
	// AsIDs runs fn, which makes the socket, with the process's
	// effective ids made the host ids uid and gid, as it sees them: the
	// socket takes its owner from them. made is false, with the reason,
	// when they are not mapped where the process is (fn did not run).
	AsIDs(uid, gid uint32, fn func() error) (made bool, err error)
	// RebuildTCP gives the socket at fd the connection of socket ino
	// saved in its tcp-stream image, in repair mode until the whole tree
	// is back.
	RebuildTCP(fd uint64, ino uint32, local, remote unix.Sockaddr) error
	// CloseTCP tells whether established connections come back closed
	// (--tcp-close), and counts this one (to port) when they do.
	CloseTCP(where string, port uint32) bool
	// Logf logs a line of the restore.
	Logf(format string, args ...any)
}

// Check refuses an entry without its payload, or one the dump never
// writes (checkInet).
func (Inet) Check(f *fdinfo.FileEntry) error {
	if err := needPayload(f, f.GetIsk() != nil); err != nil {
		return err
	}
	if err := checkInet(f.GetIsk()); err != nil {
		return fmt.Errorf("socket %d: %w", f.GetId(), err)
	}
	return nil
}

// Make recreates a TCP or UDP socket at its place: bound to its address,
// listening or connected (UDP) as it was, an established TCP connection
// rebuilt (or left closed with --tcp-close).
func (Inet) Make(m SocketMaker, f *fdinfo.FileEntry) (err error) {
	e := f.GetIsk()
	where := fmt.Sprintf("%s socket %d", m.Process(), e.GetIno())
	var fd uint64
	makeSocket := func() (err error) {
		fd, err = m.Syscall(unix.SYS_SOCKET, uint64(e.GetFamily()), uint64(e.GetType())|unix.SOCK_CLOEXEC, uint64(e.GetProto()))
		return err
	}
	// The socket takes its owner from its maker's fsuid and fsgid: made
	// as the saved owner, it keeps the one firewall rules (skuid) and
	// /proc/net see, while binding and options stay with the maker's
	// privileges.
	made := false
	if uid, gid, ok, _ := image.GetInetOwner(e); ok { // well-formed: checkInet
		if made, err = m.AsIDs(uid, gid, makeSocket); !made {
			// An owner the namespace does not map (root's socket passed
			// into the tree): the maker's ids, as before owners were kept.
			m.Logf("%s: its owner %d:%d is not mapped where it is made: %v; it gets the maker's", where, uid, gid, err)
		}
	}
	if !made {
		err = makeSocket()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if fd, err = placeAndClose(m, fd); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := setInetOptions(m, fd, e); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	setReuseAddr := func(on uint32) error {
		return SetSockopt(m, fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, binary.LittleEndian.AppendUint32(nil, on))
	}
	// withAddr makes bind or connect to an address of the image.
	withAddr := func(nr uintptr, words []uint32, port uint32) error {
		sa, err := sockaddr(e.GetFamily(), words, port)
		if err != nil {
			return err
		}
		addr, err := m.Put(sa)
		if err != nil {
			return err
		}
		_, err = m.Syscall(nr, fd, addr, uint64(len(sa)))
		return err
	}
	established := e.GetType() == unix.SOCK_STREAM && e.GetState() == stateEstablished
	closed := established && m.CloseTCP(where, e.GetDstPort())
	if established && !closed {
		// Bound and connected in repair mode, which binds the port even
		// where the listener that accepted the connection holds it.
		if err := rebuildTCP(m, fd, e); err != nil {
			return fmt.Errorf("%s: TCP connection to port %d: %w", where, e.GetDstPort(), err)
		}
	} else if !established && (e.GetSrcPort() != 0 || anyNonZero(e.GetSrcAddr())) {
		// The port may still be held by connections of the dumped tree in
		// TIME_WAIT: bind as CRIU does, with SO_REUSEADDR for the moment.
		// Not for UDP, where it would let the socket share its port with
		// an unrelated one that has SO_REUSEADDR.
		if !e.GetOpts().GetReuseaddr() && e.GetType() == unix.SOCK_STREAM {
			if err := setReuseAddr(1); err != nil {
				return fmt.Errorf("%s: SO_REUSEADDR: %w", where, err)
			}
			defer func() {
				if err == nil {
					if err = setReuseAddr(0); err != nil {
						err = fmt.Errorf("%s: SO_REUSEADDR: %w", where, err)
					}
				}
			}()
		}
		if err := withAddr(unix.SYS_BIND, e.GetSrcAddr(), e.GetSrcPort()); err != nil {
			return fmt.Errorf("%s: bind port %d: %w", where, e.GetSrcPort(), err)
		}
	}
	switch {
	case closed: // left unconnected
	case established: // connected above
	case e.GetState() == stateListen:
		if _, err := m.Syscall(unix.SYS_LISTEN, fd, uint64(e.GetBacklog())); err != nil {
			return fmt.Errorf("%s: listen: %w", where, err)
		}
	case e.GetState() == stateEstablished: // a connected UDP socket
		if err := withAddr(unix.SYS_CONNECT, e.GetDstAddr(), e.GetDstPort()); err != nil {
			return fmt.Errorf("%s: connect: %w", where, err)
		}
	}
	if _, err := m.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(e.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	return nil
}

// rebuildTCP has restore rebuild the connection of e at fd, from its
// saved addresses.
func rebuildTCP(m SocketMaker, fd uint64, e *skinet.InetSkEntry) error {
	local, err := inetAddr(e.GetFamily(), e.GetSrcAddr(), e.GetSrcPort())
	if err != nil {
		return err
	}
	remote, err := inetAddr(e.GetFamily(), e.GetDstAddr(), e.GetDstPort())
	if err != nil {
		return err
	}
	return m.RebuildTCP(fd, e.GetIno(), local, remote)
}

// inetAddr is the address an image keeps as 32-bit words in network order.
func inetAddr(family uint32, words []uint32, port uint32) (unix.Sockaddr, error) {
	var b []byte
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	switch {
	case family == unix.AF_INET && len(b) == 4:
		a := &unix.SockaddrInet4{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	case family == unix.AF_INET6 && len(b) == 16:
		a := &unix.SockaddrInet6{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	}
	return nil, fmt.Errorf("address of %d bytes for family %d", len(b), family)
}

func anyNonZero(ws []uint32) bool {
	for _, w := range ws {
		if w != 0 {
			return true
		}
	}
	return false
}

// checkInet refuses an inet socket entry the dump never writes: the
// socket is made as the process that made the tree, and a crafted image
// must not get, say, a raw socket out of it.
func checkInet(e *skinet.InetSkEntry) error {
	if f := e.GetFamily(); f != unix.AF_INET && f != unix.AF_INET6 {
		return fmt.Errorf("family %d is not an inet one", f)
	}
	want := uint32(sockopt.Protocol(int(e.GetType())))
	if want == 0 {
		return fmt.Errorf("type %d is neither a stream nor a datagram socket", e.GetType())
	}
	mptcp := e.GetProto() == unix.IPPROTO_MPTCP && e.GetType() == unix.SOCK_STREAM
	if p := e.GetProto(); p != 0 && p != want && !mptcp {
		return fmt.Errorf("protocol %d with type %d", p, e.GetType())
	}
	if mptcp && e.GetState() == stateEstablished {
		return fmt.Errorf("an established MPTCP connection, which the dump never saves")
	}
	switch e.GetState() {
	case stateClose, stateListen, stateEstablished:
	default:
		return fmt.Errorf("state %d", e.GetState())
	}
	if e.GetOpts() == nil {
		return fmt.Errorf("no socket options")
	}
	if e.GetSrcPort() > 65535 || e.GetDstPort() > 65535 {
		return fmt.Errorf("port %d or %d out of range", e.GetSrcPort(), e.GetDstPort())
	}
	words := uint32(1)
	if e.GetFamily() == unix.AF_INET6 {
		words = 4
	}
	if n := uint32(len(e.GetSrcAddr())); n != 0 && n != words {
		return fmt.Errorf("source address of %d words for family %d", n, e.GetFamily())
	}
	if n := uint32(len(e.GetDstAddr())); n != 0 && n != words {
		return fmt.Errorf("destination address of %d words for family %d", n, e.GetFamily())
	}
	if e.GetIpOpts() != nil {
		if _, err := image.GetIPOptsExt(e.GetIpOpts()); err != nil {
			return fmt.Errorf("IP options: %w", err)
		}
	}
	if uid, gid, ok, err := image.GetInetOwner(e); err != nil {
		return err
	} else if ok && (uid == ^uint32(0) || gid == ^uint32(0)) {
		return fmt.Errorf("socket owner %d:%d: -1 is no id", uid, gid)
	}
	return nil
}

// sockaddr builds struct sockaddr_in or sockaddr_in6.
func sockaddr(family uint32, words []uint32, port uint32) ([]byte, error) {
	sa, err := inetAddr(family, words, port)
	if err != nil {
		return nil, err
	}
	b := binary.LittleEndian.AppendUint16(nil, uint16(family))
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b = append(b, a.Addr[:]...)
		return append(b, make([]byte, 8)...), nil
	case *unix.SockaddrInet6:
		b = append(b, 0, 0, 0, 0) // flowinfo
		b = append(b, a.Addr[:]...)
		return append(b, 0, 0, 0, 0), nil // scope id
	}
	return nil, fmt.Errorf("family %d", family)
}
