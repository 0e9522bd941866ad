package restore

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/image"
)

// checkTreeRefs checks the references between the processes of the image
// that the restore would otherwise find wrong only once processes exist
// (it would then kill them all again): process groups and sessions, and
// the ids of a pid namespace of the tree's own. Images are untrusted.
func (s *snapshot) checkTreeRefs() error {
	root := s.procs[0]
	pids := map[uint32]bool{}
	for _, c := range s.procs {
		pids[uint32(c.pid)] = true
	}
	for _, c := range s.procs {
		if c.zombie {
			continue // a zombie (or helper) joins no group nor session
		}
		t := c.tree
		// A group is one of the tree's processes (or a helper standing
		// for its gone leader), the root's (a shell job's), or led by the
		// leader of the process's session.
		if g := t.GetPgid(); !pids[g] && g != root.tree.GetPgid() && g != t.GetSid() {
			return fmt.Errorf("%s: process %d: process group %d is neither a process of the tree nor the root's group", image.PstreeName, c.pid, g)
		}
		if sid := t.GetSid(); !pids[sid] && sid != root.tree.GetSid() {
			return fmt.Errorf("%s: process %d: session %d is neither a process of the tree nor the root's session", image.PstreeName, c.pid, sid)
		}
	}
	return s.checkNsPids()
}

// checkNsPids checks the ids of processes in a pid namespace of the tree's
// own: the root's (then every live process has ids in it), or one nested
// one level below cryo's, made below a root in cryo's pid namespace (as
// sandboxes do), whose first process is its init, and no id is used twice
// in one namespace.
func (s *snapshot) checkNsPids() error {
	root := s.procs[0]
	byPid := map[int]*checkpoint{}
	for _, c := range s.procs {
		byPid[c.pid] = c
	}
	pidNs := func(c *checkpoint) uint32 {
		for c != nil {
			if len(c.cores) > 0 && c.cores[0].GetIds() != nil {
				return c.cores[0].GetIds().GetPidNsId()
			}
			c = byPid[int(c.tree.GetPpid())]
			if c == nil || c.pid == root.pid && len(c.cores) == 0 {
				break
			}
		}
		return 0
	}
	for _, c := range s.procs[1:] {
		parent := byPid[int(c.tree.GetPpid())]
		switch {
		case root.nsPids != nil && c.nsPids == nil && !c.zombie:
			return fmt.Errorf("%s: process %d has no id in the tree's pid namespace, which its root made", image.PstreeName, c.pid)
		case root.nsPids != nil && !c.zombie && pidNs(c) != pidNs(root):
			return fmt.Errorf("%s: process %d is in a pid namespace nested in the tree's own: pid namespaces more than one level below cryo's are not supported", image.PstreeName, c.pid)
		case root.nsPids != nil:
		case c.nsPids != nil && parent.nsPids == nil && c.zombie:
			return fmt.Errorf("%s: process %d, a zombie, was the init of a nested pid namespace: not supported", image.PstreeName, c.pid)
		case c.nsPids != nil && parent.nsPids == nil && c.nsPids[0] != 1:
			return fmt.Errorf("%s: process %d is pid %d of a nested pid namespace and its parent %d is outside it: only its init may be", image.PstreeName, c.pid, c.nsPids[0], parent.pid)
		case c.nsPids == nil && parent.nsPids != nil && !c.zombie:
			return fmt.Errorf("%s: process %d has no id in the nested pid namespace of its parent %d", image.PstreeName, c.pid, parent.pid)
		}
	}
	type nsID struct{ ns, id uint32 }
	inner := map[nsID]int{}
	for _, c := range s.procs {
		if c.nsPids == nil {
			continue // zombies and helpers may keep only their outer id
		}
		ns := pidNs(c)
		for _, id := range c.nsPids {
			if id == 0 || id > 1<<22 {
				return fmt.Errorf("%s: process %d: invalid id %d in its pid namespace", image.PstreeName, c.pid, id)
			}
			if other, dup := inner[nsID{ns, id}]; dup {
				return fmt.Errorf("%s: processes %d and %d both have id %d in one pid namespace", image.PstreeName, other, c.pid, id)
			}
			inner[nsID{ns, id}] = c.pid
		}
	}
	return nil
}
