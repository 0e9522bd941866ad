package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// pokeTimerfds makes the kernel count the expirations of every timerfd
// (it does so lazily): an injected timerfd_gettime updates what fdinfo
// shows, its ticks and its next expiry.
func (p *process) pokeTimerfds() error {
	fds, err := proc.Fds(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: list descriptors: %w", p.pid, err)
	}
	for _, fd := range fds {
		if target, err := proc.FdTarget(p.pid, fd); err != nil || target != (fdkind.Timerfd{}).Target() {
			continue
		}
		if _, err := p.leader().Syscall(unix.SYS_TIMERFD_GETTIME, uint64(fd), p.scratch.addr+scratchStack); err != nil {
			return fmt.Errorf("%s: timerfd_gettime: %w", p.fdName(fd), err)
		}
	}
	return nil
}
