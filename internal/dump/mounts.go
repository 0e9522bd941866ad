package dump

import (
	"fmt"
	"io"
	"os"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
)

// addMountNs records the mount namespace ino of p, once: it must belong to
// the user namespace of its first process in the tree (restore creates it
// from that process, which so owns it; the others join it), and its
// mounts must be ones cryo can make again.
func (t *nsTable) addMountNs(p *process, ino uint64) error {
	// Its mountinfo names mount points from its root, and restore makes
	// the mounts before it chroots.
	root, err := proc.Root(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: root: %w", p.pid, err)
	}
	if root != "/" {
		return fmt.Errorf("process %d: chrooted to %s in a mount namespace of its own: not supported yet", p.pid, root)
	}
	p.viaRoot = fmt.Sprintf("/proc/%d/root", p.pid)
	if _, ok := t.mnts[ino]; ok {
		return nil
	}
	if err := ownedByOwnUserns(p, "mnt", ino); err != nil {
		return err
	}
	if t.ownMounts == nil {
		var err error
		if t.ownMounts, err = mountns.Read(os.Getpid()); err != nil {
			return err
		}
	}
	entries, steps, err := mountNs(p.pid, t.ownMounts)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s.Kind != mountns.NewTmpfs {
			continue
		}
		dev := s.Entry.GetRootDev()
		if other, ok := t.tmpfsDevs[dev]; ok {
			return fmt.Errorf("process %d: the tmpfs at %s is also mounted in mount namespace %d: a tmpfs shared by two namespaces is not supported", p.pid, s.Entry.GetMountpoint(), other)
		}
		t.tmpfsDevs[dev] = ino
	}
	t.mnts[ino] = &mountNamespace{entries: entries, steps: steps, pid: p.pid}
	return nil
}

// writeTmpfs saves the contents of each tmpfs the namespace mounted,
// read through the mount point as a process in it sees it.
func (m *mountNamespace) writeTmpfs(dir *image.Dir) error {
	for _, s := range m.steps {
		if s.Kind != mountns.NewTmpfs {
			continue
		}
		path := fmt.Sprintf("/proc/%d/root%s", m.pid, s.Entry.GetMountpoint())
		err := dir.WriteTmpfs(s.Entry.GetRootDev(), func(w io.Writer) error { return mountns.Archive(w, path) })
		if err != nil {
			return fmt.Errorf("process %d: tmpfs at %s: %w", m.pid, s.Entry.GetMountpoint(), err)
		}
	}
	return nil
}

// checkMountFiles refuses a file on a mount the tree's namespace made
// itself that several processes share: restore opens such a file in its
// holder once the namespace exists, after the tree's children were
// cloned, so they could not inherit it.
func (d *dumper) checkMountFiles() error {
	holders := map[uint32][]*process{}
	for _, p := range d.procs {
		for _, id := range p.fileIDs {
			if hs := holders[id]; len(hs) == 0 || hs[len(hs)-1] != p {
				holders[id] = append(hs, p)
			}
		}
	}
	for id, ps := range holders {
		m := d.ns.mnts[ps[0].ns["mnt"]]
		name := d.files.entries[id-1].GetReg().GetName()
		if len(ps) < 2 || m == nil || name == "" {
			continue
		}
		for _, e := range m.entries {
			if !e.GetExtMount() && mountns.Under(e.GetMountpoint(), name) {
				return fmt.Errorf("process %d: file %s on its namespace's own %s mount at %s is shared with process %d: not supported yet",
					ps[0].pid, name, e.GetFsname(), e.GetMountpoint(), ps[1].pid)
			}
		}
	}
	return nil
}
