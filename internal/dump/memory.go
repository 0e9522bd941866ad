package dump

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/bufpool"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/progress"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// madvFlags maps VmFlags set by madvise(2) to the advice that sets them.
var madvFlags = []struct {
	flag   proc.VmFlags
	advice uint
}{
	{proc.FlagHugePage, unix.MADV_HUGEPAGE},
	{proc.FlagNoHugePage, unix.MADV_NOHUGEPAGE},
	{proc.FlagMergeable, unix.MADV_MERGEABLE},
	{proc.FlagDontCopy, unix.MADV_DONTFORK},
	{proc.FlagDontDump, unix.MADV_DONTDUMP},
	{proc.FlagWipeOnFork, unix.MADV_WIPEONFORK},
	{proc.FlagSeqRead, unix.MADV_SEQUENTIAL},
	{proc.FlagRandRead, unix.MADV_RANDOM},
}

// pageRun is a run of pages to save: [addr, addr+size).
type pageRun struct {
	addr, size uint64
	force      bool // not readable: go through /proc/PID/mem
	// frozen: in an area a fork does not copy as it is (MADV_DONTFORK,
	// MADV_WIPEONFORK), so a snapshot child cannot give its pages: they
	// are copied from the process while the tree is frozen.
	frozen bool
	// parent: the pages are unchanged since the previous (pre-)dump and
	// are found in its images (pagemap in_parent): nothing is copied.
	parent bool
}

