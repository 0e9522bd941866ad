package restore

import (
	"encoding/binary"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// mountFlagMask are the per-mount flags a restored mount gets.
const mountFlagMask = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_RELATIME | unix.MS_NOATIME | unix.MS_NODIRATIME

// createMnt makes mount namespace id in p: a private copy of cryo's, which
// holds the inherited mounts, then the tree's own mounts in their order:
// tmpfs (refilled from its image) and proc with their options, bind mounts
// of the paths that show the same directory. p is in its user namespace
// already (u; nil for cryo's), which so owns the new one, and in its pid
// namespace, whose proc it mounts.
func (p *process) createMnt(id uint32, mounts []*mnt.MntEntry, u *usernsImage) error {
	steps, err := mountns.Plan(mounts)
	if err != nil {
		return fmt.Errorf("restore pid %d: %s: %w", p.c.pid, image.MountpointsName(id), err)
	}
	if _, err := p.leader.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("restore pid %d: create mount namespace: %w", p.c.pid, err)
	}
	if err := p.mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("restore pid %d: make / private: %w", p.c.pid, err)
	}
	if mountns.IsContainer(mounts) {
		return p.createContainerMnt(steps, u)
	}
	for _, s := range steps {
		e := s.Entry
		point, flags := e.GetMountpoint(), uint64(e.GetFlags())&mountFlagMask
		what := fmt.Sprintf("restore pid %d: %s mount at %s", p.c.pid, e.GetFsname(), point)
		switch s.Kind {
		case mountns.NewTmpfs, mountns.NewProc:
			fstype := "tmpfs"
			if s.Kind == mountns.NewProc {
				fstype = "proc"
			}
			data, err := mountData(e.GetOptions(), u)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := p.mount(e.GetSource(), point, fstype, flags, data); err != nil {
				return fmt.Errorf("%s (options %q): %w", what, data, err)
			}
			if s.Kind == mountns.NewTmpfs {
				if err := p.fillTmpfs(e); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
			}
		case mountns.Bind:
			if err := p.mount(s.From, point, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("%s: bind %s: %w", what, s.From, err)
			}
			if err := p.mount("", point, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
				return fmt.Errorf("%s: set flags %#x: %w", what, flags, err)
			}
		}
	}
	return nil
}

// onOwnMount reports whether file id lies on a mount its holders' mount
// namespace made itself: such a file can only be opened in that namespace,
// after the tree was built. A deleted one there is refused (its ghost would
// have to be made in the namespace).
func (fp *filePlan) onOwnMount(id uint32, holders []*process) (bool, error) {
	name := fp.snap.reg(id).GetName()
	for _, h := range holders {
		point, ok := fp.snap.ownMount(h.c, name)
		if !ok {
			continue
		}
		if fp.snap.ghosts[id] != nil {
			return false, fmt.Errorf("restore pid %d: deleted file %s on the tree's own mount at %s: not supported yet", h.c.pid, name, point)
		}
		return true, nil
	}
	return false, nil
}

// ownMount returns the mount point of the mount, made by c's mount
// namespace itself (not inherited), that path lies on.
func (s *snapshot) ownMount(c *checkpoint, path string) (string, bool) {
	if c.zombie || path == "" {
		return "", false
	}
	found := ""
	for _, e := range s.ns.mnts[c.cores[0].GetIds().GetMntNsId()] {
		if point := e.GetMountpoint(); !e.GetExtMount() && mountns.Under(point, path) && len(point) > len(found) {
			found = point
		}
	}
	return found, found != ""
}

// onTreeMount reports whether path lies on a mount one of the tree's mount
// namespaces made itself.
func (s *snapshot) onTreeMount(path string) bool {
	for _, mounts := range s.ns.mnts {
		for _, e := range mounts {
			if !e.GetExtMount() && mountns.Under(e.GetMountpoint(), path) {
				return true
			}
		}
	}
	return false
}

// lateCopy is a file on the tree's own mounts that a process takes from
// the common ancestor of its holders, which opened it.
type lateCopy struct {
	id   uint32
	from *process
}

// openLate opens the files p is the common ancestor of that live on its
// namespace's own mounts, now that p is in that namespace.
func (fp *filePlan) openLate(p *process) error {
	for _, j := range fp.late[p] {
		var err error
		if j.pty != nil {
			err = fp.makeOrphanPty(p, j.pty)
		} else {
			err = fp.openKind(p, j.ids[0], fdkind.Reg{})
		}
		if err != nil {
			return err
		}
	}
	return fp.bindLate(p)
}

