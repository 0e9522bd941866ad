package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK: a process with it may lock any amount.
const capIPCLock = 14

// checkLocked bounds the memory an image may have mapped MAP_LOCKED (the
// dump's mark for mlock): locking populates the whole area, so a crafted
// image could make root's restore pin any amount. What the process could
// lock itself passes: up to its saved RLIMIT_MEMLOCK, or any amount with
// CAP_IPC_LOCK in its saved effective capabilities.
func (c *checkpoint) checkLocked() error {
	var locked uint64
	for _, v := range c.mm.GetVmas() {
		if v.GetFlags()&unix.MAP_LOCKED != 0 {
			locked += v.GetEnd() - v.GetStart()
		}
	}
	if locked == 0 {
		return nil
	}
	if capsOf(c.cores[0].GetThreadCore().GetCreds().GetCapEff())&(1<<capIPCLock) != 0 {
		return nil
	}
	var limit uint64
	if rl := c.cores[0].GetTc().GetRlimits().GetRlimits(); len(rl) > unix.RLIMIT_MEMLOCK {
		limit = rl[unix.RLIMIT_MEMLOCK].GetCur()
	}
	if locked > limit {
		return fmt.Errorf("mm-%d.img: %d bytes locked in memory, more than its RLIMIT_MEMLOCK (%d) without CAP_IPC_LOCK", c.pid, locked, limit)
	}
	return nil
}

// lockVma locks an area the image marks MAP_LOCKED, once its pages are
// written (mapped MAP_LOCKED, it would have been faulted in whole first).
func (p *process) lockVma(v *vma.VmaEntry) error {
	if v.GetFlags()&unix.MAP_LOCKED == 0 {
		return nil
	}
	if _, err := p.leader.Syscall(unix.SYS_MLOCK, v.GetStart(), v.GetEnd()-v.GetStart()); err != nil {
		return fmt.Errorf("restore pid %d: mlock %#x-%#x: %w", p.c.pid, v.GetStart(), v.GetEnd(), err)
	}
	return nil
}
