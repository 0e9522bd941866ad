package fdkind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	sknetlink "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-netlink"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Netlink is a netlink socket (AF_NETLINK), as CRIU's netlink_sk_entry
// holds it: its protocol, its port id, the multicast groups it listens to,
// the peer it is connected to, its buffer sizes and timeouts, and (in
// cryo's extension fields) its type and SOL_NETLINK flags. It is made
// again in its net namespace: restore binds it to its port id, joins its
// groups and connects it.
//
// Messages queued on it are not saved, as CRIU does not save them: they
// are replies and notifications of the kernel, which cannot be put back
// as the kernel's. Rather than lose them without a word (a lost reply
// leaves the program waiting for ever), the dump refuses a socket with
// messages waiting, in one line; the tree runs on and a later dump can
// succeed once they are read.
type Netlink struct{}

// Netlink's bounds and states (linux/netlink.h, net/netlink/af_netlink.h).
const (
	// netlinkMaxProtocol is the kernel's MAX_LINKS: protocols are below.
	netlinkMaxProtocol = 32
	// netlinkConnected is the state of a connected socket.
	netlinkConnected = 1
	// maxNetlinkGroupWords bounds the saved group bitmap: 32768 groups,
	// far more than any family registers.
	maxNetlinkGroupWords = 1024
	// netlinkListenAllNsid and netlinkCapAck, netlinkExtAck are options
	// x/sys names only in part.
	netlinkListenAllNsid = 8
	netlinkCapAck        = 10
	netlinkExtAck        = 11
)

// netlinkFlagOpts are the SOL_NETLINK flag options, saved as a bit per
// option number, in the order restore sets them.
var netlinkFlagOpts = [...]int{
	unix.NETLINK_PKTINFO, unix.NETLINK_BROADCAST_ERROR, unix.NETLINK_NO_ENOBUFS,
	netlinkListenAllNsid, netlinkCapAck, netlinkExtAck, unix.NETLINK_GET_STRICT_CHK,
}

// netlinkFlagMask is every bit netlinkFlagOpts may set.
func netlinkFlagMask() uint32 {
	var m uint32
	for _, o := range netlinkFlagOpts {
		m |= 1 << o
	}
	return m
}

// Type is NETLINKSK.
func (Netlink) Type() fdinfo.FdTypes { return fdinfo.FdTypes_NETLINKSK }

// Family is AF_NETLINK.
func (Netlink) Family() int { return unix.AF_NETLINK }

// Check refuses an entry restore could not make as it was saved: without
// its payload or options, of a protocol the kernel has no room for, in a
// state other than unconnected or connected, with too many groups, or with
// a type or flag the dump never writes.
func (Netlink) Check(f *fdinfo.FileEntry) error {
	e := f.GetNlsk()
	if err := needPayload(f, e != nil); err != nil {
		return err
	}
	if e.GetOpts() == nil {
		return fmt.Errorf("netlink socket %d: no socket options", f.GetId())
	}
	if p := e.GetProtocol(); p >= netlinkMaxProtocol {
		return fmt.Errorf("netlink socket %d: protocol %d", f.GetId(), p)
	}
	if s := e.GetState(); s != 0 && s != netlinkConnected {
		return fmt.Errorf("netlink socket %d: state %d", f.GetId(), s)
	}
	if n := len(e.GetGroups()); n > maxNetlinkGroupWords {
		return fmt.Errorf("netlink socket %d: %d words of groups", f.GetId(), n)
	}
	typ, flags, err := image.GetNetlinkExt(e)
	if err != nil {
		return fmt.Errorf("netlink socket %d: %w", f.GetId(), err)
	}
	if typ != 0 && typ != unix.SOCK_RAW && typ != unix.SOCK_DGRAM {
		return fmt.Errorf("netlink socket %d: type %d", f.GetId(), typ)
	}
	if flags&^netlinkFlagMask() != 0 {
		return fmt.Errorf("netlink socket %d: flags %#x", f.GetId(), flags)
	}
	return nil
}

