package dump

import (
	"errors"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/netns"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// netNamespace is one of the tree's own net namespaces: a helper inside
// it (see netns.Helper), kept until the dump ends to list its sockets, and
// what the helper read of it.
type netNamespace struct {
	ino    uint64
	pid    int // its first process in the tree
	helper *netns.Helper
	state  *netns.State
}

// netTable holds the tree's net namespaces, in the order first met.
type netTable struct {
	byIno map[uint64]*netNamespace
	order []*netNamespace
}

// addNet records p's net namespace ino, not cryo's. The restore makes it
// from p once p is in its user namespace: it must own it, as for UTS and
// IPC. Its state is read at once (the tree is frozen) by a helper inside.
func (t *nsTable) addNet(p *process, ino uint64) error {
	t.id("net", ino)
	if t.nets.byIno[ino] != nil {
		return nil
	}
	if err := ownedByOwnUserns(p, "net", ino); err != nil {
		return err
	}
	h, err := netns.Start("/proc/self/exe", p.pid)
	if err != nil {
		return err
	}
	n := &netNamespace{ino: ino, pid: p.pid, helper: h}
	if t.nets.byIno == nil {
		t.nets.byIno = map[uint64]*netNamespace{}
	}
	t.nets.byIno[ino] = n
	t.nets.order = append(t.nets.order, n)
	if n.state, err = h.Read(); err != nil {
		return fmt.Errorf("process %d: net namespace %d: %w", p.pid, ino, err)
	}
	return nil
}

// closeNets stops the helpers.
func (t *nsTable) closeNets() {
	for _, n := range t.nets.order {
		n.helper.Close()
	}
}

// unixes lists the Unix sockets of cryo's net namespace and of each of the
// tree's, and the id of the tree's namespace each of those is in:
// sock_diag shows a socket only to its own namespace.
func (t *nsTable) unixes() (map[uint32]*sockdiag.Unix, map[uint32]uint32, error) {
	all, err := sockdiag.Unixes()
	if err != nil {
		return nil, nil, err
	}
	nsOf := map[uint32]uint32{}
	for _, n := range t.nets.order {
		diag, err := n.helper.Unixes()
		if err != nil {
			return nil, nil, fmt.Errorf("net namespace %d: %w", n.ino, err)
		}
		id := t.id("net", n.ino)
		for ino, u := range diag {
			all[ino], nsOf[ino] = u, id
		}
	}
	return all, nsOf, nil
}

// socketNs is the id of the tree's net namespace socket s (cryo's copy)
// lives in, 0 for cryo's own; a socket of another namespace is refused.
func (t *nsTable) socketNs(s int) (uint32, error) {
	fd, err := unix.IoctlRetInt(s, unix.SIOCGSKNS)
	if errors.Is(err, unix.EPERM) {
		// Only CAP_NET_ADMIN over a namespace shows it: a cryo without
		// root has it over the tree's own namespaces (their user
		// namespace is its user's), not over cryo's, where the socket is
		// then taken to be, as before namespaces were told apart.
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("its net namespace: %w", err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return 0, fmt.Errorf("its net namespace: %w", err)
	}
	if st.Ino == t.own["net"] {
		return 0, nil
	}
	if t.emptyNet && st.Ino == t.emptyNetIno {
		// The namespace left out (empty_ns, a container's): the socket is
		// made again in the new one.
		return t.id("net", st.Ino), nil
	}
	if t.nets.byIno[st.Ino] == nil {
		return 0, fmt.Errorf("it lives in net namespace %d, which no process of the tree is in: not supported", st.Ino)
	}
	return t.id("net", st.Ino), nil
}

// writeNets writes each net namespace: netns-ID.img (its settings),
// netdev-ID.img (its links) and ifaddr-ID.img (its addresses, as `ip addr
// save` writes them).
func (t *nsTable) writeNets(dir *image.Dir) error {
	if err := t.pairVeths(); err != nil {
		return err
	}
	for _, n := range t.nets.order {
		id := t.id("net", n.ino)
		e := &netdev.NetnsEntry{}
		image.SetNetnsSysctls(e, n.state.Sysctls)
		if err := dir.Write(image.NetnsName(id), "NETNS", e); err != nil {
			return err
		}
		var devs []proto.Message
		for _, l := range n.state.Links {
			d := &netdev.NetDeviceEntry{Type: ndType(l.Kind).Enum(), Ifindex: proto.Uint32(uint32(l.Index)),
				Mtu: proto.Uint32(uint32(l.MTU)), Flags: proto.Uint32(l.Flags), Name: proto.String(l.Name), Address: l.HWAddr}
			if l.Kind == "veth" {
				d.PeerIfindex = proto.Uint32(uint32(l.PeerIndex))
				d.PeerNsid = proto.Uint32(l.PeerNs)
			}
			devs = append(devs, d)
		}
		if err := dir.Write(image.NetdevName(id), "NETDEV", devs...); err != nil {
			return err
		}
		if err := dir.WriteRaw(image.IfaddrName(id), netns.EncodeAddrs(n.state)); err != nil {
			return err
		}
		if err := dir.WriteRaw(image.RouteName(id), netns.EncodeRoutes(n.state)); err != nil {
			return err
		}
	}
	return nil
}

// pairVeths finds the other end of each veth among the links of the
// tree's namespaces: the link whose index is this end's peer index and
// whose peer index is this end's, in this namespace if netlink says the
// peer is here, else in another. A veth whose other end is outside the
// tree (in cryo's namespace, or one no process of the tree is in) is
// refused: restoring it needs CRIU's --external veth[NAME], which cryo
// does not take yet.
func (t *nsTable) pairVeths() error {
	for _, n := range t.nets.order {
		for i := range n.state.Links {
			l := &n.state.Links[i]
			if l.Kind != "veth" {
				continue
			}
			var found []string
			for _, m := range t.nets.order {
				if (m == n) != (l.PeerNetnsID < 0) {
					continue
				}
				for _, k := range m.state.Links {
					if k.Kind == "veth" && k.Index == l.PeerIndex && k.PeerIndex == l.Index && (m != n || k.Name != l.Name) {
						found = append(found, k.Name)
						l.PeerNs, l.PeerName = t.id("net", m.ino), k.Name
					}
				}
			}
			switch {
			case len(found) == 0:
				return fmt.Errorf("net namespace %d (of process %d): veth %s: its peer (index %d) is outside the tree: not supported yet (CRIU's --external veth[%s])", n.ino, n.pid, l.Name, l.PeerIndex, l.Name)
			case len(found) > 1:
				return fmt.Errorf("net namespace %d (of process %d): veth %s: its peer could be any of %v: not supported", n.ino, n.pid, l.Name, found)
			}
		}
	}
	return nil
}

// ndType is CRIU's type of a link of netlink's kind.
func ndType(kind string) netdev.NdType {
	if kind == "veth" {
		return netdev.NdType_VETH
	}
	return netdev.NdType_LOOPBACK
}

// lockNets takes the network lock inside each of the tree's namespaces
// for the connections that live there (by namespace id), through their
// helpers: the namespace goes away with the tree, but until then a packet
// from a peer there (a process outside the tree that entered it) must not
// reset a connection already saved. On failure none is left locked.
func (t *nsTable) lockNets(key int, conns map[uint32][]netlock.Conn) error {
	var done []uint32
	for _, n := range t.nets.order {
		id := t.id("net", n.ino)
		if len(conns[id]) == 0 {
			continue
		}
		if err := n.helper.Lock(key, conns[id]); err != nil {
			for _, d := range done {
				t.netByID(d).helper.Unlock(key)
			}
			return fmt.Errorf("net namespace %d: %w", n.ino, err)
		}
		done = append(done, id)
	}
	return nil
}

// unlockNets removes the locks lockNets took.
func (t *nsTable) unlockNets(key int, conns map[uint32][]netlock.Conn) {
	for id := range conns {
		if n := t.netByID(id); n != nil {
			n.helper.Unlock(key)
		}
	}
}

// netByID is the tree's namespace of id id.
func (t *nsTable) netByID(id uint32) *netNamespace {
	for _, n := range t.nets.order {
		if t.ids["net"][n.ino] == id {
			return n
		}
	}
	return nil
}
