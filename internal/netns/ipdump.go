package netns

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// AddrDumpMagic opens the files `ip addr save` writes, which `ip addr
// showdump` and `ip addr restore` read: the host-order magic, then the
// RTM_NEWADDR messages of a dump, as CRIU keeps addresses in ifaddr-N.img.
const AddrDumpMagic = 0x47361222

// MaxDumpBytes bounds an address dump read from an image.
const MaxDumpBytes = 1 << 20

// EncodeAddrs writes the addresses of s's links as `ip addr save` would.
func EncodeAddrs(s *State) []byte {
	b := binary.NativeEndian.AppendUint32(nil, AddrDumpMagic)
	for _, l := range s.Links {
		for _, a := range l.Addrs {
			ip, ipnet, err := net.ParseCIDR(a.CIDR)
			if err != nil {
				continue // Check refused it already
			}
			family := nl.GetIPFamily(ip)
			raw := ip.To4()
			if family == unix.AF_INET6 {
				raw = ip.To16()
			}
			ones, _ := ipnet.Mask.Size()
			msg := nl.NewIfAddrmsg(family)
			msg.Prefixlen, msg.Scope, msg.Index = uint8(ones), uint8(a.Scope), uint32(l.Index)
			msg.Flags = uint8(a.Flags)
			body := msg.Serialize()
			dst := raw
			if a.Peer != "" {
				if pip, _, err := net.ParseCIDR(a.Peer); err == nil {
					dst = pip.To16()
					if family == unix.AF_INET {
						dst = pip.To4()
					}
				}
			}
			attrs := []*nl.RtAttr{nl.NewRtAttr(unix.IFA_ADDRESS, dst)}
			if family == unix.AF_INET || a.Peer != "" {
				attrs = append(attrs, nl.NewRtAttr(unix.IFA_LOCAL, raw))
			}
			if bc := net.ParseIP(a.Broadcast); bc != nil && bc.To4() != nil {
				attrs = append(attrs, nl.NewRtAttr(unix.IFA_BROADCAST, bc.To4()))
			}
			if a.Label != "" {
				attrs = append(attrs, nl.NewRtAttr(unix.IFA_LABEL, nl.ZeroTerminated(a.Label)))
			}
			attrs = append(attrs, nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(uint32(a.Flags))))
			for _, at := range attrs {
				body = append(body, at.Serialize()...)
			}
			hdr := make([]byte, unix.SizeofNlMsghdr)
			binary.NativeEndian.PutUint32(hdr[0:], uint32(len(hdr)+len(body)))
			binary.NativeEndian.PutUint16(hdr[4:], unix.RTM_NEWADDR)
			binary.NativeEndian.PutUint16(hdr[6:], unix.NLM_F_MULTI)
			b = append(append(b, hdr...), body...)
		}
	}
	return b
}