// DumpSocket describes the netlink socket from cryo's copy of it.
func (Netlink) DumpSocket(d SocketDumped, id uint32) (*fdinfo.FileEntry, error) {
	s := d.Socket()
	get := func(level, opt int) (int, error) { return unix.GetsockoptInt(s, level, opt) }
	typ, err := get(unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("%s: SO_TYPE: %w", d.Where(), err)
	}
	protocol, err := get(unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("%s: SO_PROTOCOL: %w", d.Where(), err)
	}
	if err := netlinkQueueEmpty(s); err != nil {
		return nil, fmt.Errorf("%s: netlink socket (protocol %d): %w", d.Where(), protocol, err)
	}
	switch n, err := sockopt.FilterLen(s); {
	case errors.Is(err, unix.EACCES):
		return nil, fmt.Errorf("%s: an eBPF socket filter (SO_ATTACH_BPF) is attached: not supported yet", d.Where())
	case err != nil && !errors.Is(err, unix.ENOPROTOOPT):
		return nil, fmt.Errorf("%s: socket filter: %w", d.Where(), err)
	case n > 0:
		return nil, fmt.Errorf("%s: a socket filter (SO_ATTACH_FILTER, %d instructions) is attached: not supported yet", d.Where(), n)
	}
	local, err := unix.Getsockname(s)
	if err != nil {
		return nil, fmt.Errorf("%s: getsockname: %w", d.Where(), err)
	}
	la, ok := local.(*unix.SockaddrNetlink)
	if !ok {
		return nil, fmt.Errorf("%s: getsockname gave no netlink address", d.Where())
	}
	e := &sknetlink.NetlinkSkEntry{Id: proto.Uint32(id), Ino: proto.Uint32(d.Ino()), Protocol: proto.Uint32(uint32(protocol)),
		State: proto.Uint32(0), Flags: fileFlags(d), Portid: proto.Uint32(la.Pid), DstPortid: proto.Uint32(0),
		DstGroup: proto.Uint32(0), Fown: noOwner()}
	// The kernel gives the whole bitmap's length even when it copies less.
	raw, err := sockopt.GetBytes(s, unix.SOL_NETLINK, unix.NETLINK_LIST_MEMBERSHIPS, 4*maxNetlinkGroupWords+4)
	if err != nil {
		return nil, fmt.Errorf("%s: NETLINK_LIST_MEMBERSHIPS: %w", d.Where(), err)
	}
	if len(raw) > 4*maxNetlinkGroupWords {
		return nil, fmt.Errorf("%s: netlink socket in more than %d groups: not supported", d.Where(), 32*maxNetlinkGroupWords)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		e.Groups = append(e.Groups, binary.NativeEndian.Uint32(raw[i:]))
	}
	for len(e.Groups) > 0 && e.Groups[len(e.Groups)-1] == 0 {
		e.Groups = e.Groups[:len(e.Groups)-1]
	}
	if peer, err := unix.Getpeername(s); err == nil {
		if pa, ok := peer.(*unix.SockaddrNetlink); ok && (pa.Pid != 0 || pa.Groups != 0) {
			// A connection to the kernel (port 0, no group) is what an
			// unconnected socket sends to anyway: not told apart.
			e.State, e.DstPortid, e.DstGroup = proto.Uint32(netlinkConnected), proto.Uint32(pa.Pid), proto.Uint32(pa.Groups)
		}
	}
	var flags uint32
	for _, o := range netlinkFlagOpts {
		v, err := get(unix.SOL_NETLINK, o)
		if errors.Is(err, unix.ENOPROTOOPT) {
			continue // an option this kernel cannot read: never set
		}
		if err != nil {
			return nil, fmt.Errorf("%s: netlink option %d: %w", d.Where(), o, err)
		}
		if v != 0 {
			flags |= 1 << o
		}
	}
	image.SetNetlinkExt(e, uint32(typ), flags)
	if e.Opts, err = netlinkSockOpts(s); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Where(), err)
	}
	if ns, err := d.NetNs(); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Where(), err)
	} else if ns != 0 {
		e.NsId = proto.Uint32(ns)
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_NETLINKSK.Enum(), Nlsk: e}, nil
}

// netlinkQueueEmpty refuses a socket with messages waiting in its receive
// queue, counted as the receive memory the socket holds (SO_MEMINFO's
// first word, SK_MEMINFO_RMEM_ALLOC): reading it takes nothing away.
func netlinkQueueEmpty(s int) error {
	meminfo, err := sockopt.GetBytes(s, unix.SOL_SOCKET, unix.SO_MEMINFO, 9*4)
	if err != nil {
		return fmt.Errorf("SO_MEMINFO: %w", err)
	}
	if len(meminfo) < 4 {
		return fmt.Errorf("SO_MEMINFO: %d bytes", len(meminfo))
	}
	if n := binary.NativeEndian.Uint32(meminfo[:4]); n > 0 {
		return fmt.Errorf("messages waiting in its receive queue (%d bytes of receive memory): saving them is not supported (CRIU drops them); dump again once the program has read them", n)
	}
	return nil
}

