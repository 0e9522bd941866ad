package netns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// request is one order to a helper, a JSON line on its standard input.
type request struct {
	Op    string // "read", "apply", "unix", "veth", "lock" or "unlock"
	State *State `json:",omitempty"`
	// Veth: the pair to make, and the PID of a process in the
	// namespace of its other end (veth).
	Veth    *Link `json:",omitempty"`
	PeerPid int   `json:",omitempty"`
	// Lock: the connections to lock and the table's key (lock, unlock).
	Lock    []netlock.Conn `json:",omitempty"`
	LockKey int            `json:",omitempty"`
}

// response is the helper's answer, a JSON line on its standard output.
type response struct {
	State *State                    `json:",omitempty"`
	Unix  map[uint32]*sockdiag.Unix `json:",omitempty"`
	Err   string                    `json:",omitempty"`
}

// RunHelper serves requests on standard input until it closes; it is the
// whole life of a helper (cryo.Init calls it for HelperName). It returns
// the exit status.
func RunHelper() int {
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintf(os.Stderr, "cryo: net namespace helper: %v\n", err)
			return 1
		}
		var resp response
		var err error
		switch req.Op {
		case "read":
			resp.State, err = read()
		case "apply":
			if req.State == nil {
				err = errors.New("no state to apply")
			} else {
				err = apply(req.State)
			}
		case "unix":
			resp.Unix, err = sockdiag.Unixes()
		case "veth":
			err = makeVeth(req.Veth, req.PeerPid)
		case "lock":
			err = netlock.Lock(req.LockKey, req.Lock)
		case "unlock":
			err = netlock.Unlock(req.LockKey)
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			resp.Err = err.Error()
		}
		if err := enc.Encode(&resp); err != nil {
			return 1
		}
	}
}

// read saves the helper's net namespace.
func read() (*State, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	if len(links) > MaxLinks {
		return nil, fmt.Errorf("%d links: at most %d are saved", len(links), MaxLinks)
	}
	s := &State{}
	for _, l := range links {
		a := l.Attrs()
		link := Link{Name: a.Name, Index: a.Index, Kind: l.Type(), Flags: uint32(a.RawFlags), MTU: a.MTU}
		switch l.Type() {
		case "device":
			if a.Flags&net.FlagLoopback == 0 {
				return nil, fmt.Errorf("link %s: a physical device in the namespace: not supported", a.Name)
			}
		case "veth":
			peer, err := netlink.VethPeerIndex(l.(*netlink.Veth))
			if err != nil {
				return nil, fmt.Errorf("link %s: its veth peer: %w", a.Name, err)
			}
			link.PeerIndex, link.PeerNetnsID = peer, a.NetNsID
			link.HWAddr = a.HardwareAddr
		default:
			return nil, fmt.Errorf("link %s: links of type %s are not supported yet", a.Name, l.Type())
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("link %s: addresses: %w", a.Name, err)
		}
		if len(addrs) > MaxAddrs {
			return nil, fmt.Errorf("link %s: %d addresses: at most %d are saved", a.Name, len(addrs), MaxAddrs)
		}
		for _, ad := range addrs {
			e := Addr{CIDR: ad.IPNet.String(), Label: ad.Label, Scope: ad.Scope, Flags: ad.Flags}
			if ad.Peer != nil {
				e.Peer = ad.Peer.String()
			}
			if ad.Broadcast != nil {
				e.Broadcast = ad.Broadcast.String()
			}
			link.Addrs = append(link.Addrs, e)
		}
		s.Links = append(s.Links, link)
	}
	if s.Routes, err = readRoutes(links); err != nil {
		return nil, err
	}
	if s.Sysctls, err = readSysctls(); err != nil {
		return nil, err
	}
	return s, nil
}

// readRoutes saves the routes of the main table that a program added:
// those the kernel makes for an address (protocol kernel) come back with
// the address, and the local table is the kernel's.
func readRoutes(links []netlink.Link) ([]Route, error) {
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL || (r.Family == unix.AF_INET6 && r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) ||
			r.Type != unix.RTN_UNICAST || (r.Family == unix.AF_INET6 && r.Protocol == unix.RTPROT_RA) {
			continue
		}
		if len(r.MultiPath) > 0 {
			return nil, fmt.Errorf("route to %v: multipath routes are not supported yet", r.Dst)
		}
		e := Route{Dev: names[r.LinkIndex], Table: r.Table, Scope: int(r.Scope), Protocol: int(r.Protocol), Priority: r.Priority, Family: r.Family}
		if r.LinkIndex != 0 && e.Dev == "" {
			return nil, fmt.Errorf("route to %v: its link %d is not in the namespace", r.Dst, r.LinkIndex)
		}
		if r.Dst != nil {
			e.Dst = r.Dst.String()
		}
		if r.Gw != nil {
			e.Gw = r.Gw.String()
		}
		if r.Src != nil {
			e.Src = r.Src.String()
		}
		out = append(out, e)
	}
	if len(out) > MaxRoutes {
		return nil, fmt.Errorf("%d routes: at most %d are saved", len(out), MaxRoutes)
	}
	return out, nil
}

