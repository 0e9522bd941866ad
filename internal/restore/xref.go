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
// own: the tree has such ids only if its root has (it makes the namespace),
// every live process has them then, and no id is used twice in one
// namespace.
func (s *snapshot) checkNsPids() error {
	root := s.procs[0]
	if root.nsPids == nil {
		for _, c := range s.procs {
			if c.nsPids != nil {
				return fmt.Errorf("%s: process %d has ids in a pid namespace of its own below a root in cryo's: nested pid namespaces are not supported", image.PstreeName, c.pid)
			}
		}
		return nil
	}
	type nsID struct{ ns, id uint32 }
	inner := map[nsID]int{}
	for _, c := range s.procs {
		if c.zombie && c.nsPids == nil {
			continue // zombies and helpers keep only their outer id
		}
		if c.nsPids == nil {
			return fmt.Errorf("%s: process %d has no id in the tree's pid namespace, which its root made", image.PstreeName, c.pid)
		}
		var ns uint32
		if len(c.cores) > 0 {
			ns = c.cores[0].GetIds().GetPidNsId()
		}
		for _, id := range c.nsPids {
			if id == 0 || id > 1<<22 {
				return fmt.Errorf("%s: process %d: invalid id %d in its pid namespace", image.PstreeName, c.pid, id)
			}
			if other, dup := inner[nsID{ns, id}]; dup {
				return fmt.Errorf("%s: processes %d and %d both have id %d in the tree's pid namespace", image.PstreeName, other, c.pid, id)
			}
			inner[nsID{ns, id}] = c.pid
		}
	}
	return nil
}
