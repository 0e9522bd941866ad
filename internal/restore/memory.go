package restore

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/image"
	"sort"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

const (
	pageSize = 4096
	// taskSize is the top of the x86-64 user address space (4-level paging).
	taskSize = 0x7ffffffff000
	// scratchSize holds the buffers of injected calls (paths, clone_args,
	// the groups list of setgroups, which can be 256 KiB).
	scratchSize = 1 << 20
)

type span struct{ start, end uint64 }

// findGap returns the lowest address at or above 4 GiB where size bytes fit
// between the used spans.
func findGap(used []span, size uint64) (uint64, error) {
	sort.Slice(used, func(i, j int) bool { return used[i].start < used[j].start })
	addr := uint64(1 << 32)
	for _, s := range used {
		if s.end <= addr {
			continue
		}
		if s.start >= addr+size {
			break
		}
		addr = (s.end + pageSize - 1) &^ (pageSize - 1)
	}
	if addr+size > taskSize {
		return 0, fmt.Errorf("no free %d bytes in the address space", size)
	}
	return addr, nil
}

func isSpecial(v *vma.VmaEntry) bool {
	return v.GetStatus()&(image.VmaVdso|image.VmaVvar) != 0
}

// checkVmas validates the image's memory map: hostile images must not
// make cryo map outside user space or overlap areas.
func (c *checkpoint) checkVmas(files map[uint32]*fdinfo.FileEntry) error {
	var prev uint64
	for i, v := range c.mm.GetVmas() {
		s, e := v.GetStart(), v.GetEnd()
		if s%pageSize != 0 || e%pageSize != 0 || s >= e || e > taskSize || s < prev {
			return fmt.Errorf("mm-%d.img: vma %d %#x-%#x is invalid or out of order", c.pid, i, s, e)
		}
		if v.GetProt()&^uint32(unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC) != 0 {
			return fmt.Errorf("mm-%d.img: vma %#x-%#x: invalid protection %#x", c.pid, s, e, v.GetProt())
		}
		st := v.GetStatus()
		if st&image.VmaRegular == 0 {
			return fmt.Errorf("mm-%d.img: vma %#x-%#x: status %#x is not supported", c.pid, s, e, st)
		}
		if st&(image.VmaFilePrivate|image.VmaFileShared) != 0 {
			if f, ok := files[uint32(v.GetShmid())]; !ok || f.GetReg() == nil || v.GetPgoff()%pageSize != 0 {
				return fmt.Errorf("mm-%d.img: vma %#x-%#x: unknown file %d or bad offset", c.pid, s, e, v.GetShmid())
			}
		}
		prev = e
	}
	if err := c.checkLocked(); err != nil {
		return err
	}
	// Every page run must lie inside one private mapping.
	vmas := c.mm.GetVmas()
	j := 0
	for _, pe := range c.pagemap {
		s := pe.GetVaddr()
		e := s + uint64(pe.GetNrPages())*pageSize
		for j < len(vmas) && vmas[j].GetEnd() <= s {
			j++
		}
		if j == len(vmas) || vmas[j].GetStart() > s || vmas[j].GetEnd() < e ||
			vmas[j].GetStatus()&(image.VmaAnonPrivate|image.VmaFilePrivate) == 0 {
			return fmt.Errorf("pagemap-%d.img: pages %#x-%#x are outside private memory", c.pid, s, e)
		}
	}
	return nil
}