// makeVeth makes the veth pair l (its name here, PeerName in the
// namespace of process peerPid).
func makeVeth(l *Link, peerPid int) error {
	if l == nil || l.Name == "" || l.PeerName == "" {
		return errors.New("veth: no names")
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", peerPid))
	if err != nil {
		return fmt.Errorf("veth %s: the namespace of its peer %s: %w", l.Name, l.PeerName, err)
	}
	defer ns.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.Name}, PeerName: l.PeerName, PeerNamespace: netlink.NsFd(int(ns.Fd()))}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s (peer %s): %w", l.Name, l.PeerName, err)
	}
	return nil
}

// sysctlRoot is where the namespace's settings are, as its members see
// them.
const sysctlRoot = "/proc/sys/net/"

// sysctlFiles are the settings saved besides the per-device ones: those
// CRIU saves, and the ones sandboxes and servers change.
var sysctlFiles = []string{
	"core/somaxconn",
	"unix/max_dgram_qlen",
	"ipv4/ping_group_range",
	"ipv4/ip_local_port_range",
	"ipv4/ip_forward",
	"ipv4/ip_unprivileged_port_start",
	"ipv4/tcp_syncookies",
	"ipv6/conf/all/forwarding",
}

// readSysctls reads the settings: the files above and every per-device
// one of IPv4 and IPv6 (all, default and each link). A setting that
// cannot be read (absent here, write-only) is skipped.
func readSysctls() (map[string]string, error) {
	out := map[string]string{}
	readOne := func(rel string) {
		b, err := os.ReadFile(sysctlRoot + rel)
		if err == nil {
			out[rel] = strings.Join(strings.Fields(string(b)), " ")
		}
	}
	for _, rel := range sysctlFiles {
		readOne(rel)
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		files, _ := filepath.Glob(sysctlRoot + fam + "/conf/*/*")
		for _, f := range files {
			if st, err := os.Stat(f); err != nil || st.Mode()&0o222 == 0 || st.Mode()&0o444 == 0 {
				continue // read-only settings are the kernel's, not the program's
			}
			readOne(strings.TrimPrefix(f, sysctlRoot))
		}
	}
	if len(out) > MaxSysctls {
		return nil, fmt.Errorf("%d sysctls: at most %d are saved", len(out), MaxSysctls)
	}
	return out, nil
}

// isDeviceConf reports whether a setting belongs to one device (not to
// all or default), and which.
func isDeviceConf(rel string) (dev string, ok bool) {
	parts := strings.Split(rel, "/")
	if len(parts) == 4 && parts[1] == "conf" && parts[2] != "all" && parts[2] != "default" {
		return parts[2], true
	}
	return "", false
}

// writeSysctls sets the saved settings that differ from the namespace's
// current ones: the namespace-wide ones when devs is false, the per-device
// ones when it is true. "all" goes before "default" before the rest, as
// they change the others.
func writeSysctls(saved map[string]string, devs bool) error {
	var names []string
	for rel := range saved {
		if _, dev := isDeviceConf(rel); dev == devs {
			names = append(names, rel)
		}
	}
	rank := func(rel string) int {
		switch {
		case strings.Contains(rel, "/conf/all/"):
			return 0
		case strings.Contains(rel, "/conf/default/"):
			return 1
		}
		return 2
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	for _, rel := range names {
		if strings.Contains(rel, "..") {
			return fmt.Errorf("sysctl %q: bad name", rel)
		}
		path := sysctlRoot + rel
		cur, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // this kernel lacks it
		}
		if err != nil {
			continue // unreadable here: nothing to compare, leave it
		}
		want := saved[rel]
		if strings.Join(strings.Fields(string(cur)), " ") == want {
			continue
		}
		if err := os.WriteFile(path, []byte(want), 0); err != nil {
			return fmt.Errorf("sysctl net.%s: set %q (is %q): %w", strings.ReplaceAll(rel, "/", "."), want, strings.TrimSpace(string(cur)), err)
		}
	}
	return nil
}

