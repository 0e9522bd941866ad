package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"golang.org/x/sys/unix"
)

// applyHugeAdvice gives a freshly mapped area its transparent huge page
// advice (MADV_HUGEPAGE or MADV_NOHUGEPAGE, from the image's madv bits)
// before its pages are written, rather than with the other advice after.
// A process that had huge pages there had asked for them (this is how the
// kernel hands them out in the default "madvise" mode), and with the advice
// in place process_vm_writev faults the area in as 2 MiB pages: the
// restored application then does not pay the first access to each 4 KiB
// page, which on a paravirtualized guest costs 1.3-2.2 s per GiB.
// With THP "always", a fresh area gets huge pages without advice.
func (p *process) applyHugeAdvice(v *vma.VmaEntry) error {
	if p.c.mm.GetThpDisabled() {
		// PR_SET_THP_DISABLE (set after the fill) kept the process off
		// huge pages whatever the advice: do not give it any now.
		return nil
	}
	for _, adv := range []uint64{unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE} {
		if v.GetMadv()&(1<<adv) == 0 {
			continue
		}
		if _, err := p.leader.Syscall(unix.SYS_MADVISE, v.GetStart(), v.GetEnd()-v.GetStart(), adv); err != nil {
			return fmt.Errorf("restore pid %d: madvise(%d) %#x-%#x: %w", p.c.pid, adv, v.GetStart(), v.GetEnd(), err)
		}
	}
	return nil
}
