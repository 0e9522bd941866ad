package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/mountns"
	"golang.org/x/sys/unix"
)

// fsName is the filesystem type a container's namespace mounts afresh
// (mountns.NewFS) for CRIU's code: the name mount(2) gets comes from the
// code, not from the image's free-form name.
func fsName(code uint32) string {
	switch code {
	case mountns.FstypeSysfs:
		return "sysfs"
	case mountns.FstypeDevpts:
		return "devpts"
	case mountns.FstypeMqueue:
		return "mqueue"
	case mountns.FstypeCgroup:
		return "cgroup"
	case mountns.FstypeCgroup2:
		return "cgroup2"
	}
	return ""
}

// createContainerMnt makes the mount namespace of a container in p, which
// has just unshared a private copy of cryo's: the root is a bind mount of
// Options.Root (runc's criu-root, a bind of the container's rootfs), every
// other mount is made beneath it in its order, and p's root is then
// pivoted there, cryo's mounts detached. Mount points are resolved inside
// the new root (RESOLVE_IN_ROOT): a symbolic link in the rootfs, which the
// container owns, cannot lead a mount onto a directory of the host's.
func (p *process) createContainerMnt(steps []mountns.Step, u *usernsImage) error {
	root := p.r.opts.Root
	if root == "" {
		return fmt.Errorf("restore pid %d: a container's mount namespace needs its root directory (CRIU's --root; runc gives it)", p.c.pid)
	}
	rootEntry := steps[0].Entry
	if err := p.mount(root, root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("restore pid %d: bind the root %s: %w", p.c.pid, root, err)
	}
	rootFd, err := p.open(root, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("restore pid %d: the root %s: %w", p.c.pid, root, err)
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, rootFd)
	if flags := uint64(rootEntry.GetFlags()) & mountFlagMask; flags != 0 {
		if err := p.mount("", fdPath(rootFd), "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
			return fmt.Errorf("restore pid %d: the root %s: set flags %#x: %w", p.c.pid, root, flags, err)
		}
	}
	for _, s := range steps[1:] {
		if err := p.containerMount(rootFd, s, u); err != nil {
			return fmt.Errorf("restore pid %d: %s mount at %s: %w", p.c.pid, s.Entry.GetFsname(), s.Entry.GetMountpoint(), err)
		}
	}
	// pivot_root(".", "."): the old root ends up on top of the new one,
	// from where it is detached.
	t := p.leader
	if _, err := t.Syscall(unix.SYS_FCHDIR, rootFd); err != nil {
		return fmt.Errorf("restore pid %d: chdir to the root: %w", p.c.pid, err)
	}
	dot, err := p.put([]byte("/\x00.\x00"))
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_PIVOT_ROOT, dot+2, dot+2); err != nil {
		return fmt.Errorf("restore pid %d: pivot_root to %s: %w", p.c.pid, root, err)
	}
	if _, err := t.Syscall(unix.SYS_UMOUNT2, dot+2, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("restore pid %d: detach cryo's mounts: %w", p.c.pid, err)
	}
	if _, err := t.Syscall(unix.SYS_CHDIR, dot); err != nil {
		return fmt.Errorf("restore pid %d: chdir to /: %w", p.c.pid, err)
	}
	return nil
}