// netlinkSockOpts reads the SOL_SOCKET options sk_opts_entry requires
// (buffer sizes, timeouts) and the ones a netlink socket may have changed
// (SO_PASSCRED, SO_BUF_LOCK, SO_PRIORITY, SO_MARK, SO_RCVLOWAT).
func netlinkSockOpts(s int) (*skopts.SkOptsEntry, error) {
	o := &skopts.SkOptsEntry{}
	for _, n := range []struct {
		name      string
		opt, def  int
		field     **uint32
		always    bool
		isBoolean bool
	}{
		{"SO_SNDBUF", unix.SO_SNDBUF, 0, &o.SoSndbuf, true, false},
		{"SO_RCVBUF", unix.SO_RCVBUF, 0, &o.SoRcvbuf, true, false},
		{"SO_BUF_LOCK", unix.SO_BUF_LOCK, 0, &o.SoBufLock, false, false},
		{"SO_PRIORITY", unix.SO_PRIORITY, 0, &o.SoPriority, false, false},
		{"SO_MARK", unix.SO_MARK, 0, &o.SoMark, false, false},
		{"SO_RCVLOWAT", unix.SO_RCVLOWAT, 1, &o.SoRcvlowat, false, false},
	} {
		v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, n.opt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.name, err)
		}
		if n.always || v != n.def {
			*n.field = proto.Uint32(uint32(v))
		}
	}
	if v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PASSCRED); err != nil {
		return nil, fmt.Errorf("SO_PASSCRED: %w", err)
	} else if v != 0 {
		o.SoPasscred = proto.Bool(true)
	}
	for _, t := range []struct {
		opt       int
		sec, usec **uint64
	}{{unix.SO_SNDTIMEO, &o.SoSndTmoSec, &o.SoSndTmoUsec}, {unix.SO_RCVTIMEO, &o.SoRcvTmoSec, &o.SoRcvTmoUsec}} {
		tv, err := unix.GetsockoptTimeval(s, unix.SOL_SOCKET, t.opt)
		if err != nil {
			return nil, fmt.Errorf("timeouts: %w", err)
		}
		*t.sec, *t.usec = proto.Uint64(uint64(tv.Sec)), proto.Uint64(uint64(tv.Usec))
	}
	return o, nil
}

// Create makes the socket in the process (which is in the socket's net
// namespace), sets its options, binds it to its port id, joins its groups
// and connects it.
func (Netlink) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetNlsk()
	typ, flags, _ := image.GetNetlinkExt(e) // checked
	if typ == 0 {
		typ = unix.SOCK_RAW // an image of CRIU's, which makes them so
	}
	fd, err := m.Syscall(unix.SYS_SOCKET, unix.AF_NETLINK, uint64(typ)|unix.SOCK_CLOEXEC, uint64(e.GetProtocol()))
	if err != nil {
		return 0, fmt.Errorf("%s: socket(AF_NETLINK, protocol %d): %w", m.Where(), e.GetProtocol(), err)
	}
	fail := func(what string, err error) (uint64, error) {
		m.Syscall(unix.SYS_CLOSE, fd)
		return 0, fmt.Errorf("%s: netlink socket (protocol %d, port %d): %s: %w", m.Where(), e.GetProtocol(), e.GetPortid(), what, err)
	}
	setInt := func(level, opt int, v uint32) error {
		addr, err := m.Put(binary.NativeEndian.AppendUint32(nil, v))
		if err == nil {
			_, err = m.Syscall(unix.SYS_SETSOCKOPT, fd, uint64(level), uint64(opt), addr, 4)
		}
		return err
	}
	if err := netlinkSetSockOpts(m, fd, e.GetOpts(), setInt); err != nil {
		return fail("options", err)
	}
	for _, o := range netlinkFlagOpts {
		if flags&(1<<o) != 0 {
			if err := setInt(unix.SOL_NETLINK, o, 1); err != nil {
				return fail(fmt.Sprintf("netlink option %d", o), err)
			}
		}
	}
	// struct sockaddr_nl: family, pad, pid, groups.
	sockaddr := func(pid, groups uint32) []byte {
		b := binary.NativeEndian.AppendUint16(nil, unix.AF_NETLINK)
		b = binary.NativeEndian.AppendUint16(b, 0)
		b = binary.NativeEndian.AppendUint32(b, pid)
		return binary.NativeEndian.AppendUint32(b, groups)
	}
	if e.GetPortid() != 0 {
		// Bound to its port alone; the groups are joined one by one
		// below, beyond the first 32 too.
		addr, err := m.Put(sockaddr(e.GetPortid(), 0))
		if err == nil {
			_, err = m.Syscall(unix.SYS_BIND, fd, addr, unix.SizeofSockaddrNetlink)
		}
		if err != nil {
			return fail("bind", err)
		}
	}
	for w, word := range e.GetGroups() {
		for word != 0 {
			b := bits.TrailingZeros32(word)
			word &^= 1 << b
			if err := setInt(unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, uint32(32*w+b+1)); err != nil {
				return fail(fmt.Sprintf("join group %d", 32*w+b+1), err)
			}
		}
	}
	if e.GetState() == netlinkConnected {
		addr, err := m.Put(sockaddr(e.GetDstPortid(), e.GetDstGroup()))
		if err == nil {
			_, err = m.Syscall(unix.SYS_CONNECT, fd, addr, unix.SizeofSockaddrNetlink)
		}
		if err != nil {
			return fail(fmt.Sprintf("connect to port %d group %d", e.GetDstPortid(), e.GetDstGroup()), err)
		}
	}
	if _, err := m.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(e.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fail("flags", err)
	}
	return fd, nil
}