// vmaEntries turns the memory map into VMA entries and lists the page runs
// whose contents the image must carry.
func (p *process) vmaEntries(maps []proc.Mapping, ft *fileTable) ([]*vma.VmaEntry, []pageRun, error) {
	pm, err := proc.OpenPagemap(p.pid)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	defer pm.Close()
	page := proc.PageSize()
	var vmas []*vma.VmaEntry
	var runs []pageRun
	for _, m := range maps {
		e := &vma.VmaEntry{
			Start: proto.Uint64(m.Start),
			End:   proto.Uint64(m.End),
			Pgoff: proto.Uint64(m.Offset),
			Shmid: proto.Uint64(0),
			Prot:  proto.Uint32(uint32(m.Prot)),
			Fd:    proto.Int64(-1),
		}
		var status, flags uint32
		anonPages := false // only anonymous (COW) pages are saved
		where := fmt.Sprintf("process %d mapping %#x-%#x %s", p.pid, m.Start, m.End, m.Path)
		switch {
		case m.Path == "[vsyscall]":
			continue // fixed kernel page, the same in every process
		case m.Path == "[vdso]":
			status, flags = image.VmaRegular|image.VmaVdso, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS
		case m.Path == "[vvar]" || m.Path == "[vvar_vclock]":
			status, flags = image.VmaRegular|image.VmaVvar, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS
		case m.IsSpecial():
			return nil, nil, fmt.Errorf("%s: special mapping not supported", where)
		case m.VmFlags.Has(proc.FlagIO) || m.VmFlags.Has(proc.FlagPFNMap):
			return nil, nil, fmt.Errorf("%s: device memory (VM_IO/VM_PFNMAP) cannot be checkpointed", where)
		case strings.HasPrefix(m.Path, "/[aio]"):
			// io_setup's ring: its requests live in the kernel's AIO
			// context, which no image type of cryo's holds yet.
			return nil, nil, fmt.Errorf("%s: AIO ring (io_setup): not supported yet", where)
		case m.VmFlags.Has(proc.FlagHugeTLB):
			return nil, nil, fmt.Errorf("%s: hugetlbfs memory (MAP_HUGETLB or a hugetlbfs file): not supported yet", where)
		case m.VmFlags.Has(proc.FlagLockOnFault):
			return nil, nil, fmt.Errorf("%s: memory locked on fault (mlock2 MLOCK_ONFAULT): not supported yet", where)
		case m.Shared && m.Deleted && (m.Path == "/dev/zero" || strings.HasPrefix(m.Path, "/memfd:")):
			// MAP_SHARED|MAP_ANONYMOUS: a shmem object, saved once for
			// every process that maps it (by inode).
			if err := ft.shmem.add(m, p.scratch.remote()); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			status, flags = image.VmaRegular|image.VmaAnonShared, unix.MAP_SHARED|unix.MAP_ANONYMOUS
			e.Shmid = proto.Uint64(m.Inode)
		case m.Shared && strings.HasPrefix(m.Path, "/SYSV") && m.Deleted:
			// An attached System V segment: the maps inode is its id; its
			// contents are saved with the IPC namespace.
			status, flags = image.VmaRegular|image.VmaSysvIPC, unix.MAP_SHARED
			e.Shmid = proto.Uint64(m.Inode)
			if m.Offset != 0 {
				return nil, nil, fmt.Errorf("%s: partly attached System V segment: not supported yet", where)
			}
		case m.Shared && m.Inode == 0:
			return nil, nil, fmt.Errorf("%s: this kind of shared memory is not supported yet", where)
		case m.Inode != 0:
			openFlags := uint32(unix.O_RDONLY)
			if m.Shared {
				status, flags = image.VmaRegular|image.VmaFileShared, unix.MAP_SHARED
				if m.VmFlags.Has(proc.FlagMayWrite) {
					openFlags = unix.O_RDWR
				}
			} else {
				status, flags = image.VmaRegular|image.VmaFilePrivate, unix.MAP_PRIVATE
				anonPages = true
			}
			var id uint32
			var err error
			if m.Deleted {
				// Saved whole, like a file deleted while open (a ghost).
				id, err = ft.mappedGhost(p.pid, &m, openFlags)
			} else {
				id, err = ft.pathFile(m.Path, p.viaRoot+m.Path, openFlags, true)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			e.Shmid = proto.Uint64(uint64(id))
			e.Fdflags = proto.Uint32(openFlags)
		default:
			status, flags = image.VmaRegular|image.VmaAnonPrivate, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS
			if m.Path == "[stack]" {
				status |= image.VmaStack
			}
			if m.Path == "[heap]" {
				status |= image.VmaHeap
			}
		}
		if m.VmFlags.Has(proc.FlagGrowsDown) {
			flags |= unix.MAP_GROWSDOWN
		}
		if m.VmFlags.Has(proc.FlagNoReserve) {
			flags |= unix.MAP_NORESERVE
		}
		if m.VmFlags.Has(proc.FlagLocked) {
			// mlock: restore maps it MAP_LOCKED, which locks it again.
			flags |= unix.MAP_LOCKED
		}
		var madv uint64
		for _, f := range madvFlags {
			if m.VmFlags.Has(f.flag) {
				madv |= 1 << f.advice
			}
		}
		e.Status = proto.Uint32(status)
		e.Flags = proto.Uint32(flags)
		if madv != 0 {
			e.Madv = proto.Uint64(madv)
		}
		if status&image.VmaAnonPrivate != 0 {
			image.SetVmaAnonHuge(e, m.AnonHuge) // for restore's collapseHuge
		}
		vmas = append(vmas, e)

		if status&(image.VmaAnonPrivate|image.VmaFilePrivate) == 0 {
			continue
		}
		pages, err := pm.Read(m.Start, m.End)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		force := m.Prot&unix.PROT_READ == 0
		frozen := m.VmFlags.Has(proc.FlagDontCopy) || m.VmFlags.Has(proc.FlagWipeOnFork)
		var run *pageRun
		for i, pe := range pages {
			keep := pe.Swapped() || (pe.Present() && !(anonPages && pe.FileOrSharedAnon()))
			addr := m.Start + uint64(i)*page
			if !keep {
				run = nil
				continue
			}
			// An anonymous page another process maps too (copy-on-write
			// after fork) is read through /proc/PID/mem: process_vm_readv
			// pins it, and the kernel copies a shared anonymous page
			// before pinning it, so the tree would leave the dump with a
			// copy per process.
			pageForce := force || (pe.Present() && !pe.Exclusive() && !pe.FileOrSharedAnon())
			if run != nil && run.addr+run.size == addr && run.force == pageForce {
				run.size += page
				continue
			}
			runs = append(runs, pageRun{addr: addr, size: page, force: pageForce, frozen: frozen})
			run = &runs[len(runs)-1]
		}
	}
	return vmas, runs, nil
}

// writePages copies the runs into pages-<id>.img and writes the pagemap.
func (p *process) writePages(dir *image.Dir, pagesID uint32, runs []pageRun, pool *bufpool.Pool) (int64, error) {
	f, err := dir.CreatePages(pagesID)
	if err != nil {
		return 0, err
	}
	n, err := copyPages(p.pid, runs, f, pool, p.opts.Progress)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("process %d: save memory: %w", p.pid, err)
	}
	return n, dir.WritePagemap(p.pid, pagesID, pagemapEntries(runs))
}

// copyBufSize is the size of each worker's buffer. Reused buffers keep
// process_vm_readv near memory bandwidth; fresh ones would fault on every
// page.
const copyBufSize = 4 << 20

