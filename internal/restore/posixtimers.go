package restore

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16) makes timer_create take the id
// to create from its timer id argument.
const (
	prTimerCreateRestoreIDs = 0x4d
	sigevThreadID           = 4
)

// restorePosixTimers recreates the process's POSIX timers with their ids,
// clocks, notifications and remaining times (after its threads exist: a
// timer may signal one of them).
func (p *process) restorePosixTimers() error {
	timers := p.c.cores[0].GetTc().GetTimers().GetPosix()
	if len(timers) == 0 {
		return nil
	}
	t := p.leader
	if _, err := t.Syscall(unix.SYS_PRCTL, prTimerCreateRestoreIDs, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("restore pid %d: POSIX timers need PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16): %w", p.c.pid, err)
	}
	defer t.Syscall(unix.SYS_PRCTL, prTimerCreateRestoreIDs, 0, 0, 0, 0)
	le := binary.LittleEndian
	for _, e := range timers {
		where := fmt.Sprintf("restore pid %d: POSIX timer %d", p.c.pid, e.GetItId())
		// struct sigevent: value, signo, notify, then the thread id.
		sev := make([]byte, 64)
		le.PutUint64(sev[0:], e.GetSivalPtr())
		le.PutUint32(sev[8:], e.GetSiSigno())
		le.PutUint32(sev[12:], e.GetItSigevNotify())
		if e.GetItSigevNotify()&sigevThreadID != 0 {
			tid := uint32(e.GetNotifyThreadId())
			if p.c.nsPids != nil {
				// Saved as cryo sees it; the process names it in its own
				// pid namespace.
				for i, outer := range p.c.tree.GetThreads() {
					if outer == tid {
						tid = p.c.nsPids[i]
					}
				}
			}
			le.PutUint32(sev[16:], tid)
		}
		sevAddr, err := p.putAt(0, sev)
		if err != nil {
			return err
		}
		idAddr, err := p.putAt(64, le.AppendUint32(nil, e.GetItId()))
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_TIMER_CREATE, uint64(e.GetClockId()), sevAddr, idAddr); err != nil {
			return fmt.Errorf("%s: timer_create: %w", where, err)
		}
		got := make([]byte, 4)
		if err := readMem(p, idAddr, got); err != nil {
			return err
		}
		if le.Uint32(got) != e.GetItId() {
			return fmt.Errorf("%s: created as %d", where, le.Uint32(got))
		}
		vsec, vnsec := e.GetVsec(), e.GetVnsec()
		if vsec == 0 && vnsec == 0 {
			// Expired with its signal pending: one more interval.
			vsec, vnsec = e.GetIsec(), e.GetInsec()
		}
		if vsec == 0 && vnsec == 0 {
			continue // disarmed
		}
		spec, err := p.putAt(128, putU64(nil, e.GetIsec(), e.GetInsec(), vsec, vnsec))
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_TIMER_SETTIME, uint64(e.GetItId()), 0, spec, 0); err != nil {
			return fmt.Errorf("%s: timer_settime: %w", where, err)
		}
	}
	return nil
}