// remapSpecial moves the kernel's [vvar]/[vdso] block of the new process
// to where the image had it. The two-step move (through a gap) avoids
// overlapping the stub's other mappings, which are unmapped in between.
func (p *process) buildMemory() error {
	t := p.leader
	cur, err := proc.Maps(t.Pid)
	if err != nil {
		return fmt.Errorf("restore pid %d: memory map: %w", t.Pid, err)
	}
	var curSpecial []proc.Mapping
	var used []span
	for _, m := range cur {
		used = append(used, span{m.Start, m.End})
		if m.Path == "[vdso]" || m.Path == "[vvar]" || m.Path == "[vvar_vclock]" {
			curSpecial = append(curSpecial, m)
		}
	}
	var imgSpecial []*vma.VmaEntry
	for _, v := range p.c.mm.GetVmas() {
		used = append(used, span{v.GetStart(), v.GetEnd()})
		if isSpecial(v) {
			imgSpecial = append(imgSpecial, v)
		}
	}
	if len(curSpecial) == 0 || len(curSpecial) != len(imgSpecial) {
		return fmt.Errorf("restore pid %d: the image has %d vdso/vvar mappings, this kernel %d: restoring on another kernel is not supported", t.Pid, len(imgSpecial), len(curSpecial))
	}
	for i, m := range curSpecial {
		iv := imgSpecial[i]
		if m.End-m.Start != iv.GetEnd()-iv.GetStart() ||
			(m.Path == "[vdso]") != (iv.GetStatus()&image.VmaVdso != 0) ||
			m.Start-curSpecial[0].Start != iv.GetStart()-imgSpecial[0].GetStart() {
			return fmt.Errorf("restore pid %d: vdso layout differs from the image's (%s %#x bytes): restoring on another kernel is not supported", t.Pid, m.Path, m.End-m.Start)
		}
	}
	blockStart := curSpecial[0].Start
	blockSize := curSpecial[len(curSpecial)-1].End - blockStart
	gap, err := findGap(used, scratchSize+blockSize)
	if err != nil {
		return fmt.Errorf("restore pid %d: scratch memory: %w", t.Pid, err)
	}
	if err := p.mapScratch(gap); err != nil {
		return err
	}
	insnOff := t.SyscallAddr() - blockStart
	move := func(from, to uint64) error {
		for _, m := range curSpecial {
			src, dst := from+(m.Start-blockStart), to+(m.Start-blockStart)
			if _, err := t.Syscall(unix.SYS_MREMAP, src, m.End-m.Start, m.End-m.Start,
				unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, dst); err != nil {
				return fmt.Errorf("restore pid %d: move %s %#x to %#x: %w", t.Pid, m.Path, src, dst, err)
			}
		}
		for _, th := range p.threads {
			th.SetSyscallAddr(to + insnOff)
		}
		return nil
	}
	tmp := gap + scratchSize
	if err := move(blockStart, tmp); err != nil {
		return err
	}
	// Only the common ancestor of a shared object's holders and the
	// processes forked below it have its staging mapping; anywhere else
	// the object's range is free and may hold this process's scratch.
	staged := p.r.files.stagedIn(cur)
	for _, m := range cur {
		if m.Path == "[vdso]" || m.Path == "[vvar]" || m.Path == "[vvar_vclock]" || m.Path == "[vsyscall]" {
			continue
		}
		if p.r.files.isAnonStaging(m.Start, m.End) {
			continue // shared objects to move pieces of into place
		}
		if p.inCow(m.Start, m.End) {
			continue // premapped areas, moved into place below
		}
		if _, err := t.Syscall(unix.SYS_MUNMAP, m.Start, m.End-m.Start); err != nil {
			return fmt.Errorf("restore pid %d: unmap stub mapping %#x-%#x: %w", t.Pid, m.Start, m.End, err)
		}
	}
	if err := move(tmp, imgSpecial[0].GetStart()); err != nil {
		return err
	}
	return p.mapVmas(staged)
}

