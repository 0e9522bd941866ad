package restore

import (
	"time"

	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// hugePageSize is the size of a transparent huge page mapped by one page
// middle directory entry (x86-64, and arm64 with 4 KiB pages).
const hugePageSize = 2 << 20

// collapseHuge gives back the transparent huge pages of areas that had
// some without asking for them with MADV_HUGEPAGE (those come back by
// applyHugeAdvice): areas the application collapsed itself
// (MADV_COLLAPSE), or that khugepaged or THP "always" gave huge pages. The
// dump records smaps' AnonHugePages of each area (image.VmaAnonHuge);
// restore writes 4 KiB pages, and here asks the kernel to collapse them
// (madvise MADV_COLLAPSE, injected), so that the application does not pay
// the first access to each small page afterwards (1.3-2.2 s per GiB on a
// paravirtualized guest, 0.01 s with huge pages).
//
// Only 2 MiB blocks whose every page is in the image are collapsed, so the
// process uses no more memory than before; at most as many as it had
// huge pages, first blocks first (the image does not say which ones they
// were). Areas shared with a parent at fork (cow.go) are left alone:
// collapsing would copy the shared pages. A refusal (no memory, a kernel
// without MADV_COLLAPSE) is logged, not an error: the memory is right,
// only slower to reach.
func (p *process) collapseHuge() {
	if p.c.mm.GetThpDisabled() {
		return // PR_SET_THP_DISABLE: the process had no huge pages
	}
	start := time.Now()
	var collapsed uint64
	for i, v := range p.c.mm.GetVmas() {
		huge, err := image.VmaAnonHuge(v)
		if err != nil || huge < hugePageSize || v.GetStatus()&image.VmaAnonPrivate == 0 {
			continue
		}
		if v.GetMadv()&(1<<unix.MADV_HUGEPAGE|1<<unix.MADV_NOHUGEPAGE) != 0 {
			continue // advised: the fill already made huge pages, or none may be
		}
		if _, shared := p.cow[i]; shared {
			continue
		}
		for _, r := range denseHugeBlocks(p.c.pagemapRuns(), v.GetStart(), v.GetEnd(), huge/hugePageSize) {
			if _, err := p.leader.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_COLLAPSE); err != nil {
				p.r.logf("restore pid %d: huge pages of %#x-%#x not given back (madvise MADV_COLLAPSE: %v): the memory is restored as 4 KiB pages", p.c.pid, r.start, r.end, err)
				break
			}
			collapsed += r.end - r.start
		}
	}
	if collapsed > 0 {
		p.r.logf("restore pid %d: %d MiB given back as huge pages in %v", p.c.pid, collapsed>>20, time.Since(start))
	}
}

// pagemapRuns are the address ranges the memory image gives contents
// for (present here or in a parent image), in address order, adjacent
// entries merged.
func (c *checkpoint) pagemapRuns() []span {
	var runs []span
	page := uint64(unix.Getpagesize())
	for _, pe := range c.pagemap {
		s := span{pe.GetVaddr(), pe.GetVaddr() + uint64(pe.GetNrPages())*page}
		if n := len(runs); n > 0 && runs[n-1].end == s.start {
			runs[n-1].end = s.end
			continue
		}
		runs = append(runs, s)
	}
	return runs
}

// denseHugeBlocks returns up to limit 2 MiB-aligned blocks inside
// [start, end) that runs cover whole, merged into ranges, lowest first.
func denseHugeBlocks(runs []span, start, end, limit uint64) []span {
	var out []span
	var n uint64
	for _, r := range runs {
		lo := (max(r.start, start) + hugePageSize - 1) &^ (hugePageSize - 1)
		hi := min(r.end, end) &^ (hugePageSize - 1)
		for b := lo; b+hugePageSize <= hi && n < limit; b += hugePageSize {
			if k := len(out); k > 0 && out[k-1].end == b {
				out[k-1].end += hugePageSize
			} else {
				out = append(out, span{b, b + hugePageSize})
			}
			n++
		}
	}
	return out
}