// containerMount makes one mount of a container's namespace beneath the
// root open at rootFd in p.
func (p *process) containerMount(rootFd uint64, s mountns.Step, u *usernsImage) error {
	if s.Kind == mountns.WithExternal {
		return nil // the recursive bind of the external mount above brought it
	}
	e := s.Entry
	flags := uint64(e.GetFlags()) & mountFlagMask
	target, err := p.openInRoot(rootFd, e.GetMountpoint())
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, target)
	// bindFrom binds source (a path as p sees it), recursively for an
	// external mount the host's mounts beneath it came with, and sets the
	// flags (of the top mount only: those beneath keep the host's).
	bindFrom := func(source string) error {
		bind := uint64(unix.MS_BIND)
		if s.Recursive {
			bind |= unix.MS_REC
		}
		if err := p.mount(source, fdPath(target), "", bind, ""); err != nil {
			return fmt.Errorf("bind %s: %w", source, err)
		}
		return p.remountAt(rootFd, e.GetMountpoint(), "", unix.MS_BIND|unix.MS_REMOUNT|flags)
	}
	switch s.Kind {
	case mountns.Bind:
		from, err := p.openInRoot(rootFd, s.From)
		if errors.Is(err, unix.ENOENT) {
			// A terminal's slave: it exists once its master is made.
			if made, merr := p.r.files.earlyOrphanMaster(p, rootFd, s.From); merr != nil {
				return fmt.Errorf("bind source %s: %w", s.From, merr)
			} else if made {
				from, err = p.openInRoot(rootFd, s.From)
			}
		}
		if err != nil {
			return fmt.Errorf("bind source %s: %w", s.From, err)
		}
		defer p.leader.Syscall(unix.SYS_CLOSE, from)
		return bindFrom(fdPath(from))
	case mountns.External:
		host, ok := p.r.opts.ExtMounts[e.GetExtKey()]
		if !ok {
			return fmt.Errorf("external mount %q: no host path given for it (ext_mnt, --external mnt[%s]:PATH)", e.GetExtKey(), e.GetExtKey())
		}
		return bindFrom(host)
	case mountns.NewTmpfs, mountns.NewProc, mountns.NewFS:
		fstype := "tmpfs"
		switch s.Kind {
		case mountns.NewProc:
			fstype = "proc"
		case mountns.NewFS:
			fstype = fsName(e.GetFstype())
		}
		data, err := mountData(e.GetOptions(), u)
		if err != nil {
			return err
		}
		if s.Kind == mountns.NewFS && e.GetFstype() == mountns.FstypeDevpts {
			data += ",newinstance"
		}
		first := flags
		if s.Kind == mountns.NewTmpfs {
			first &^= unix.MS_RDONLY // refilled first
		}
		if err := p.mount(e.GetSource(), fdPath(target), fstype, first, data); err != nil {
			return fmt.Errorf("mount (options %q): %w", data, err)
		}
		if s.Kind != mountns.NewTmpfs {
			return nil
		}
		if err := p.fillTmpfsBeneath(rootFd, e); err != nil {
			return err
		}
		if first != flags {
			return p.remountAt(rootFd, e.GetMountpoint(), data, unix.MS_REMOUNT|flags)
		}
		return nil
	}
	return fmt.Errorf("kind %d of mount not expected in a container", s.Kind)
}

// remountAt remounts what is now mounted at point beneath rootFd.
func (p *process) remountAt(rootFd uint64, point, data string, flags uint64) error {
	fd, err := p.openInRoot(rootFd, point)
	if err != nil {
		return err
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, fd)
	if err := p.mount("", fdPath(fd), "", flags, data); err != nil {
		return fmt.Errorf("remount with flags %#x: %w", flags, err)
	}
	return nil
}

// fillTmpfsBeneath refills the tmpfs just mounted at e's mount point
// beneath rootFd, through p's descriptor of it.
func (p *process) fillTmpfsBeneath(rootFd uint64, e *mnt.MntEntry) error {
	fd, err := p.openInRoot(rootFd, e.GetMountpoint())
	if err != nil {
		return err
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, fd)
	f, err := p.r.dir.OpenTmpfs(e.GetRootDev())
	if err != nil {
		return err
	}
	defer f.Close()
	dir, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the tmpfs: %w", err)
	}
	defer dir.Close()
	owners, err := mountns.Extract(f, fmt.Sprintf("/proc/self/fd/%d", dir.Fd()))
	if err != nil {
		return fmt.Errorf("refill from %s: %w", f.Name(), err)
	}
	if len(owners) > 0 {
		return fmt.Errorf("refill from %s: owners cryo could not give (a rootless restore of a container) are not supported yet", f.Name())
	}
	return nil
}

// openInRoot opens path in p as an O_PATH descriptor, resolved with
// rootFd as its root (RESOLVE_IN_ROOT, no magic links).
func (p *process) openInRoot(rootFd uint64, path string) (uint64, error) {
	// struct open_how: flags, mode, resolve; then the name.
	how := binary.LittleEndian.AppendUint64(nil, unix.O_PATH|unix.O_CLOEXEC)
	how = binary.LittleEndian.AppendUint64(how, 0)
	how = binary.LittleEndian.AppendUint64(how, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	addr, err := p.put(append(how, append([]byte(path), 0)...))
	if err != nil {
		return 0, err
	}
	fd, err := p.leader.Syscall(unix.SYS_OPENAT2, rootFd, addr+uint64(len(how)), addr, uint64(len(how)))
	if err != nil {
		return 0, fmt.Errorf("open %s in the container's root: %w", path, err)
	}
	return fd, nil
}

// fdPath names descriptor fd of the calling process, for mount(2).
func fdPath(fd uint64) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }
