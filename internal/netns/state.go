// Package netns saves and rebuilds the network namespaces of a tree: their
// links (the loopback, veth pairs), the links' state and addresses, and the
// namespace's sysctls. cryo does not enter a namespace itself: a helper,
// cryo's own executable started as a blank stub and moved into the
// namespace by injected setns calls (see Start), reads and sets it there
// with vishvananda/netlink, as a program of the namespace would.
package netns

import (
	"fmt"
	"net"
)

// Limits on what an image may hold: images are untrusted input.
const (
	MaxLinks   = 64
	MaxAddrs   = 256
	MaxSysctls = 4096
	MaxRoutes  = 1024
)

// State is what cryo saves of one net namespace.
type State struct {
	Links  []Link
	Routes []Route
	// Sysctls are the namespace's settings under /proc/sys/net, by path
	// below it ("ipv4/ping_group_range"), as read (whitespace collapsed).
	Sysctls map[string]string
}

// Link is one network device of the namespace.
type Link struct {
	Name  string
	Index int
	// Kind is netlink's link type: "device" for the loopback, "veth".
	Kind  string
	Flags uint32 // IFF_*: IFF_UP is what is restored
	MTU   int
	// HWAddr is a veth's MAC address, given back (the loopback has none).
	HWAddr []byte
	Addrs  []Addr
	// PeerIndex is a veth's other end's index, in the namespace
	// PeerNetnsID names (netlink's IFLA_LINK_NETNSID, -1: this one).
	PeerIndex   int
	PeerNetnsID int
	// PeerNs is the id in the images of the namespace of a veth's other
	// end, and PeerName its name there.
	PeerNs   uint32
	PeerName string
}

// Route is a route a program added (not one the kernel derives from an
// address), by the name of its link.
type Route struct {
	Dst      string // CIDR; "" for the default route
	Gw       string
	Src      string
	Dev      string
	Table    int
	Scope    int
	Protocol int
	Priority int
	Family   int
}

// Addr is one address of a link.
type Addr struct {
	// CIDR is the local address and prefix ("127.0.0.2/8").
	CIDR      string
	Peer      string // point-to-point peer, if any
	Broadcast string
	Label     string
	Scope     int
	Flags     int
}

// Up reports whether the link was up.
func (l *Link) Up() bool { return l.Flags&uint32(net.FlagUp) != 0 }

// Check refuses a state no namespace could have had.
func (s *State) Check() error {
	if len(s.Links) > MaxLinks {
		return fmt.Errorf("%d links (at most %d)", len(s.Links), MaxLinks)
	}
	if len(s.Sysctls) > MaxSysctls {
		return fmt.Errorf("%d sysctls (at most %d)", len(s.Sysctls), MaxSysctls)
	}
	if len(s.Routes) > MaxRoutes {
		return fmt.Errorf("%d routes (at most %d)", len(s.Routes), MaxRoutes)
	}
	for _, l := range s.Links {
		if l.Kind == "veth" && (l.PeerName == "" || len(l.PeerName) >= 16) {
			return fmt.Errorf("link %s: veth peer %q: bad name", l.Name, l.PeerName)
		}
		if l.Name == "" || len(l.Name) >= 16 {
			return fmt.Errorf("link %q: bad name", l.Name)
		}
		if len(l.HWAddr) > 32 {
			return fmt.Errorf("link %s: hardware address of %d bytes", l.Name, len(l.HWAddr))
		}
		if l.MTU < 0 || l.MTU > 1<<20 {
			return fmt.Errorf("link %s: MTU %d", l.Name, l.MTU)
		}
		if len(l.Addrs) > MaxAddrs {
			return fmt.Errorf("link %s: %d addresses (at most %d)", l.Name, len(l.Addrs), MaxAddrs)
		}
		for _, a := range l.Addrs {
			if _, _, err := net.ParseCIDR(a.CIDR); err != nil {
				return fmt.Errorf("link %s: address %q: %w", l.Name, a.CIDR, err)
			}
		}
	}
	return nil
}