// copySlice is one buffer's worth of page runs and where it goes in the
// pages image.
type copySlice struct {
	off   int64
	parts []pageRun
}

// sliceRuns cuts the runs into buffer-sized slices laid out back to back.
// A slice never mixes frozen and other runs, so that each can be copied
// from its own source (see snapshot.go).
func sliceRuns(runs []pageRun) []copySlice {
	var out []copySlice
	var cur copySlice
	var fill, off int64
	for _, r := range runs {
		if r.parent {
			continue // no data here: in the parent's images
		}
		addr, size := r.addr, r.size
		for size > 0 {
			if fill == copyBufSize || len(cur.parts) == 1024 || (len(cur.parts) > 0 && cur.parts[0].frozen != r.frozen) {
				out = append(out, cur)
				cur, fill = copySlice{off: off}, 0
			}
			n := min(size, uint64(copyBufSize-fill))
			cur.parts = append(cur.parts, pageRun{addr: addr, size: n, force: r.force, frozen: r.frozen})
			addr, size, fill, off = addr+n, size-n, fill+int64(n), off+int64(n)
		}
	}
	if len(cur.parts) > 0 {
		out = append(out, cur)
	}
	return out
}

// copyPages copies the runs of process pid into f, back to back in run
// order. One worker per CPU reads a slice into its own buffer and writes
// it at its offset: on this kind of VM the cost is in the image file's
// fresh pages, and two cores take them twice as fast as one.
//
// The buffers come from pool and are no bigger than the runs, and there are
// no more workers than slices: fresh buffers fault on each page (15-55 µs
// a page on a paravirtualized guest), which for a small process cost more
// than its copy.
func copyPages(pid int, runs []pageRun, f *os.File, pool *bufpool.Pool, meter *progress.Meter) (int64, error) {
	return copySlices(pid, sliceRuns(runs), f, pool, meter)
}

// copySlices is copyPages for slices already cut (by sliceRuns): each goes
// at its own offset of f.
func copySlices(pid int, slices []copySlice, f *os.File, pool *bufpool.Pool, meter *progress.Meter) (int64, error) {
	var total uint64
	for _, sl := range slices {
		for _, r := range sl.parts {
			total += r.size
		}
	}
	if total == 0 {
		return 0, nil
	}
	bufSize := int(min(total, copyBufSize))
	work := make(chan copySlice)
	errs := make(chan error, max(1, min(runtime.NumCPU(), len(slices))))
	stop := make(chan struct{})
	var stopOnce sync.Once
	var written atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < cap(errs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := pool.Get(bufSize)
			defer pool.Put(buf)
			var mem *ptrace.MemFile
			defer func() {
				if mem != nil {
					mem.Close()
				}
			}()
			for sl := range work {
				n, err := readSlice(pid, sl, buf, &mem)
				if err == nil {
					_, err = f.WriteAt(buf[:n], sl.off)
				}
				if err != nil {
					errs <- err
					stopOnce.Do(func() { close(stop) })
					return
				}
				written.Add(int64(n))
				meter.Add(int64(n))
			}
		}()
	}
feed:
	for _, sl := range slices {
		select {
		case work <- sl:
		case <-stop:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return written.Load(), err
	}
	return written.Load(), nil
}

// readSlice fills buf with one slice: readable pages with one
// process_vm_readv, unreadable ones through /proc/PID/mem.
func readSlice(pid int, sl copySlice, buf []byte, mem **ptrace.MemFile) (int, error) {
	var local []unix.Iovec
	var remote []unix.RemoteIovec
	want, n := 0, 0
	for _, part := range sl.parts {
		dst := buf[n : n+int(part.size)]
		n += int(part.size)
		if part.force {
			if *mem == nil {
				m, err := ptrace.OpenMem(pid)
				if err != nil {
					return 0, err
				}
				*mem = m
			}
			if err := (*mem).ReadAt(dst, part.addr); err != nil {
				return 0, err
			}
			continue
		}
		iov := unix.Iovec{Base: &dst[0]}
		iov.SetLen(len(dst))
		local = append(local, iov)
		remote = append(remote, unix.RemoteIovec{Base: uintptr(part.addr), Len: len(dst)})
		want += len(dst)
	}
	if len(remote) > 0 {
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			return 0, fmt.Errorf("read memory at %#x: %w", remote[0].Base, err)
		}
		if got != want {
			return 0, fmt.Errorf("read memory at %#x: %d of %d bytes", remote[0].Base, got, want)
		}
	}
	return n, nil
}
