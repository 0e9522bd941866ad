package restore

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// enterDeadProcRoot makes p's root and working directory the fdinfo
// directory of a process that is gone, as a browser sandbox leaves its
// processes (the dump marked it, image.DeadProcRoot): p gets a child, a
// copy of itself that never runs, chroots into the child's
// /proc/CHILD/fdinfo and goes there, and the child is killed and reaped,
// which empties that directory for good. No path leads anywhere from p
// again, as before the dump; p keeps its capabilities to do so until its
// credentials are restored.
func (p *process) enterDeadProcRoot() (err error) {
	where := fmt.Sprintf("restore pid %d: root in a dead /proc directory", p.c.pid)
	args := ptrace.CloneArgs{ExitSignal: uint64(unix.SIGCHLD)}
	if _, err := p.put(args.Bytes()); err != nil {
		return err
	}
	child, err := p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
	if err != nil {
		return fmt.Errorf("%s: clone3: %w", where, err)
	}
	outer, err := outerPid(p, child)
	if err == nil {
		var t *ptrace.Tracee
		if t, err = p.r.tr.Adopt(outer, outer); err == nil {
			defer func() {
				t.Kill()
				t.WaitExit()
				if _, werr := p.leader.Syscall(unix.SYS_WAIT4, child, 0, unix.WALL, 0); werr != nil && err == nil {
					err = fmt.Errorf("%s: reap the helper %d: %w", where, child, werr)
				}
			}()
		}
	}
	if err != nil {
		unix.Kill(int(outer), unix.SIGKILL)
		p.leader.Syscall(unix.SYS_WAIT4, child, 0, unix.WALL, 0)
		return fmt.Errorf("%s: helper %d: %w", where, child, err)
	}
	for _, step := range []struct {
		nr   uintptr
		path string
	}{{unix.SYS_CHROOT, fmt.Sprintf("/proc/%d/fdinfo", child)}, {unix.SYS_CHDIR, "/"}} {
		addr, err := p.putString(step.path)
		if err != nil {
			return err
		}
		if _, err := p.leader.Syscall(step.nr, addr); err != nil {
			return fmt.Errorf("%s: %s %s: %w", where, map[uintptr]string{unix.SYS_CHROOT: "chroot", unix.SYS_CHDIR: "chdir"}[step.nr], step.path, err)
		}
	}
	return nil
}
