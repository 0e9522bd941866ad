package fdkind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Inet is a TCP, UDP or MPTCP socket, IPv4 or IPv6: listening, bound,
// connected (UDP) or, with --tcp-established, an established TCP
// connection saved and rebuilt in repair mode (internal/tcprepair). Dump
// reads it from a copy of the socket (DumpInet); restore makes it again
// with injected calls (Make, inetmake.go), in the process's net namespace
// (restore/netns.go decides which process, and when).
type Inet struct{}

// Type is INETSK.
func (Inet) Type() fdinfo.FdTypes { return fdinfo.FdTypes_INETSK }

// Keys are CRIU's name of the socket, socket:[INO].
func (Inet) Keys(f *fdinfo.FileEntry, _ func(uint32) *fdinfo.FileEntry) []string {
	return []string{fmt.Sprintf("socket:[%d]", f.GetIsk().GetIno())}
}

// TCP states, as the kernel and CRIU number them.
const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

// InetDumped is what dump offers the inet kind about one socket of the
// tree.
type InetDumped interface {
	// Where names the descriptor in errors.
	Where() string
	// SkipInFlight is --skip-in-flight: a listener's accept queue is left.
	SkipInFlight() bool
	// TCPEstablished is --tcp-established; TCPClose is --tcp-close.
	TCPEstablished() bool
	TCPClose() bool
	// NetNs is the id of the tree's net namespace socket s lives in (0:
	// cryo's).
	NetNs(s int) (uint32, error)
	// Repair puts s (cryo's copy) in repair mode until the tree is gone,
	// so that closing it sends nothing to the peer.
	Repair(s int) error
	// SaveTCP saves the connection of s in repair mode (tcp-stream.img)
	// and has the network locked for it; netNs is its namespace.
	SaveTCP(s int, ino uint32, conn netlock.Conn, netNs uint32) error
}

