package restore

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// isTerminalPath tells whether a dumped descriptor named a terminal, which
// with -j is replaced by the restoring terminal, as CRIU does.
func isTerminalPath(name string, mode uint32) bool {
	if mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	return strings.HasPrefix(name, "/dev/pts/") || strings.HasPrefix(name, "/dev/tty") ||
		name == "/dev/console" || name == "/dev/ptmx"
}

// restoreFiles opens every descriptor at its number with its flags and
// offset, then sets cwd and root.
func (r *restorer) restoreFiles() error {
	t := r.leader
	high := uint64(3)
	for _, fd := range r.c.fds {
		high = max(high, uint64(fd.GetFd())+1)
	}
	// The process inherited the stub's 0-2 (cryo's standard descriptors):
	// move them above every descriptor to restore; -j terminals come from them.
	inherited := map[uint32]uint64{}
	for i := uint64(0); i < 3; i++ {
		if nfd, err := t.Syscall(unix.SYS_FCNTL, i, unix.F_DUPFD_CLOEXEC, high); err == nil {
			inherited[uint32(i)] = nfd
		}
		t.Syscall(unix.SYS_CLOSE, i)
	}
	opened := map[uint32]uint64{} // file id -> first descriptor restored for it
	for _, fd := range r.c.fds {
		f := r.c.files[fd.GetId()]
		target := uint64(fd.GetFd())
		var cloexec uint64
		if fd.GetFlags()&unix.FD_CLOEXEC != 0 {
			cloexec = unix.O_CLOEXEC
		}
		where := fmt.Sprintf("restore pid %d fd %d (%s)", r.c.pid, target, f.GetName())
		if first, ok := opened[fd.GetId()]; ok {
			// Shares the open file description (and offset) of an earlier one.
			if _, err := t.Syscall(unix.SYS_DUP3, first, target, cloexec); err != nil {
				return fmt.Errorf("%s: dup3 from fd %d: %w", where, first, err)
			}
			continue
		}
		opened[fd.GetId()] = target
		if r.opts.ShellJob && isTerminalPath(f.GetName(), f.GetMode()) {
			src, ok := inherited[fd.GetFd()]
			if !ok {
				src, ok = inherited[0]
			}
			if !ok {
				return fmt.Errorf("%s: cryo has no terminal to hand over", where)
			}
			if _, err := t.Syscall(unix.SYS_DUP3, src, target, cloexec); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			continue
		}
		flags := uint64(f.GetFlags()) &^ (unix.O_CREAT | unix.O_TRUNC | unix.O_EXCL)
		n, err := r.open(f.GetName(), flags)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if n == target {
			if cloexec == 0 {
				if _, err := t.Syscall(unix.SYS_FCNTL, n, unix.F_SETFD, 0); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			}
		} else {
			_, err := t.Syscall(unix.SYS_DUP3, n, target, cloexec)
			t.Syscall(unix.SYS_CLOSE, n)
			if err != nil {
				return fmt.Errorf("%s: dup3: %w", where, err)
			}
		}
		if pos := f.GetPos(); pos != 0 {
			if _, err := t.Syscall(unix.SYS_LSEEK, target, pos, 0); err != nil {
				return fmt.Errorf("%s: seek to %d: %w", where, pos, err)
			}
		}
	}
	for _, n := range inherited {
		t.Syscall(unix.SYS_CLOSE, n)
	}
	cwd := r.c.files[r.c.fs.GetCwdId()].GetName()
	addr, err := r.putString(cwd)
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_CHDIR, addr); err != nil {
		return fmt.Errorf("restore pid %d: chdir %s: %w", r.c.pid, cwd, err)
	}
	if root := r.c.files[r.c.fs.GetRootId()].GetName(); root != "/" {
		addr, err := r.putString(root)
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_CHROOT, addr); err != nil {
			return fmt.Errorf("restore pid %d: chroot %s: %w", r.c.pid, root, err)
		}
	}
	return nil
}
