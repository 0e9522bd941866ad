package restore

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
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
	for _, d := range devs {
		l := netns.Link{Name: d.GetName(), Index: int(d.GetIfindex()), Flags: d.GetFlags(), MTU: int(d.GetMtu()),
			Addrs: addrs[int(d.GetIfindex())]}
		switch d.GetType() {
		case netdev.NdType_LOOPBACK:
			l.Kind = "device"
		default:
			return fmt.Errorf("%s: link %s of type %s: not supported yet", image.NetdevName(id), d.GetName(), d.GetType())
		}
		if seen[l.Index] {
			return fmt.Errorf("%s: two links of index %d", image.NetdevName(id), l.Index)
		}
		seen[l.Index] = true
		st.Links = append(st.Links, l)
	}
	for idx := range addrs {
		if !seen[idx] {
			return fmt.Errorf("%s: addresses of link %d, which %s does not hold", image.IfaddrName(id), idx, image.NetdevName(id))
		}
	}
	if err := st.Check(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	s.ns.nets[id] = st
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
	defer h.Close()
	if err := h.Apply(r.snap.ns.nets[id]); err != nil {
		return fmt.Errorf("restore pid %d: net namespace %d: %w", p.c.pid, id, err)
	}
	r.logf("net namespace %d made by pid %d", id, p.c.pid)
	return nil
}

// socketNet is the id of the tree's restored net namespace socket file id
// lives in, 0 if it is cryo's.
func (fp *filePlan) socketNet(id uint32) uint32 {
	f := fp.snap.files[id]
	var ns uint32
	switch f.GetType() {
	case fdinfo.FdTypes_UNIXSK:
		ns = f.GetUsk().GetNsId()
	case fdinfo.FdTypes_INETSK:
		ns = f.GetIsk().GetNsId()
	}
	if fp.snap.ns.nets[ns] == nil {
		return 0
	}
	return ns
}

// planNetLate takes the sockets of the tree's own net namespaces out of
// phase one: they are made by the common ancestor lca of their holders
// once it is in its namespaces (openNetLate), and the other holders take
// a copy (copyLate). lca must be in the socket's namespace.
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
	for _, h := range holders {
		if cs := fp.lateCopies[h]; h != lca && (len(cs) == 0 || cs[len(cs)-1].id != id) {
			fp.lateCopies[h] = append(cs, lateCopy{id: id, from: lca})
		}
	}
	return true, nil
}

// openNetLate makes the sockets of p's net namespace planNetLate left to
// p, now that p is in it.
func (fp *filePlan) openNetLate(p *process) error {
	for _, id := range fp.netLate[p] {
		var err error
		if fp.snap.files[id].GetType() == fdinfo.FdTypes_UNIXSK {
			err = fp.makeUnix(p, id)
		} else {
			err = fp.makeInet(p, id)
		}
		if err != nil {
			return err
		}
		fp.madeIn[id] = p
	}
	return nil
}
