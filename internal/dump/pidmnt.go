package dump

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// MountpointsName is CRIU's image of a mount namespace's mounts.
func MountpointsName(id uint32) string { return fmt.Sprintf("mountpoints-%d.img", id) }

// nsGetUserns is NS_GET_USERNS: the user namespace owning a namespace.
const nsGetUserns = 0xb701

// ownerUserns returns the inode of the user namespace owning pid's
// namespace of one kind.
func ownerUserns(pid int, kind string) (uint64, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	u, err := unix.IoctlRetInt(fd, nsGetUserns)
	if err != nil {
		return 0, err
	}
	defer unix.Close(u)
	var st unix.Stat_t
	if err := unix.Fstat(u, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ownedByOwnUserns refuses p's namespace ino of one kind when it belongs
// to another user namespace than p's own; p is its first process in the
// tree: restore makes it from p, which would then own it.
func ownedByOwnUserns(p *process, kind string, ino uint64) error {
	owner, err := ownerUserns(p.pid, kind)
	if err != nil {
		return fmt.Errorf("process %d: owner of its %s namespace: %w", p.pid, kind, err)
	}
	if owner != p.ns["user"] {
		return fmt.Errorf("process %d: its %s namespace %d is owned by user namespace %d, not by its own (%d): not supported", p.pid, kind, ino, owner, p.ns["user"])
	}
	return nil
}

// innerPids reads the ids a process and its threads have in their own pid
// namespace, one level below cryo's (NSpid's last field).
func (p *process) innerPids() error {
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return err
	}
	if len(st.NSpid) != 2 {
		return fmt.Errorf("process %d: pid namespaces nested %d deep: only one level below cryo's is supported", p.pid, len(st.NSpid)-1)
	}
	p.nsPid = uint32(st.NSpid[1])
	p.nsTids = map[int]uint32{}
	for _, t := range p.threads {
		ts, err := proc.ReadTaskStatus(p.pid, t.Tid)
		if err != nil {
			return err
		}
		if len(ts.NSpid) != 2 {
			return fmt.Errorf("process %d thread %d: NSpid %v", p.pid, t.Tid, ts.NSpid)
		}
		p.nsTids[t.Tid] = uint32(ts.NSpid[1])
	}
	return nil
}

// mountNs describes a mount namespace of the tree: the mounts it shares
// with cryo's (inherited, ExtMount) and its own, which must be ones cryo can
// make again (mountns.Plan): tmpfs, proc, bind mounts. Mounts of cryo's
// that it lacks or has with other options are refused.
func mountNs(pid int, own []mountns.Mount) ([]*mnt.MntEntry, []mountns.Step, error) {
	theirs, err := mountns.Read(pid)
	if err != nil {
		return nil, nil, err
	}
	key := func(m mountns.Mount) string { return m.Point + "\x00" + m.FSType + "\x00" + m.Source + "\x00" + m.Root }
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
		fstype := uint32(mountns.FstypeOther)
		switch m.FSType {
		case "proc":
			fstype = mountns.FstypeProc
		case "tmpfs":
			fstype = mountns.FstypeTmpfs
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
		out = append(out, e)
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
