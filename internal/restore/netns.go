package restore

import (
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"io/fs"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netns"
	"golang.org/x/sys/unix"
)

// loadNet reads net namespace id's images into s.ns.nets, once: its
// settings (netns-ID.img), links (netdev-ID.img) and addresses
// (ifaddr-ID.img). A namespace without images is cryo's; one left out of
// the dump (empty_ns) is checkEmptyNet's.
func (s *snapshot) loadNet(dir *image.Dir, id uint32) error {
	if id == 0 || s.ns.nets[id] != nil {
		return nil
	}
	var e netdev.NetnsEntry
	if err := dir.ReadOne(image.NetnsName(id), "NETNS", &e); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if e.GetExtKey() != "" {
		return nil
	}
	where := image.NetnsName(id)
	st := &netns.State{}
	var err error
	if st.Sysctls, err = image.NetnsSysctls(&e, netns.MaxSysctls); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	devs, err := image.ReadEntries[*netdev.NetDeviceEntry](dir, image.NetdevName(id), "NETDEV")
	if err != nil {
		return err
	}
	if len(devs) > netns.MaxLinks {
		return fmt.Errorf("%s: %d links (at most %d)", image.NetdevName(id), len(devs), netns.MaxLinks)
	}
	raw, err := dir.ReadRaw(image.IfaddrName(id), netns.MaxDumpBytes)
	if err != nil {
		return err
	}
	addrs, err := netns.DecodeAddrs(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", image.IfaddrName(id), err)
	}
	seen := map[int]bool{}
	names := map[int]string{}
	for _, d := range devs {
		l := netns.Link{Name: d.GetName(), Index: int(d.GetIfindex()), Flags: d.GetFlags(), MTU: int(d.GetMtu()),
			Addrs: addrs[int(d.GetIfindex())], HWAddr: d.GetAddress()}
		switch d.GetType() {
		case netdev.NdType_LOOPBACK:
			l.Kind = "device"
		case netdev.NdType_VETH:
			l.Kind, l.PeerIndex, l.PeerNs = "veth", int(d.GetPeerIfindex()), d.GetPeerNsid()
		default:
			return fmt.Errorf("%s: link %s of type %s: not supported yet", image.NetdevName(id), d.GetName(), d.GetType())
		}
		if seen[l.Index] {
			return fmt.Errorf("%s: two links of index %d", image.NetdevName(id), l.Index)
		}
		seen[l.Index], names[l.Index] = true, l.Name
		st.Links = append(st.Links, l)
	}
	for idx := range addrs {
		if !seen[idx] {
			return fmt.Errorf("%s: addresses of link %d, which %s does not hold", image.IfaddrName(id), idx, image.NetdevName(id))
		}
	}
	raw, err = dir.ReadRaw(image.RouteName(id), netns.MaxDumpBytes)
	if err != nil {
		return err
	}
	if st.Routes, err = netns.DecodeRoutes(raw, names); err != nil {
		return fmt.Errorf("%s: %w", image.RouteName(id), err)
	}
	s.ns.nets[id] = st
	// A veth's other end: its name, from its own namespace's images,
	// which must say the same of this end.
	for i := range st.Links {
		l := &st.Links[i]
		if l.Kind != "veth" {
			continue
		}
		if err := s.loadNet(dir, l.PeerNs); err != nil {
			return err
		}
		peerNs := s.ns.nets[l.PeerNs]
		if peerNs == nil {
			return fmt.Errorf("%s: veth %s: its peer's namespace %d has no images", image.NetdevName(id), l.Name, l.PeerNs)
		}
		for _, p := range peerNs.Links {
			if p.Kind == "veth" && p.Index == l.PeerIndex && p.PeerIndex == l.Index && p.PeerNs == id {
				l.PeerName = p.Name
			}
		}
		if l.PeerName == "" {
			return fmt.Errorf("%s: veth %s: no link %d in namespace %d is its peer", image.NetdevName(id), l.Name, l.PeerIndex, l.PeerNs)
		}
	}
	if err := st.Check(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// createNet makes p a new net namespace, in the user namespace p is in
// now (so that namespace owns it), and gives it the saved links,
// addresses and settings through a helper inside (see netns.Helper).
func (r *restorer) createNet(p *process, id uint32) error {
	if _, err := p.leader.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("restore pid %d: create net namespace %d: %w", p.c.pid, id, err)
	}
	h, err := netns.Start(r.opts.StubPath, p.pid)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
	}
	if r.nets.byID == nil {
		r.nets.byID, r.nets.creators = map[uint32]*netns.Helper{}, map[uint32]*process{}
	}
	r.nets.byID[id], r.nets.creators[id] = h, p
	r.nets.order = append(r.nets.order, id)
	if err := h.Apply(r.snap.ns.nets[id]); err != nil {
		return fmt.Errorf("restore pid %d: net namespace %d: %w", p.c.pid, id, err)
	}
	r.logf("net namespace %d made by pid %d", id, p.c.pid)
	return nil
}