// DecodeAddrs reads an address dump: the addresses by the index their
// link had.
func DecodeAddrs(b []byte) (map[int][]Addr, error) {
	if len(b) > MaxDumpBytes {
		return nil, fmt.Errorf("address dump of %d bytes (at most %d)", len(b), MaxDumpBytes)
	}
	if len(b) < 4 || binary.NativeEndian.Uint32(b) != AddrDumpMagic {
		return nil, fmt.Errorf("not an address dump (ip addr save): bad magic")
	}
	out := map[int][]Addr{}
	n := 0
	for b = b[4:]; len(b) > 0; {
		if len(b) < unix.SizeofNlMsghdr {
			return nil, fmt.Errorf("address dump: truncated message header")
		}
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.SizeofNlMsghdr+unix.SizeofIfAddrmsg || l > len(b) {
			return nil, fmt.Errorf("address dump: message of %d bytes", l)
		}
		if typ := binary.NativeEndian.Uint16(b[4:]); typ != unix.RTM_NEWADDR {
			return nil, fmt.Errorf("address dump: message of type %d", typ)
		}
		body := b[unix.SizeofNlMsghdr:l]
		b = b[min((l+3)&^3, len(b)):]
		if n++; n > MaxLinks*MaxAddrs {
			return nil, fmt.Errorf("address dump: over %d addresses", MaxLinks*MaxAddrs)
		}
		msg := nl.DeserializeIfAddrmsg(body)
		attrs, err := nl.ParseRouteAttr(body[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, fmt.Errorf("address dump: %w", err)
		}
		var local, address, bcast net.IP
		a := Addr{Scope: int(msg.Scope), Flags: int(msg.Flags)}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_LOCAL:
				local = net.IP(at.Value)
			case unix.IFA_ADDRESS:
				address = net.IP(at.Value)
			case unix.IFA_BROADCAST:
				bcast = net.IP(at.Value)
			case unix.IFA_LABEL:
				a.Label = nl.BytesToString(at.Value)
			case unix.IFA_FLAGS:
				if len(at.Value) >= 4 {
					a.Flags = int(binary.NativeEndian.Uint32(at.Value))
				}
			}
		}
		bits := 32
		if msg.Family == unix.AF_INET6 {
			bits = 128
		}
		if local == nil {
			local = address
		} else if address != nil && !address.Equal(local) {
			a.Peer = (&net.IPNet{IP: address, Mask: net.CIDRMask(int(msg.Prefixlen), bits)}).String()
		}
		if local == nil || (len(local) != 4 && len(local) != 16) || int(msg.Prefixlen) > bits {
			return nil, fmt.Errorf("address dump: bad address on link %d", msg.Index)
		}
		a.CIDR = (&netlink.Addr{IPNet: &net.IPNet{IP: local, Mask: net.CIDRMask(int(msg.Prefixlen), bits)}}).IPNet.String()
		if bcast != nil {
			a.Broadcast = bcast.String()
		}
		out[int(msg.Index)] = append(out[int(msg.Index)], a)
	}
	return out, nil
}

// RouteDumpMagic opens the files `ip route save` writes (`ip route
// showdump` reads them): the host-order magic, then RTM_NEWROUTE messages,
// as CRIU keeps routes in route-N.img.
const RouteDumpMagic = 0x45311224

// ip16or4 is ip in the length of its family.
func ip16or4(ip net.IP, family int) []byte {
	if family == unix.AF_INET {
		return ip.To4()
	}
	return ip.To16()
}

// EncodeRoutes writes s's routes as `ip route save` would, naming links by
// their index in s.
func EncodeRoutes(s *State) []byte {
	index := map[string]int{}
	for _, l := range s.Links {
		index[l.Name] = l.Index
	}
	b := binary.NativeEndian.AppendUint32(nil, RouteDumpMagic)
	for _, r := range s.Routes {
		msg := &nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(r.Family), Table: uint8(min(r.Table, 255)), Protocol: uint8(r.Protocol),
			Scope: uint8(r.Scope), Type: unix.RTN_UNICAST}}
		var attrs []*nl.RtAttr
		if r.Dst != "" {
			if _, dst, err := net.ParseCIDR(r.Dst); err == nil {
				ones, _ := dst.Mask.Size()
				msg.Dst_len = uint8(ones)
				attrs = append(attrs, nl.NewRtAttr(unix.RTA_DST, ip16or4(dst.IP, r.Family)))
			}
		}
		if gw := net.ParseIP(r.Gw); gw != nil {
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_GATEWAY, ip16or4(gw, r.Family)))
		}
		if src := net.ParseIP(r.Src); src != nil {
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_PREFSRC, ip16or4(src, r.Family)))
		}
		if r.Dev != "" {
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(index[r.Dev]))))
		}
		if r.Priority != 0 {
			attrs = append(attrs, nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(r.Priority))))
		}
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(r.Table))))
		body := msg.Serialize()
		for _, at := range attrs {
			body = append(body, at.Serialize()...)
		}
		hdr := make([]byte, unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(hdr[0:], uint32(len(hdr)+len(body)))
		binary.NativeEndian.PutUint16(hdr[4:], unix.RTM_NEWROUTE)
		binary.NativeEndian.PutUint16(hdr[6:], unix.NLM_F_MULTI)
		b = append(append(b, hdr...), body...)
	}
	return b
}

// DecodeRoutes reads a route dump; names gives the link of each saved
// index.
func DecodeRoutes(b []byte, names map[int]string) ([]Route, error) {
	if len(b) > MaxDumpBytes {
		return nil, fmt.Errorf("route dump of %d bytes (at most %d)", len(b), MaxDumpBytes)
	}
	if len(b) < 4 || binary.NativeEndian.Uint32(b) != RouteDumpMagic {
		return nil, fmt.Errorf("not a route dump (ip route save): bad magic")
	}
	var out []Route
	for b = b[4:]; len(b) > 0; {
		if len(b) < unix.SizeofNlMsghdr {
			return nil, fmt.Errorf("route dump: truncated message header")
		}
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.SizeofNlMsghdr+unix.SizeofRtMsg || l > len(b) {
			return nil, fmt.Errorf("route dump: message of %d bytes", l)
		}
		if typ := binary.NativeEndian.Uint16(b[4:]); typ != unix.RTM_NEWROUTE {
			return nil, fmt.Errorf("route dump: message of type %d", typ)
		}
		body := b[unix.SizeofNlMsghdr:l]
		b = b[min((l+3)&^3, len(b)):]
		if len(out) >= MaxRoutes {
			return nil, fmt.Errorf("route dump: over %d routes", MaxRoutes)
		}
		msg := nl.DeserializeRtMsg(body)
		if msg.Family != unix.AF_INET && msg.Family != unix.AF_INET6 {
			return nil, fmt.Errorf("route dump: family %d", msg.Family)
		}
		bits := 32
		if msg.Family == unix.AF_INET6 {
			bits = 128
		}
		if int(msg.Dst_len) > bits {
			return nil, fmt.Errorf("route dump: prefix length %d", msg.Dst_len)
		}
		attrs, err := nl.ParseRouteAttr(body[unix.SizeofRtMsg:])
		if err != nil {
			return nil, fmt.Errorf("route dump: %w", err)
		}
		r := Route{Family: int(msg.Family), Table: int(msg.Table), Protocol: int(msg.Protocol), Scope: int(msg.Scope)}
		ipOK := func(v []byte) bool { return len(v) == bits/8 }
		for _, at := range attrs {
			v := at.Value
			switch at.Attr.Type {
			case unix.RTA_DST:
				if !ipOK(v) {
					return nil, fmt.Errorf("route dump: bad destination")
				}
				r.Dst = (&net.IPNet{IP: net.IP(v), Mask: net.CIDRMask(int(msg.Dst_len), bits)}).String()
			case unix.RTA_GATEWAY, unix.RTA_PREFSRC:
				if !ipOK(v) {
					return nil, fmt.Errorf("route dump: bad address")
				}
				if at.Attr.Type == unix.RTA_GATEWAY {
					r.Gw = net.IP(v).String()
				} else {
					r.Src = net.IP(v).String()
				}
			case unix.RTA_OIF, unix.RTA_PRIORITY, unix.RTA_TABLE:
				if len(v) < 4 {
					return nil, fmt.Errorf("route dump: short attribute %d", at.Attr.Type)
				}
				n := int(binary.NativeEndian.Uint32(v))
				switch at.Attr.Type {
				case unix.RTA_OIF:
					if r.Dev = names[n]; r.Dev == "" {
						return nil, fmt.Errorf("route dump: link %d is not in the namespace", n)
					}
				case unix.RTA_PRIORITY:
					r.Priority = n
				default:
					r.Table = n
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}