// DumpInet describes socket ino, of which s is cryo's copy, opened with
// flags (fdinfo's), as file entry id. What restore could not make again
// (another protocol, queued datagrams, a socket filter, an MPTCP
// connection, a connection without --tcp-established) is refused in one
// line.
func DumpInet(d InetDumped, s int, ino, flags, id uint32) (*fdinfo.FileEntry, error) {
	where := d.Where()
	get := func(level, opt int) int {
		v, _ := unix.GetsockoptInt(s, level, opt)
		return v
	}
	family, typ, protocol := get(unix.SOL_SOCKET, unix.SO_DOMAIN), get(unix.SOL_SOCKET, unix.SO_TYPE), get(unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, fmt.Errorf("%s: socket family %d is not supported yet", where, family)
	}
	if typ != unix.SOCK_STREAM && typ != unix.SOCK_DGRAM {
		return nil, fmt.Errorf("%s: socket type %d is not supported yet", where, typ)
	}
	// Only TCP, UDP and MPTCP: restore makes nothing else. An MPTCP
	// socket (Go's net.Listen since 1.24) is a stream socket whose
	// listening and bound states are TCP's.
	mptcp := protocol == unix.IPPROTO_MPTCP && typ == unix.SOCK_STREAM
	if protocol != sockopt.Protocol(typ) && !mptcp {
		return nil, fmt.Errorf("%s: socket protocol %d is not supported yet (only TCP and UDP)", where, protocol)
	}
	listening := get(unix.SOL_SOCKET, unix.SO_ACCEPTCONN) != 0
	if listening && typ == unix.SOCK_STREAM && !d.SkipInFlight() {
		// For a listener, TCP_INFO's unacked is the length of its accept
		// queue. Those connections have no descriptor to save them from.
		if ti, err := unix.GetsockoptTCPInfo(s, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && ti.Unacked > 0 {
			return nil, fmt.Errorf("%s: TCP listening socket with %d connections waiting to be accepted: not supported yet", where, ti.Unacked)
		}
	}
	if typ == unix.SOCK_DGRAM {
		// CRIU drops them silently; a clear refusal is better than lost
		// datagrams, and the tree runs on.
		n, err := udpQueued(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("%s: UDP socket with datagrams waiting in its receive queue, or errors in its error queue (%d bytes of receive memory): saving them is not supported", where, n)
		}
	}
	// Not saved: refused rather than lost without a word.
	switch n, err := sockopt.FilterLen(s); {
	case errors.Is(err, unix.EACCES):
		return nil, fmt.Errorf("%s: an eBPF socket filter (SO_ATTACH_BPF) is attached: not supported yet", where)
	case err != nil && !errors.Is(err, unix.ENOPROTOOPT):
		return nil, fmt.Errorf("%s: socket filter: %w", where, err)
	case n > 0:
		return nil, fmt.Errorf("%s: a socket filter (SO_ATTACH_FILTER, %d instructions) is attached: not supported yet", where, n)
	}
	if typ == unix.SOCK_DGRAM {
		if v, err := unix.GetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_CORK); err == nil && v != 0 {
			return nil, fmt.Errorf("%s: UDP_CORK is set: not supported yet", where)
		}
	}
	local, err := unix.Getsockname(s)
	if err != nil {
		return nil, fmt.Errorf("%s: getsockname: %w", where, err)
	}
	// Before SaveTCP: repair mode changes SO_REUSEADDR.
	e := &skinet.InetSkEntry{Family: proto.Uint32(uint32(family)), Type: proto.Uint32(uint32(typ))}
	if nsID, err := d.NetNs(s); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	} else if nsID != 0 {
		e.NsId = proto.Uint32(nsID)
	}
	if err := inetOptions(s, e); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	remote, _ := unix.Getpeername(s)
	// --tcp-close (CRIU's): a connection is saved as a closed socket, with
	// neither its state nor its addresses; the restored process finds an
	// unconnected socket.
	if remote != nil && typ == unix.SOCK_STREAM && d.TCPClose() {
		// In repair mode while the tree is killed, as --tcp-established
		// does: it closes without a FIN, so no TIME_WAIT holds its port
		// (a listener of the tree that accepted it is bound there again);
		// the peer gets a reset at its next packet.
		if err := d.Repair(s); err != nil {
			return nil, fmt.Errorf("%s: --tcp-close: %w", where, err)
		}
		remote, local = nil, nil
	}
	if remote != nil && mptcp {
		// The kernel has no repair mode for MPTCP sockets, even for one
		// that fell back to TCP: the connection cannot be made again.
		return nil, fmt.Errorf("%s: established MPTCP connection %s -> %s: the kernel cannot repair MPTCP connections: not supported", where, addrPort(local), addrPort(remote))
	}
	if remote != nil && typ == unix.SOCK_STREAM {
		if !d.TCPEstablished() {
			return nil, fmt.Errorf("%s: established TCP connection %s -> %s: dump with --tcp-established to save it", where, addrPort(local), addrPort(remote))
		}
		conn := netlock.Conn{Local: addrPort(local), Remote: addrPort(remote)}
		if err := d.SaveTCP(s, ino, conn, e.GetNsId()); err != nil {
			return nil, fmt.Errorf("%s: TCP connection %s -> %s: %w", where, conn.Local, conn.Remote, err)
		}
	}
	state := uint32(stateClose)
	if listening {
		state = stateListen
	} else if remote != nil {
		state = stateEstablished
	}
	srcAddr, srcPort := addrWords(local)
	e.Ino, e.Proto, e.State = proto.Uint32(ino), proto.Uint32(uint32(protocol)), proto.Uint32(state)
	e.SrcPort, e.DstPort, e.SrcAddr = proto.Uint32(srcPort), proto.Uint32(0), srcAddr
	e.Flags, e.Backlog, e.Fown = proto.Uint32(flags&^unix.O_CLOEXEC), proto.Uint32(0), noOwner()
	if listening {
		// The kernel does not tell a listener's backlog outside sock_diag's
		// inet family; SOMAXCONN is what most servers ask for.
		e.Backlog = proto.Uint32(unix.SOMAXCONN)
	}
	if remote != nil {
		dst, port := addrWords(remote)
		e.DstAddr, e.DstPort = dst, proto.Uint32(port)
	}
	var st unix.Stat_t
	if err := unix.Fstat(s, &st); err != nil {
		return nil, fmt.Errorf("%s: owner: %w", where, err)
	}
	image.SetInetOwner(e, st.Uid, st.Gid)
	e.Id = proto.Uint32(id)
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Isk: e}, nil
}

// addrWords gives an address as CRIU stores it (32-bit words in network
// order) and its port.
func addrWords(sa unix.Sockaddr) ([]uint32, uint32) {
	ap := addrPort(sa)
	if !ap.IsValid() {
		return nil, 0
	}
	b := ap.Addr().AsSlice()
	words := make([]uint32, len(b)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return words, uint32(ap.Port())
}

// addrPort converts an inet socket address.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