// copyLate gives p, before it enters its namespaces (while it still has
// every capability over the ancestor), the files on the tree's own mounts
// it shares with an ancestor: pidfd_getfd takes the ancestor's open file,
// one open file description for both, to the same temporary descriptor.
func (fp *filePlan) copyLate(p *process) error {
	for _, c := range fp.lateCopies[p] {
		where := fmt.Sprintf("restore pid %d: file %s from pid %d", p.c.pid, fp.snap.reg(c.id).GetName(), c.from.c.pid)
		if err := fp.copyFrom(p, c.from, c.id); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// copyFrom gives p file id as from holds it, at the same temporary
// descriptor: pidfd_getfd, so that both hold one open file description.
func (fp *filePlan) copyFrom(p, from *process, id uint32) error {
	t := p.leader
	pid, err := from.pidSeenBy(p)
	if err != nil {
		return err
	}
	pidfd, err := t.Syscall(unix.SYS_PIDFD_OPEN, pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	fd, err := t.Syscall(unix.SYS_PIDFD_GETFD, pidfd, fp.temp[id], 0)
	t.Syscall(unix.SYS_CLOSE, pidfd)
	if err != nil {
		return fmt.Errorf("pidfd_getfd: %w", err)
	}
	return fp.moveTo(p, fd, fp.temp[id])
}

// fillTmpfs puts back the contents of the tmpfs just mounted, through p's
// view of its mount point. The mount point is resolved inside p's root
// (RESOLVE_IN_ROOT): an absolute symbolic link on the way must not lead
// to a directory of cryo's.
func (p *process) fillTmpfs(e *mnt.MntEntry) error {
	f, err := p.r.dir.OpenTmpfs(e.GetRootDev())
	if err != nil {
		return err
	}
	defer f.Close()
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", p.pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root of process %d: %w", p.pid, err)
	}
	defer unix.Close(root)
	dir, err := unix.Openat2(root, e.GetMountpoint(), &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("mount point %s: %w", e.GetMountpoint(), err)
	}
	defer unix.Close(dir)
	owners, err := mountns.Extract(f, fmt.Sprintf("/proc/self/fd/%d", dir))
	if err != nil {
		return fmt.Errorf("refill from %s: %w", f.Name(), err)
	}
	if len(owners) > 0 {
		if err := p.giveOwners(e.GetMountpoint(), owners); err != nil {
			return fmt.Errorf("refill from %s: %w", f.Name(), err)
		}
	}
	return nil
}

// giveOwners gives entries of the tmpfs at mountpoint the owners and
// modes cryo could not (a rootless cryo, and subordinate ids of its
// user): p, inside the tmpfs's user namespace with its capabilities,
// reaches each entry beneath the mount point without following a symbolic
// link (the names come from the image) and changes it through that
// descriptor.
func (p *process) giveOwners(mountpoint string, owners []mountns.Owner) error {
	t := p.leader
	mp, err := p.open(mountpoint, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", mountpoint, err)
	}
	defer t.Syscall(unix.SYS_CLOSE, mp)
	for _, o := range owners {
		uid, gid, err := p.idsInside(uint32(o.UID), uint32(o.GID))
		if err != nil {
			return fmt.Errorf("entry %q: owner: %w", o.Name, err)
		}
		if err := p.chownBeneath(mp, o.Name, uid, gid, o.Mode, o.Symlink); err != nil {
			return fmt.Errorf("entry %q: %w", o.Name, err)
		}
	}
	return nil
}

// chownBeneath gives name, beneath directory dirfd of p, owner uid:gid
// (as p's namespace sees them) and, unless it is a symbolic link, mode.
func (p *process) chownBeneath(dirfd uint64, name string, uid, gid uint32, mode int64, symlink bool) error {
	t := p.leader
	// struct open_how: flags, mode, resolve; then the name.
	how := binary.LittleEndian.AppendUint64(nil, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	how = binary.LittleEndian.AppendUint64(how, 0)
	how = binary.LittleEndian.AppendUint64(how, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	howAddr, err := p.put(append(how, append([]byte(name), 0)...))
	if err != nil {
		return err
	}
	nameAddr, empty := howAddr+uint64(len(how)), howAddr+uint64(len(how)+len(name))
	fd, err := t.Syscall(unix.SYS_OPENAT2, dirfd, nameAddr, howAddr, uint64(len(how)))
	if err != nil {
		return fmt.Errorf("open beneath the mount point: %w", err)
	}
	defer t.Syscall(unix.SYS_CLOSE, fd)
	// empty points at the name's NUL: "" for AT_EMPTY_PATH.
	if _, err := t.Syscall(unix.SYS_FCHOWNAT, fd, empty, uint64(uid), uint64(gid), unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown to %d:%d: %w", uid, gid, err)
	}
	if symlink {
		return nil
	}
	// After chown, which clears set-id bits.
	if _, err := t.Syscall(unix.SYS_FCHMODAT2, fd, empty, uint64(mode&0o7777), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chmod to %#o: %w", mode&0o7777, err)
	}
	return nil
}

// mountData turns a superblock's options as mountinfo shows them into
// mount(2) data: rw/ro are flags, and uid=/gid= (shown as host ids) are
// given as the user namespace u of the mounting process sees them.
func mountData(opts string, u *usernsImage) (string, error) {
	var out []string
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case o == "" || o == "rw" || o == "ro":
			continue
		case (k == "uid" || k == "gid") && u != nil:
			host, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return "", fmt.Errorf("option %q", o)
			}
			m := u.uidMap
			if k == "gid" {
				m = u.gidMap
			}
			inside := m.ToInside(uint32(host))
			if inside == userns.Overflow {
				return "", fmt.Errorf("option %s: host id %d is not mapped in user namespace %d", o, host, u.id)
			}
			o = k + "=" + strconv.FormatUint(uint64(inside), 10)
		}
		out = append(out, o)
	}
	return strings.Join(out, ","), nil
}

// mount injects mount(2) into p; an empty string is passed as NULL.
func (p *process) mount(source, target, fstype string, flags uint64, data string) error {
	var buf []byte
	var addrs [4]uint64
	var offs [4]int
	for i, s := range []string{source, target, fstype, data} {
		offs[i] = -1
		if s != "" {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("mount argument %q holds a NUL", s)
			}
			offs[i] = len(buf)
			buf = append(append(buf, s...), 0)
		}
	}
	base, err := p.put(buf)
	if err != nil {
		return err
	}
	for i, off := range offs {
		if off >= 0 {
			addrs[i] = base + uint64(off)
		}
	}
	_, err = p.leader.Syscall(unix.SYS_MOUNT, addrs[0], addrs[1], addrs[2], flags, addrs[3])
	return err
}
