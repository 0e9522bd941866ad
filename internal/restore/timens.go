package restore

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/image"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	"golang.org/x/sys/unix"
)

// createTime makes time namespace id in p with its saved clock offsets:
// unshare(CLONE_NEWTIME) prepares it for p's children, the offsets are
// written before any task is in it (the kernel refuses them after), and p
// enters it through its own time_for_children (p has no threads yet, which
// the kernel requires).
func (p *process) createTime(id uint32, e *timens.TimensEntry) error {
	if e.GetMonotonic().GetTvNsec() >= 1e9 || e.GetBoottime().GetTvNsec() >= 1e9 {
		return fmt.Errorf("restore pid %d: %s: nanoseconds out of range", p.c.pid, image.TimensName(id))
	}
	if _, err := p.leader.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("restore pid %d: create time namespace: %w", p.c.pid, err)
	}
	// Seconds may be negative: stored as two's complement.
	offsets := fmt.Sprintf("monotonic %d %d\nboottime %d %d\n",
		int64(e.GetMonotonic().GetTvSec()), e.GetMonotonic().GetTvNsec(),
		int64(e.GetBoottime().GetTvSec()), e.GetBoottime().GetTvNsec())
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/timens_offsets", p.pid), []byte(offsets), 0); err != nil {
		return fmt.Errorf("restore pid %d: time namespace offsets %q: %w", p.c.pid, offsets, err)
	}
	fd, err := p.open("/proc/self/ns/time_for_children", unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, fd)
	return p.setns(fd, "time", unix.CLONE_NEWTIME)
}