// socketNet is the id of the tree's restored net namespace socket file id
// lives in, 0 if it is cryo's.
func (fp *filePlan) socketNet(id uint32) uint32 {
	ns := fdkind.SocketNsID(fp.snap.files[id])
	if fp.snap.ns.nets[ns] == nil {
		return 0
	}
	return ns
}

// planNetLate takes the sockets of the tree's own net namespaces out of
// phase one: they are made by the common ancestor lca of their holders
// once every process is in its namespaces and the namespaces have their
// links (openNetLate, from finishNets), and the other holders take a copy
// then (copyNetLate). lca must be in the socket's namespace.
func (fp *filePlan) planNetLate(id uint32, lca *process, holders []*process) (bool, error) {
	ns := fp.socketNet(id)
	if ns == 0 {
		return false, nil
	}
	if got := lca.c.cores[0].GetIds().GetNetNsId(); got != ns {
		return false, fmt.Errorf("socket file %d of net namespace %d: its holders' common ancestor, pid %d, is in net namespace %d: not supported yet", id, ns, lca.c.pid, got)
	}
	if fp.netLate == nil {
		fp.netLate = map[*process][]uint32{}
	}
	fp.netLate[lca] = append(fp.netLate[lca], id)
	if fp.netLateCopies == nil {
		fp.netLateCopies = map[*process][]lateCopy{}
	}
	for _, h := range holders {
		if cs := fp.netLateCopies[h]; h != lca && (len(cs) == 0 || cs[len(cs)-1].id != id) {
			fp.netLateCopies[h] = append(cs, lateCopy{id: id, from: lca})
		}
	}
	return true, nil
}

// openNetLate makes the sockets of p's net namespace planNetLate left to
// p, now that p is in it.
func (fp *filePlan) openNetLate(p *process) error {
	for _, id := range fp.netLate[p] {
		var err error
		t := fp.snap.files[id].GetType()
		if k := fdkind.SocketOf(t); k != nil {
			before := fp.tcpRestored
			err = fp.makeSocket(p, id, k)
			fp.tcpInNets += fp.tcpRestored - before
		} else if k := fdkind.CreatorOf(t); k != nil {
			err = fp.makeKind(p, id, k)
		} else {
			err = fp.makeUnix(p, id)
		}
		if err != nil {
			return err
		}
		fp.madeIn[id] = p
	}
	return nil
}

// netHelpers are the helpers in the tree's new net namespaces, kept until
// every namespace exists and their veth pairs are made.
type netHelpers struct {
	byID     map[uint32]*netns.Helper
	creators map[uint32]*process
	order    []uint32
}

// close stops the helpers.
func (n *netHelpers) close() {
	for _, h := range n.byID {
		h.Close()
	}
	n.byID, n.creators, n.order = nil, nil, nil
}

// finishNets ends phase one for the net namespaces, once every process is
// in its namespaces: it makes the veth pairs between them, sets their
// ends (MTU, state, addresses, routes, settings), and only then makes the
// namespaces' sockets, which may be bound to those addresses.
func (r *restorer) finishNets() error {
	if len(r.nets.order) == 0 {
		return nil
	}
	ns := r.snap.ns.nets
	made := map[uint32]bool{}
	for _, id := range r.nets.order {
		for _, l := range ns[id].Links {
			if l.Kind != "veth" || made[l.PeerNs] && l.PeerNs != id {
				continue
			}
			peer := r.nets.creators[l.PeerNs]
			if peer == nil {
				return fmt.Errorf("net namespace %d: veth %s: the namespace of its peer %s (%d) has no process", id, l.Name, l.PeerName, l.PeerNs)
			}
			if l.PeerNs == id && l.Name > l.PeerName {
				continue // the pair in one namespace: made once, from its first end
			}
			if err := r.nets.byID[id].Veth(&l, peer.pid); err != nil {
				return fmt.Errorf("net namespace %d: %w", id, err)
			}
		}
		made[id] = true
	}
	for _, id := range r.nets.order {
		if err := r.nets.byID[id].Apply(ns[id]); err != nil {
			return fmt.Errorf("net namespace %d: %w", id, err)
		}
	}
	for _, p := range r.procs {
		if !p.c.zombie {
			if err := r.files.openNetLate(p); err != nil {
				return err
			}
		}
	}
	for _, p := range r.procs {
		if !p.c.zombie {
			if err := r.files.copyNetLate(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyNetLate gives p the sockets of the tree's net namespaces it shares
// with the ancestor that made them (pidfd_getfd: one open file for both).
func (fp *filePlan) copyNetLate(p *process) error {
	for _, c := range fp.netLateCopies[p] {
		where := fmt.Sprintf("restore pid %d: socket file %d from pid %d", p.c.pid, c.id, c.from.c.pid)
		if err := fp.copyFrom(p, c.from, c.id); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}