// mapVmas maps every area of the image, fills it from the pages image and
// gives it its final protection. staged holds the anonymous shared objects
// whose staging mapping p inherited (see stagedIn).
func (p *process) mapVmas(staged map[uint64]bool) error {
	t := p.leader
	vmas := p.c.mm.GetVmas()
	hasPages := make([]bool, len(vmas))
	j := 0
	for _, pe := range p.c.pagemap {
		for vmas[j].GetEnd() <= pe.GetVaddr() {
			j++
		}
		hasPages[j] = true
	}
	for i, v := range vmas {
		if isSpecial(v) {
			continue
		}
		if v.GetStatus()&image.VmaSysvIPC != 0 {
			if err := p.attachShm(v); err != nil {
				return err
			}
			continue
		}
		if a, ok := p.cow[i]; ok {
			if err := p.moveCow(i, a, hasPages[i]); err != nil {
				return err
			}
			continue
		}
		prot := uint64(v.GetProt())
		if hasPages[i] {
			prot |= unix.PROT_READ | unix.PROT_WRITE
		}
		// Locked once filled (lockVma): MAP_LOCKED would fault every page
		// in before the fill, which then finds them there.
		flags := uint64(v.GetFlags())&^(unix.MAP_FIXED_NOREPLACE|unix.MAP_LOCKED) | unix.MAP_FIXED
		fd := ^uint64(0)
		if addr, ok := p.r.files.anonAddr[v.GetShmid()]; ok && v.GetStatus()&image.VmaAnonShared != 0 {
			if !staged[v.GetShmid()] {
				return fmt.Errorf("restore pid %d: shared memory at %#x-%#x: object %d was not inherited from the common ancestor", t.Pid, v.GetStart(), v.GetEnd(), v.GetShmid())
			}
			// A piece of the object, inherited whole: a new mapping of the
			// same pages (mremap with old size 0), then its protection.
			size := v.GetEnd() - v.GetStart()
			got, err := t.Syscall(unix.SYS_MREMAP, addr+v.GetPgoff(), 0, size, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, v.GetStart())
			if err == nil && got != v.GetStart() {
				err = fmt.Errorf("moved to %#x", got)
			}
			if err == nil && v.GetProt() != unix.PROT_READ|unix.PROT_WRITE {
				_, err = t.Syscall(unix.SYS_MPROTECT, v.GetStart(), size, uint64(v.GetProt()))
			}
			if err != nil {
				return fmt.Errorf("restore pid %d: shared memory at %#x-%#x: %w", t.Pid, v.GetStart(), v.GetEnd(), err)
			}
			continue
		} else if v.GetStatus()&image.VmaAnonShared != 0 {
			// The object was created by the tree's common ancestor and is
			// still open at its temporary descriptor.
			fd = p.r.files.shmTemp[v.GetShmid()]
			flags &^= unix.MAP_ANONYMOUS
		} else if v.GetStatus()&(image.VmaFilePrivate|image.VmaFileShared) != 0 {
			id := uint32(v.GetShmid())
			name, want := p.r.snap.reg(id).GetName(), wantFile{f: p.r.snap.reg(id), size: true}
			if p.r.snap.ghosts[id] != nil {
				gp, err := p.r.files.ghostPath(p, p, id)
				if err != nil {
					return fmt.Errorf("restore pid %d: mapping %#x-%#x: %w", t.Pid, v.GetStart(), v.GetEnd(), err)
				}
				name, want = gp.path, gp.want(p.r.files, id)
			}
			n, err := p.openChecked(p, name, uint64(v.GetFdflags()), want)
			if err == nil {
				if err = p.r.snap.checkMapped(id, p.pid, n); err != nil {
					t.Syscall(unix.SYS_CLOSE, n)
				}
			}
			if err != nil {
				return fmt.Errorf("restore pid %d: mapping %#x-%#x: %w", t.Pid, v.GetStart(), v.GetEnd(), err)
			}
			fd = n
			flags &^= unix.MAP_ANONYMOUS
		} else {
			flags |= unix.MAP_ANONYMOUS
		}
		addr, err := t.Syscall(unix.SYS_MMAP, v.GetStart(), v.GetEnd()-v.GetStart(), prot, flags, fd, v.GetPgoff())
		if fd != ^uint64(0) && v.GetStatus()&image.VmaAnonShared == 0 {
			t.Syscall(unix.SYS_CLOSE, fd)
		}
		if err == nil && addr != v.GetStart() {
			err = fmt.Errorf("mapped at %#x", addr)
		}
		if err != nil {
			return fmt.Errorf("restore pid %d: map %#x-%#x: %w", t.Pid, v.GetStart(), v.GetEnd(), err)
		}
		if hasPages[i] {
			if err := p.applyHugeAdvice(v); err != nil {
				return err
			}
		}
	}
	if err := p.fillPages(); err != nil {
		return err
	}
	// The whole objects inherited for building are not the process's.
	// Only those it has: in a process outside the holders' subtree the
	// range may be its scratch memory (issue: a shell above a program
	// sharing 64 MiB with its workers lost its scratch here).
	for id, addr := range p.r.files.anonAddr {
		if !staged[id] {
			continue
		}
		size := (p.r.snap.shmem[id].size + pageSize - 1) &^ (pageSize - 1)
		t.Syscall(unix.SYS_MUNMAP, addr, size)
	}
	for i, v := range vmas {
		if isSpecial(v) {
			continue
		}
		if hasPages[i] && uint64(v.GetProt()) != unix.PROT_READ|unix.PROT_WRITE {
			if _, err := t.Syscall(unix.SYS_MPROTECT, v.GetStart(), v.GetEnd()-v.GetStart(), uint64(v.GetProt())); err != nil {
				return fmt.Errorf("restore pid %d: protect %#x-%#x: %w", t.Pid, v.GetStart(), v.GetEnd(), err)
			}
		}
		if err := p.lockVma(v); err != nil {
			return err
		}
		for adv := uint64(0); adv < 64; adv++ {
			if v.GetMadv()&(1<<adv) == 0 {
				continue
			}
			if _, err := t.Syscall(unix.SYS_MADVISE, v.GetStart(), v.GetEnd()-v.GetStart(), adv); err != nil {
				return fmt.Errorf("restore pid %d: madvise(%d) %#x-%#x: %w", t.Pid, adv, v.GetStart(), v.GetEnd(), err)
			}
		}
	}
	return nil
}

// stagedIn returns the anonymous shared objects whose staging mapping is
// among a process's current mappings cur: those it made or inherited.
func (fp *filePlan) stagedIn(cur []proc.Mapping) map[uint64]bool {
	staged := map[uint64]bool{}
	for id, addr := range fp.anonAddr {
		size := (fp.snap.shmem[id].size + pageSize - 1) &^ (pageSize - 1)
		for _, m := range cur {
			if m.Start >= addr && m.End <= addr+size {
				staged[id] = true
				break
			}
		}
	}
	return staged
}

// attachShm attaches a System V segment where it was; its contents came
// back with the IPC namespace.
func (p *process) attachShm(v *vma.VmaEntry) error {
	var flags uint64
	if v.GetProt()&unix.PROT_WRITE == 0 {
		flags |= unix.SHM_RDONLY
	}
	if v.GetProt()&unix.PROT_EXEC != 0 {
		flags |= 0o100000 // SHM_EXEC
	}
	addr, err := p.leader.Syscall(unix.SYS_SHMAT, v.GetShmid(), v.GetStart(), flags)
	if err == nil && addr != v.GetStart() {
		err = fmt.Errorf("attached at %#x", addr)
	}
	if err != nil {
		return fmt.Errorf("restore pid %d: attach System V segment %d at %#x: %w", p.c.pid, v.GetShmid(), v.GetStart(), err)
	}
	return nil
}

type pagemapEntry = pagemap.PagemapEntry