// apply makes the helper's new net namespace what s describes: its
// settings, then each link's MTU, state and addresses, then the per-device
// settings.
func apply(s *State) error {
	if err := s.Check(); err != nil {
		return err
	}
	if err := writeSysctls(s.Sysctls, false); err != nil {
		return err
	}
	for _, l := range s.Links {
		link, err := netlink.LinkByName(l.Name)
		var notFound netlink.LinkNotFoundError
		if l.Kind == "veth" && errors.As(err, &notFound) {
			continue // made once both its namespaces exist, then applied again
		}
		if err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
		if len(l.HWAddr) > 0 && !bytes.Equal(link.Attrs().HardwareAddr, l.HWAddr) {
			if err := netlink.LinkSetHardwareAddr(link, l.HWAddr); err != nil {
				return fmt.Errorf("link %s: hardware address %s: %w", l.Name, net.HardwareAddr(l.HWAddr), err)
			}
		}
		if l.MTU != 0 && link.Attrs().MTU != l.MTU {
			if err := netlink.LinkSetMTU(link, l.MTU); err != nil {
				return fmt.Errorf("link %s: MTU %d: %w", l.Name, l.MTU, err)
			}
		}
		if l.Up() {
			if err := netlink.LinkSetUp(link); err != nil {
				return fmt.Errorf("link %s: up: %w", l.Name, err)
			}
		} else if link.Attrs().Flags&net.FlagUp != 0 {
			if err := netlink.LinkSetDown(link); err != nil {
				return fmt.Errorf("link %s: down: %w", l.Name, err)
			}
		}
		if err := setAddrs(link, l); err != nil {
			return err
		}
	}
	if err := setRoutes(s.Routes); err != nil {
		return err
	}
	return writeSysctls(s.Sysctls, true)
}

// setRoutes adds the saved routes whose link exists (a veth not made yet
// is skipped: apply runs again once it is).
func setRoutes(routes []Route) error {
	for _, r := range routes {
		nr := &netlink.Route{Table: r.Table, Scope: netlink.Scope(r.Scope), Protocol: netlink.RouteProtocol(r.Protocol), Priority: r.Priority, Family: r.Family}
		if r.Dev != "" {
			link, err := netlink.LinkByName(r.Dev)
			if err != nil {
				var notFound netlink.LinkNotFoundError
				if errors.As(err, &notFound) {
					continue
				}
				return fmt.Errorf("route to %s: link %s: %w", r.Dst, r.Dev, err)
			}
			nr.LinkIndex = link.Attrs().Index
		}
		var err error
		if r.Dst != "" {
			if nr.Dst, err = netlink.ParseIPNet(r.Dst); err != nil {
				return fmt.Errorf("route to %q: %w", r.Dst, err)
			}
		}
		if r.Gw != "" {
			if nr.Gw = net.ParseIP(r.Gw); nr.Gw == nil {
				return fmt.Errorf("route to %s: bad gateway %q", r.Dst, r.Gw)
			}
		}
		if r.Src != "" {
			if nr.Src = net.ParseIP(r.Src); nr.Src == nil {
				return fmt.Errorf("route to %s: bad source %q", r.Dst, r.Src)
			}
		}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("route to %s via %s dev %s: %w", or(r.Dst, "default"), r.Gw, r.Dev, err)
		}
	}
	return nil
}

// or is s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// userAddrFlags are the address flags a program sets; the others are the
// kernel's (permanent, tentative...).
const userAddrFlags = unix.IFA_F_NODAD | unix.IFA_F_HOMEADDRESS | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_MCAUTOJOIN

// setAddrs gives link the saved addresses, in their order (the first of a
// subnet is its primary), and removes those the kernel added that were not
// there (a loopback brought up gets 127.0.0.1 and ::1).
func setAddrs(link netlink.Link, l Link) error {
	want := map[string]bool{}
	for _, a := range l.Addrs {
		ipnet, err := netlink.ParseIPNet(a.CIDR)
		if err != nil {
			return fmt.Errorf("link %s: address %q: %w", l.Name, a.CIDR, err)
		}
		addr := &netlink.Addr{IPNet: ipnet, Label: a.Label, Scope: a.Scope, Flags: a.Flags & userAddrFlags}
		if a.Peer != "" {
			if addr.Peer, err = netlink.ParseIPNet(a.Peer); err != nil {
				return fmt.Errorf("link %s: peer address %q: %w", l.Name, a.Peer, err)
			}
		}
		if a.Broadcast != "" {
			addr.Broadcast = net.ParseIP(a.Broadcast)
		}
		if ipnet.IP.To4() == nil && ipnet.IP.IsLinkLocalUnicast() {
			continue // the kernel's own, made again when the link comes up
		}
		if ipnet.IP.To4() == nil {
			// No duplicate address detection: the address was usable
			// when dumped and must be at once, not in a second.
			addr.Flags |= unix.IFA_F_NODAD
		}
		want[ipnet.String()] = true
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("link %s: address %s: %w", l.Name, a.CIDR, err)
		}
	}
	have, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("link %s: addresses: %w", l.Name, err)
	}
	for _, a := range have {
		if want[a.IPNet.String()] || (a.IPNet.IP.IsLinkLocalUnicast() && a.IPNet.IP.To4() == nil) {
			continue // a link-local IPv6 address is the kernel's own
		}
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("link %s: remove address %s the kernel added: %w", l.Name, a.IPNet, err)
		}
	}
	return nil
}
