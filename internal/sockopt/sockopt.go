// Package sockopt is the list of inet socket options cryo keeps across a
// checkpoint, and where each one lives in CRIU's inet_sk_entry: the dump
// reads them into the entry, the restore sets them from it, both from the
// same table so that an option cannot be saved and forgotten. GetBytes and
// SetBytes reach the options whose values are structures.
package sockopt

import (
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Protocol is the one protocol cryo saves and makes for an inet socket of
// type typ: TCP for a stream, UDP for datagrams (UDP-Lite, ping, SCTP and
// MPTCP sockets share those types); 0 for any other type.
func Protocol(typ int) int {
	switch typ {
	case unix.SOCK_STREAM:
		return unix.IPPROTO_TCP
	case unix.SOCK_DGRAM:
		return unix.IPPROTO_UDP
	}
	return 0
}

// Int is an option whose value is an int (booleans are 0 or 1).
type Int struct {
	Name       string
	Level, Opt int
	// Load is the saved value; false when the image has none.
	Load func(e *skinet.InetSkEntry) (uint32, bool)
	// Store records a value read from the socket.
	Store func(e *skinet.InetSkEntry, v uint32)
}

// Ints are the int options of an inet socket of this family and type, in
// the order they are set on restore (all before bind: IPV6_V6ONLY and
// SO_REUSEADDR/SO_REUSEPORT decide whether it succeeds). The IP level comes
// first: setting IP_TOS also sets SO_PRIORITY.
func Ints(family, typ int) []Int {
	l := append(ipInts(family), []Int{
		sockBool("SO_REUSEADDR", unix.SO_REUSEADDR, func(o *skopts.SkOptsEntry) **bool { return &o.Reuseaddr }),
		sockBool("SO_REUSEPORT", unix.SO_REUSEPORT, func(o *skopts.SkOptsEntry) **bool { return &o.SoReuseport }),
		sockBool("SO_KEEPALIVE", unix.SO_KEEPALIVE, func(o *skopts.SkOptsEntry) **bool { return &o.SoKeepalive }),
		sockBool("SO_BROADCAST", unix.SO_BROADCAST, func(o *skopts.SkOptsEntry) **bool { return &o.SoBroadcast }),
		sockBool("SO_DONTROUTE", unix.SO_DONTROUTE, func(o *skopts.SkOptsEntry) **bool { return &o.SoDontroute }),
		sockBool("SO_NO_CHECK", unix.SO_NO_CHECK, func(o *skopts.SkOptsEntry) **bool { return &o.SoNoCheck }),
		sockU32("SO_OOBINLINE", unix.SO_OOBINLINE, func(o *skopts.SkOptsEntry) **uint32 { return &o.SoOobinline }),
		sockU32("SO_PRIORITY", unix.SO_PRIORITY, func(o *skopts.SkOptsEntry) **uint32 { return &o.SoPriority }),
		nonZero(sockU32("SO_MARK", unix.SO_MARK, func(o *skopts.SkOptsEntry) **uint32 { return &o.SoMark })),
		sockU32("SO_RCVLOWAT", unix.SO_RCVLOWAT, func(o *skopts.SkOptsEntry) **uint32 { return &o.SoRcvlowat }),
	}...)
	if typ == unix.SOCK_STREAM {
		l = append(l,
			tcpU32("TCP_KEEPIDLE", unix.TCP_KEEPIDLE, func(o *skopts.SkOptsEntry) **uint32 { return &o.TcpKeepidle }),
			tcpU32("TCP_KEEPINTVL", unix.TCP_KEEPINTVL, func(o *skopts.SkOptsEntry) **uint32 { return &o.TcpKeepintvl }),
			tcpU32("TCP_KEEPCNT", unix.TCP_KEEPCNT, func(o *skopts.SkOptsEntry) **uint32 { return &o.TcpKeepcnt }))
	}
	return l
}

// ipInts are the options of the IP level of a family.
func ipInts(family int) []Int {
	if family == unix.AF_INET6 {
		return []Int{
			{"IPV6_V6ONLY", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY,
				func(e *skinet.InetSkEntry) (uint32, bool) { return boolValue(e.V6Only) },
				func(e *skinet.InetSkEntry, v uint32) { e.V6Only = proto.Bool(v != 0) }},
			ipBool("IPV6_FREEBIND", unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, func(o *skinet.IpOptsEntry) **bool { return &o.Freebind }),
			ipBool("IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, func(o *skinet.IpOptsEntry) **bool { return &o.Pktinfo }),
			ipExt("IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, func(x *image.IPOptsExt) **uint32 { return &x.TOS }),
			ipExt("IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, func(x *image.IPOptsExt) **uint32 { return &x.TTL })}
	}
	return []Int{
		ipBool("IP_FREEBIND", unix.IPPROTO_IP, unix.IP_FREEBIND, func(o *skinet.IpOptsEntry) **bool { return &o.Freebind }),
		ipBool("IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO, func(o *skinet.IpOptsEntry) **bool { return &o.Pktinfo }),
		ipExt("IP_TOS", unix.IPPROTO_IP, unix.IP_TOS, func(x *image.IPOptsExt) **uint32 { return &x.TOS }),
		ipExt("IP_TTL", unix.IPPROTO_IP, unix.IP_TTL, func(x *image.IPOptsExt) **uint32 { return &x.TTL })}
}

// opts is e's sk_opts_entry, made if missing (for Store).
func opts(e *skinet.InetSkEntry) *skopts.SkOptsEntry {
	if e.Opts == nil {
		e.Opts = &skopts.SkOptsEntry{}
	}
	return e.Opts
}

// ipOpts is e's ip_opts_entry, made if missing (for Store).
func ipOpts(e *skinet.InetSkEntry) *skinet.IpOptsEntry {
	if e.IpOpts == nil {
		e.IpOpts = &skinet.IpOptsEntry{}
	}
	return e.IpOpts
}

func boolValue(b *bool) (uint32, bool) {
	if b == nil {
		return 0, false
	}
	if *b {
		return 1, true
	}
	return 0, true
}

func u32Value(v *uint32) (uint32, bool) {
	if v == nil {
		return 0, false
	}
	return *v, true
}

func sockBool(name string, opt int, field func(*skopts.SkOptsEntry) **bool) Int {
	return Int{name, unix.SOL_SOCKET, opt,
		func(e *skinet.InetSkEntry) (uint32, bool) {
			if e.GetOpts() == nil {
				return 0, false
			}
			return boolValue(*field(e.Opts))
		},
		func(e *skinet.InetSkEntry, v uint32) { *field(opts(e)) = proto.Bool(v != 0) }}
}

// nonZero stores o only when it is not 0, as CRIU does for SO_MARK: CRIU
// sets the field whenever it is there, which takes CAP_NET_ADMIN even for
// 0, and would fail an unprivileged restore of cryo's images.
func nonZero(o Int) Int {
	store := o.Store
	o.Store = func(e *skinet.InetSkEntry, v uint32) {
		if v != 0 {
			store(e, v)
		}
	}
	return o
}

func sockU32(name string, opt int, field func(*skopts.SkOptsEntry) **uint32) Int {
	return u32(name, unix.SOL_SOCKET, opt, field)
}

func tcpU32(name string, opt int, field func(*skopts.SkOptsEntry) **uint32) Int {
	return u32(name, unix.IPPROTO_TCP, opt, field)
}

func u32(name string, level, opt int, field func(*skopts.SkOptsEntry) **uint32) Int {
	return Int{name, level, opt,
		func(e *skinet.InetSkEntry) (uint32, bool) {
			if e.GetOpts() == nil {
				return 0, false
			}
			return u32Value(*field(e.Opts))
		},
		func(e *skinet.InetSkEntry, v uint32) { *field(opts(e)) = proto.Uint32(v) }}
}

func ipBool(name string, level, opt int, field func(*skinet.IpOptsEntry) **bool) Int {
	return Int{name, level, opt,
		func(e *skinet.InetSkEntry) (uint32, bool) {
			if e.GetIpOpts() == nil {
				return 0, false
			}
			return boolValue(*field(e.IpOpts))
		},
		func(e *skinet.InetSkEntry, v uint32) { *field(ipOpts(e)) = proto.Bool(v != 0) }}
}

// ipExt is an option CRIU's ip_opts_entry has no field for: cryo keeps it
// in an extra field (internal/image).
func ipExt(name string, level, opt int, field func(*image.IPOptsExt) **uint32) Int {
	return Int{name, level, opt,
		func(e *skinet.InetSkEntry) (uint32, bool) {
			if e.GetIpOpts() == nil {
				return 0, false
			}
			// The restore checks the extra fields first.
			x, err := image.GetIPOptsExt(e.IpOpts)
			if err != nil {
				return 0, false
			}
			return u32Value(*field(&x))
		},
		func(e *skinet.InetSkEntry, v uint32) {
			x, _ := image.GetIPOptsExt(ipOpts(e))
			*field(&x) = proto.Uint32(v)
			image.SetIPOptsExt(ipOpts(e), x)
		}}
}
