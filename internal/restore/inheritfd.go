package restore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// inheritedPipe returns cryo's descriptor that stands for pipe job j
// (Options.InheritFds names it "pipe:[ID]", as CRIU's inherit_fd and
// runc's descriptors.json do): the caller keeps the pipe's other end, and
// the tree gets the caller's pipe back instead of a new one.
func (fp *filePlan) inheritedPipe(p *process, j fileJob) (int, bool) {
	if j.pipeID == 0 {
		return 0, false
	}
	fd, ok := p.r.opts.InheritFds[fmt.Sprintf("pipe:[%d]", j.pipeID)]
	return fd, ok
}

// inheritPipe puts cryo's descriptor fd (one of 0-2, which every process
// holds until its own descriptors are installed) at the temporary
// descriptors of j's ends, with their flags. The ends the tree held must
// all be of the direction fd has: the pipe's other end is the caller's.
// Bytes the dump saw queued in it are the caller's pipe's still: none are
// written again.
func (fp *filePlan) inheritPipe(p *process, j fileJob, fd int) error {
	t := p.leader
	where := fmt.Sprintf("restore pid %d: pipe %d inherited from descriptor %d", p.c.pid, j.pipeID, fd)
	if fd < 0 || fd > 2 {
		return fmt.Errorf("%s: only the caller's descriptors 0, 1 and 2 can be inherited yet", where)
	}
	acc, err := t.Syscall(unix.SYS_FCNTL, uint64(fd), unix.F_GETFL)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	for _, id := range j.ids {
		pe := fp.snap.files[id].GetPipe()
		if pe.GetFlags()&unix.O_ACCMODE != uint32(acc)&unix.O_ACCMODE && uint32(acc)&unix.O_ACCMODE != unix.O_RDWR {
			return fmt.Errorf("%s: the tree holds its %s end, the descriptor is the other", where, map[bool]string{true: "read", false: "write"}[pe.GetFlags()&unix.O_ACCMODE == unix.O_RDONLY])
		}
		if _, err := t.Syscall(unix.SYS_DUP3, uint64(fd), fp.temp[id], unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("%s: dup3: %w", where, err)
		}
	}
	return nil
}
