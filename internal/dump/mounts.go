package dump

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
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
	entries, steps, err := mountNs(p.pid, t.ownMounts, t.extMounts)
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

// checkGhosts refuses a deleted file on a mount of the tree's own
// namespaces: restore would have to make it again inside the namespace,
// which it does not yet.
func (t *nsTable) checkGhosts(ft *fileTable) error {
	for _, g := range ft.ghosts {
		name := fdkind.RegName(ft.entries[g.id-1])
		for _, m := range t.mnts {
			for _, e := range m.entries {
				if !e.GetExtMount() && mountns.Under(e.GetMountpoint(), name) {
					return fmt.Errorf("deleted file %s on the tree's own %s mount at %s: not supported yet", name, e.GetFsname(), e.GetMountpoint())
				}
			}
		}
	}
	return nil
}

// mountNs describes a mount namespace of the tree: the mounts it shares
// with cryo's (inherited, ExtMount) and its own, which must be ones cryo can
// make again (mountns.Plan): tmpfs, proc, bind mounts. Mounts of cryo's
// that it lacks or has with other options are refused. A container's
// namespace, whose root mount is not cryo's, shares none: every mount is
// its own, its root made again from the restore's root directory, and
// those whose mount point ext (CRIU's ext_mnt on dump: mount point to key)
// names are recorded as external, under their key.
func mountNs(pid int, own []mountns.Mount, ext map[string]string) ([]*mnt.MntEntry, []mountns.Step, error) {
	theirs, err := mountns.Read(pid)
	if err != nil {
		return nil, nil, err
	}
	if len(theirs) > 0 && theirs[0].Point == "/" && !slices.ContainsFunc(own, func(m mountns.Mount) bool {
		return m.Point == "/" && m.Dev == theirs[0].Dev && m.Root == theirs[0].Root
	}) {
		return containerMountNs(pid, theirs, own, ext)
	}
	// The device tells a mount copied from cryo's namespace from a new one
	// of the same kind at the same place (a fresh tmpfs on /dev/shm, a new
	// proc on /proc).
	key := func(m mountns.Mount) string {
		return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d", m.Point, m.FSType, m.Source, m.Root, m.Dev)
	}
	left := map[string][]mountns.Mount{}
	for _, m := range own {
		left[key(m)] = append(left[key(m)], m)
	}
	var out []*mnt.MntEntry
	for _, m := range theirs {
		ours := left[key(m)]
		ext := len(ours) > 0
		if ext {
			if ours[0].Opts != m.Opts {
				return nil, nil, fmt.Errorf("process %d: its %s mount at %s has options %s, cryo's %s: changed options of an inherited mount are not supported", pid, m.FSType, m.Point, m.Opts, ours[0].Opts)
			}
			left[key(m)] = ours[1:]
		}
		out = append(out, mntEntry(m, ext))
	}
	var missing []string
	for _, ms := range left {
		for _, m := range ms {
			missing = append(missing, m.Point)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, fmt.Errorf("process %d: its mount namespace lacks mounts of cryo's (%s): not supported yet", pid, missing[0])
	}
	steps, err := mountns.Plan(out)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: mount namespace: %w", pid, err)
	}
	return out, steps, nil
}

// mntEntry is mount m as mountpoints-N.img records it; ext tells a mount
// inherited from cryo's namespace.
func mntEntry(m mountns.Mount, ext bool) *mnt.MntEntry {
	fstype := uint32(mountns.FstypeOther)
	if m.FSType == "proc" || m.FSType == "tmpfs" {
		fstype = mountns.Fstype(m.FSType)
	}
	var sbFlags uint32
	if slices.Contains(strings.Split(m.SuperOpts, ","), "ro") {
		sbFlags = unix.MS_RDONLY
	}
	e := &mnt.MntEntry{
		Fstype: proto.Uint32(fstype), MntId: proto.Uint32(m.ID), RootDev: proto.Uint32(m.Dev),
		ParentMntId: proto.Uint32(m.Parent), Flags: proto.Uint32(mountns.Flags(m.Opts)), Root: proto.String(m.Root),
		Mountpoint: proto.String(m.Point), Source: proto.String(m.Source), Options: proto.String(m.SuperOpts),
		ExtMount: proto.Bool(ext), Fsname: proto.String(m.FSType), SbFlags: proto.Uint32(sbFlags),
	}
	if m.Shared != 0 {
		e.SharedId = proto.Uint32(m.Shared)
	}
	if m.Master != 0 {
		e.MasterId = proto.Uint32(m.Master)
	}
	return e
}
