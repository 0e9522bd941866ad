package restore

import (
	"bytes"
	"fmt"
	"os"
	"sort"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// Copy-on-write sharing across fork.
//
// A private anonymous area that a parent and its forked child both still
// have shares the pages neither has written since the fork. Restored
// separately, each process would get its own copy of every page. As CRIU
// does, restore "premaps" such an area in the parent before it clones the
// child: the parent maps it (away from every final address, at a temporary
// one), writes its pages there, and clones; the child then finds the
// parent's pages in place and writes only the pages whose contents differ
// from its own image, and drops the pages it did not have. Every page left
// alone stays one physical page for both. A grandchild inherits the area
// from the child the same way, once the child has written its own pages.
// In phase two each process moves its premapped areas to their final
// address with mremap, which keeps the sharing, and fillPages skips them.
//
// An area is inherited when the child has a private anonymous area with
// the same start, end and mmap flags as one of its parent's: the layout
// fork leaves. Content decides the rest, page by page, so a coincidental
// match costs only a comparison and never gives a process wrong memory.

// cowArea is a private anonymous area of a process premapped while the tree
// is built (phase one).
type cowArea struct {
	// temp is where the area is mapped until phase two moves it into
	// place: free in every process's final layout.
	temp uint64
	// inherited: the area came from the parent at fork, holding the
	// parent's pages, rather than being mapped fresh.
	inherited bool
}

// cowEligible tells whether v can be premapped: plain private anonymous
// memory (the heap too), not a stack that grows down (which mremap would
// not keep growing the same way).
func cowEligible(v *vma.VmaEntry) bool {
	st := v.GetStatus() &^ image.VmaHeap
	return st == image.VmaRegular|image.VmaAnonPrivate && v.GetFlags()&unix.MAP_GROWSDOWN == 0
}

// cowCapable tells whether p has a memory image to share areas with. The
// image of an incremental dump (pages in parent images, parentchain.go) is
// filled by fillChain, not premapped.
func cowCapable(p *process) bool {
	return p != nil && !p.c.zombie && !p.c.helper && p.c.mm != nil && !hasInParent(p.c.pagemap)
}

// matchVma returns the index of q's area that fork would have left from v:
// same start, end and flags, both eligible.
func matchVma(q *process, v *vma.VmaEntry) (int, bool) {
	vmas := q.c.mm.GetVmas()
	i := sort.Search(len(vmas), func(i int) bool { return vmas[i].GetStart() >= v.GetStart() })
	if i == len(vmas) {
		return 0, false
	}
	w := vmas[i]
	if w.GetStart() != v.GetStart() || w.GetEnd() != v.GetEnd() || w.GetFlags() != v.GetFlags() || !cowEligible(w) {
		return 0, false
	}
	return i, true
}

// planCow decides which areas each process premaps, parents first, and
// where: an area a process shares with its parent takes the parent's
// temporary address, an area only its children share gets a new one in a
// gap of every process's final layout and of the shared objects' staging
// areas.
func (r *restorer) planCow() error {
	var used []span
	for _, p := range r.procs {
		if cowCapable(p) {
			for _, v := range p.c.mm.GetVmas() {
				used = append(used, span{v.GetStart(), v.GetEnd()})
			}
		}
	}
	for id, addr := range r.files.anonAddr {
		size := (r.snap.shmem[id].size + pageSize - 1) &^ (pageSize - 1)
		used = append(used, span{addr, addr + size + pageSize})
	}
	for _, p := range r.procs {
		if !cowCapable(p) {
			continue
		}
		for i, v := range p.c.mm.GetVmas() {
			if !cowEligible(v) {
				continue
			}
			if par := p.parent; cowCapable(par) {
				if j, ok := matchVma(par, v); ok {
					if a, ok := par.cow[j]; ok {
						p.addCow(i, cowArea{temp: a.temp, inherited: true})
						continue
					}
				}
			}
			shared := false
			for _, ch := range p.children {
				if cowCapable(ch) {
					if _, ok := matchVma(ch, v); ok {
						shared = true
						break
					}
				}
			}
			if !shared {
				continue
			}
			size := v.GetEnd() - v.GetStart()
			// A guard page keeps it from merging with its neighbour.
			addr, err := findGap(used, size+pageSize)
			if err != nil {
				return fmt.Errorf("restore pid %d: area %#x-%#x shared with its children: %w", p.c.pid, v.GetStart(), v.GetEnd(), err)
			}
			used = append(used, span{addr, addr + size + pageSize})
			p.addCow(i, cowArea{temp: addr})
		}
	}
	return nil
}

// addCow records that p premaps its area i.
func (p *process) addCow(i int, a cowArea) {
	if p.cow == nil {
		p.cow = map[int]cowArea{}
	}
	p.cow[i] = a
}

// inCow tells whether [start, end) lies in one of p's premapped areas
// (phase two must not unmap it with the stub's mappings).
func (p *process) inCow(start, end uint64) bool {
	vmas := p.c.mm.GetVmas()
	for i, a := range p.cow {
		size := vmas[i].GetEnd() - vmas[i].GetStart()
		if start >= a.temp && end <= a.temp+size {
			return true
		}
	}
	return false
}

// cowSpans are the final addresses of p's premapped areas, sorted: their
// pages were written in phase one and fillPages skips them.
func (p *process) cowSpans() []span {
	var out []span
	vmas := p.c.mm.GetVmas()
	for i := range p.cow {
		out = append(out, span{vmas[i].GetStart(), vmas[i].GetEnd()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// premap is p's part of phase one, before it clones its children: drop
// the parent's areas p does not have, map the areas p is the first to
// share, and write p's pages into all of them.
func (p *process) premap() error {
	if !cowCapable(p) {
		return nil
	}
	t := p.leader
	if par := p.parent; cowCapable(par) {
		keep := map[uint64]bool{}
		for _, a := range p.cow {
			if a.inherited {
				keep[a.temp] = true
			}
		}
		pv := par.c.mm.GetVmas()
		for j, a := range par.cow {
			if keep[a.temp] {
				continue
			}
			if _, err := t.Syscall(unix.SYS_MUNMAP, a.temp, pv[j].GetEnd()-pv[j].GetStart()); err != nil {
				return fmt.Errorf("restore pid %d: unmap the parent's area %#x: %w", p.c.pid, pv[j].GetStart(), err)
			}
		}
	}
	if len(p.cow) == 0 {
		return nil
	}
	vmas := p.c.mm.GetVmas()
	for i, a := range p.cow {
		if a.inherited {
			continue
		}
		v := vmas[i]
		flags := uint64(v.GetFlags())&^(unix.MAP_FIXED|unix.MAP_FIXED_NOREPLACE) | unix.MAP_FIXED_NOREPLACE | unix.MAP_ANONYMOUS
		got, err := t.Syscall(unix.SYS_MMAP, a.temp, v.GetEnd()-v.GetStart(), unix.PROT_READ|unix.PROT_WRITE, flags, ^uint64(0), 0)
		if err == nil && got != a.temp {
			err = fmt.Errorf("mapped at %#x", got)
		}
		if err != nil {
			return fmt.Errorf("restore pid %d: premap %#x-%#x at %#x: %w", p.c.pid, v.GetStart(), v.GetEnd(), a.temp, err)
		}
	}
	return p.fillCow()
}

// cowChunk bounds how much of the pages image fillCow reads at once.
const cowChunk = 1 << 20

// fillCow writes p's pages of its premapped areas at their temporary
// addresses. In an inherited area a page is written only if it differs
// from the parent's page there, and the parent's pages p did not have are
// dropped (MADV_DONTNEED: they read as zero again, as in p).
func (p *process) fillCow() error {
	vmas := p.c.mm.GetVmas()
	// covered: for each inherited area, the page runs p's image has.
	covered := map[int][]span{}
	f, err := p.r.dir.OpenPages(p.c.pagesID)
	if err != nil {
		return err
	}
	defer f.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", p.pid))
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
	}
	defer mem.Close()
	buf := make([]byte, cowChunk)
	cur := make([]byte, cowChunk)
	var off uint64
	j := 0
	for _, pe := range p.c.pagemap {
		addr := pe.GetVaddr()
		size := uint64(pe.GetNrPages()) * pageSize
		for j < len(vmas) && vmas[j].GetEnd() <= addr {
			j++
		}
		a, ok := p.cow[j]
		if !ok {
			off += size
			continue
		}
		v := vmas[j]
		if a.inherited {
			covered[j] = append(covered[j], span{addr, addr + size})
		}
		for size > 0 {
			n := min(size, cowChunk)
			if _, err := readFull(f, buf[:n], int64(off)); err != nil {
				return fmt.Errorf("read %s at %d: %w", f.Name(), off, err)
			}
			dst := a.temp + (addr - v.GetStart())
			if err := p.writeCowChunk(mem, dst, buf[:n], cur[:n], a.inherited); err != nil {
				return err
			}
			addr, off, size = addr+n, off+n, size-n
		}
	}
	for i, a := range p.cow {
		if !a.inherited {
			continue
		}
		v := vmas[i]
		prev := v.GetStart()
		for _, s := range append(covered[i], span{v.GetEnd(), v.GetEnd()}) {
			if s.start > prev {
				if _, err := p.leader.Syscall(unix.SYS_MADVISE, a.temp+(prev-v.GetStart()), s.start-prev, unix.MADV_DONTNEED); err != nil {
					return fmt.Errorf("restore pid %d: drop the parent's pages %#x-%#x: %w", p.c.pid, prev, s.start, err)
				}
			}
			prev = s.end
		}
	}
	return nil
}

// writeCowChunk writes the image's bytes b at dst in p: all of them in a
// fresh area, only the pages that differ from what is there in an
// inherited one (cur is scratch of b's size). The comparison reads through
// /proc/PID/mem (mem): process_vm_readv pins the pages it reads, and the
// kernel unshares a shared anonymous page before pinning it, which would
// copy every page compared.
func (p *process) writeCowChunk(mem *os.File, dst uint64, b, cur []byte, inherited bool) error {
	if !inherited {
		p.r.pagesRestored += uint64(len(b)) / pageSize
		return writeSlice(p.pid, b, []unix.RemoteIovec{{Base: uintptr(dst), Len: len(b)}})
	}
	if _, err := readFull(mem, cur, int64(dst)); err != nil {
		return fmt.Errorf("restore pid %d: read the inherited pages at %#x: %w", p.c.pid, dst, err)
	}
	var remote []unix.RemoteIovec
	var local []byte
	for o := 0; o < len(b); o += pageSize {
		p.r.pagesCompared++
		if bytes.Equal(b[o:o+pageSize], cur[o:o+pageSize]) {
			p.r.pagesSkippedCow++
			continue
		}
		p.r.pagesRestored++
		at := dst + uint64(o)
		if k := len(remote) - 1; k >= 0 && uint64(remote[k].Base)+uint64(remote[k].Len) == at {
			remote[k].Len += pageSize
		} else {
			remote = append(remote, unix.RemoteIovec{Base: uintptr(at), Len: pageSize})
		}
		local = append(local, b[o:o+pageSize]...)
	}
	if len(remote) == 0 {
		return nil
	}
	for len(remote) > 0 {
		n := min(len(remote), maxIovecs)
		var size int
		for _, r := range remote[:n] {
			size += r.Len
		}
		if err := writeSlice(p.pid, local[:size], remote[:n]); err != nil {
			return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
		}
		remote, local = remote[n:], local[size:]
	}
	return nil
}

// moveCow puts premapped area i of p in its final place (phase two) with
// the area's own protection if no page write follows.
func (p *process) moveCow(i int, a cowArea, hasPages bool) error {
	v := p.c.mm.GetVmas()[i]
	size := v.GetEnd() - v.GetStart()
	got, err := p.leader.Syscall(unix.SYS_MREMAP, a.temp, size, size, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, v.GetStart())
	if err == nil && got != v.GetStart() {
		err = fmt.Errorf("moved to %#x", got)
	}
	if err == nil && !hasPages && v.GetProt() != unix.PROT_READ|unix.PROT_WRITE {
		_, err = p.leader.Syscall(unix.SYS_MPROTECT, v.GetStart(), size, uint64(v.GetProt()))
	}
	if err != nil {
		return fmt.Errorf("restore pid %d: move the area shared with its parent or children to %#x-%#x: %w", p.c.pid, v.GetStart(), v.GetEnd(), err)
	}
	return nil
}
