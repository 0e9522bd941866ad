package restore

import (
	"encoding/binary"
	"fmt"

	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
)

// makeInet recreates a TCP or UDP socket: bound to its address, listening
// or connected (UDP) as it was.
func (fp *filePlan) makeInet(p *process, id uint32) (err error) {
	t := p.leader
	e := fp.snap.files[id].GetIsk()
	where := fmt.Sprintf("restore pid %d socket %d", p.c.pid, e.GetIno())
	var fd uint64
	makeSocket := func() (err error) {
		fd, err = t.Syscall(unix.SYS_SOCKET, uint64(e.GetFamily()), uint64(e.GetType())|unix.SOCK_CLOEXEC, uint64(e.GetProto()))
		return err
	}
	// The socket takes its owner from its maker's fsuid and fsgid: made
	// as the saved owner, it keeps the one firewall rules (skuid) and
	// /proc/net see, while binding and options stay with the maker's
	// privileges.
	made := false
	if uid, gid, ok, _ := image.GetInetOwner(e); ok { // well-formed: checkInet
		in, gin, ierr := p.idsInside(uid, gid)
		if ierr == nil {
			err, made = p.remote().AsEffective(uint64(in), uint64(gin), makeSocket), true
		} else {
			// An owner the namespace does not map (root's socket passed
			// into the tree): the maker's ids, as before owners were kept.
			p.r.logf("%s: its owner %d:%d is not mapped where it is made: %v; it gets the maker's", where, uid, gid, ierr)
		}
	}
	if !made {
		err = makeSocket()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := fp.moveTo(p, fd, fp.temp[id]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	fd = fp.temp[id]
	if err := p.setInetOptions(fd, e); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	setReuseAddr := func(on uint32) error {
		return p.setsockopt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, binary.LittleEndian.AppendUint32(nil, on))
	}
	// withAddr makes bind or connect to an address of the image.
	withAddr := func(nr uintptr, words []uint32, port uint32) error {
		sa, err := sockaddr(e.GetFamily(), words, port)
		if err != nil {
			return err
		}
		addr, err := p.put(sa)
		if err != nil {
			return err
		}
		_, err = t.Syscall(nr, fd, addr, uint64(len(sa)))
		return err
	}
	established := e.GetType() == unix.SOCK_STREAM && e.GetState() == stateEstablished
	closed := established && fp.tcpClose
	if closed {
		fp.closeTCP(p, e, where)
	} else if established {
		// Bound and connected in repair mode, which binds the port even
		// where the listener that accepted the connection holds it.
		if err := fp.rebuildTCP(p, fd, id); err != nil {
			return fmt.Errorf("%s: TCP connection to port %d: %w", where, e.GetDstPort(), err)
		}
	} else if e.GetSrcPort() != 0 || anyNonZero(e.GetSrcAddr()) {
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
		if _, err := t.Syscall(unix.SYS_LISTEN, fd, uint64(e.GetBacklog())); err != nil {
			return fmt.Errorf("%s: listen: %w", where, err)
		}
	case e.GetState() == stateEstablished: // a connected UDP socket
		if err := withAddr(unix.SYS_CONNECT, e.GetDstAddr(), e.GetDstPort()); err != nil {
			return fmt.Errorf("%s: connect: %w", where, err)
		}
	}
	if _, err := t.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(e.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	return nil
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