// netlinkSetSockOpts sets the SOL_SOCKET options netlinkSockOpts saved:
// the buffer sizes only where the program set them (SO_BUF_LOCK says so;
// the kernel doubles what it is given), the others where they differ
// from a new socket's.
func netlinkSetSockOpts(m Maker, fd uint64, o *skopts.SkOptsEntry, setInt func(level, opt int, v uint32) error) error {
	lock := o.GetSoBufLock()
	for _, b := range []struct {
		name string
		opt  int
		lock uint32
		size uint32
	}{
		{"SO_SNDBUF", unix.SO_SNDBUF, unix.SOCK_SNDBUF_LOCK, o.GetSoSndbuf()},
		{"SO_RCVBUF", unix.SO_RCVBUF, unix.SOCK_RCVBUF_LOCK, o.GetSoRcvbuf()},
	} {
		if lock&b.lock != 0 && b.size > 0 {
			if err := setInt(unix.SOL_SOCKET, b.opt, b.size/2); err != nil {
				return fmt.Errorf("%s %d: %w", b.name, b.size, err)
			}
		}
	}
	for _, x := range []struct {
		name  string
		opt   int
		value *uint32
	}{
		{"SO_PRIORITY", unix.SO_PRIORITY, o.SoPriority},
		{"SO_MARK", unix.SO_MARK, o.SoMark},
		{"SO_RCVLOWAT", unix.SO_RCVLOWAT, o.SoRcvlowat},
	} {
		if x.value != nil {
			if err := setInt(unix.SOL_SOCKET, x.opt, *x.value); err != nil {
				return fmt.Errorf("%s %d: %w", x.name, *x.value, err)
			}
		}
	}
	if o.GetSoPasscred() {
		if err := setInt(unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			return fmt.Errorf("SO_PASSCRED: %w", err)
		}
	}
	for _, t := range []struct {
		name      string
		opt       int
		sec, usec uint64
	}{
		{"SO_SNDTIMEO", unix.SO_SNDTIMEO, o.GetSoSndTmoSec(), o.GetSoSndTmoUsec()},
		{"SO_RCVTIMEO", unix.SO_RCVTIMEO, o.GetSoRcvTmoSec(), o.GetSoRcvTmoUsec()},
	} {
		if t.sec == 0 && t.usec == 0 {
			continue
		}
		// struct timeval: two 64-bit words on the 64-bit architectures.
		addr, err := m.Put(putU64(nil, t.sec, t.usec))
		if err == nil {
			_, err = m.Syscall(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, uint64(t.opt), addr, 16)
		}
		if err != nil {
			return fmt.Errorf("%s %d.%06ds: %w", t.name, t.sec, t.usec, err)
		}
	}
	return nil
}
