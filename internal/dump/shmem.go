package dump

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// shmemObj is one MAP_SHARED|MAP_ANONYMOUS object and its data.
type shmemObj struct {
	ino      uint64
	segments []shmemSegment // data, by offset; holes are zero
	// whole: read through a file (map_files or an fd), every page of it.
	// Otherwise only its pages in memory within the ranges the tree maps
	// were read (addResident), saved marks them by offset.
	whole bool
	saved map[uint64]bool
}

type shmemSegment struct {
	off  uint64
	data []byte
}

// shmemTable holds the shared anonymous objects of the tree.
type shmemTable struct {
	objs  map[uint64]*shmemObj
	order []uint64
}

// add records a mapping of a shared anonymous object; its data is read once,
// through /proc/PID/map_files, which reaches the whole object (also pages
// this process never touched) and tells data from holes. map_files needs
// CAP_CHECKPOINT_RESTORE: without it the pages in memory are read through
// the mapping of rp, the process (see addResident).
func (st *shmemTable) add(m proc.Mapping, rp remote.Proc) error {
	err := st.addPath(m.Inode, fmt.Sprintf("/proc/%d/map_files/%x-%x", rp.Pid(), m.Start, m.End))
	if errors.Is(err, unix.EPERM) {
		return st.addResident(m, rp)
	}
	return err
}

// addPath records the object with inode ino, read through path (a
// map_files or fd link of a process).
func (st *shmemTable) addPath(ino uint64, path string) error {
	old, ok := st.objs[ino]
	if ok && old.whole {
		return nil
	}
	file, err := proc.Open(path, unix.O_RDONLY)
	if err != nil {
		return fmt.Errorf("open the shared memory object: %w", err)
	}
	defer file.Close()
	f := int(file.Fd())
	var sb unix.Stat_t
	if err := unix.Fstat(f, &sb); err != nil {
		return err
	}
	obj := &shmemObj{ino: ino, whole: true}
	size := sb.Size
	for off := int64(0); off < size; {
		data, err := unix.Seek(f, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return fmt.Errorf("find data: %w", err)
		}
		hole, err := unix.Seek(f, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("find hole: %w", err)
		}
		start := data &^ 4095
		end := min((hole+4095)&^4095, (size+4095)&^4095)
		buf := make([]byte, end-start)
		for got := 0; got < len(buf); {
			n, err := unix.Pread(f, buf[got:], start+int64(got))
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			if n == 0 {
				break
			}
			got += n
		}
		obj.segments = append(obj.segments, shmemSegment{off: uint64(start), data: buf})
		off = end
	}
	st.objs[ino] = obj
	if !ok {
		st.order = append(st.order, ino)
	}
	return nil
}

// addResident records the pages of mapping m of rp that are in memory
// (mincore on a shared mapping asks the object, so pages other processes
// touched count too), read through the mapping. Pages of the object that
// no process of the tree maps are not reached; swapped-out ones could not
// be told from holes, so a mapping with any is refused.
func (st *shmemTable) addResident(m proc.Mapping, rp remote.Proc) error {
	if m.Swap > 0 {
		return fmt.Errorf("%d KiB of it are swapped out, which cryo can read only with CAP_CHECKPOINT_RESTORE (through /proc/PID/map_files)", m.Swap>>10)
	}
	obj, ok := st.objs[m.Inode]
	if !ok {
		obj = &shmemObj{ino: m.Inode, saved: map[uint64]bool{}}
		st.objs[m.Inode] = obj
		st.order = append(st.order, m.Inode)
	}
	if obj.whole {
		return nil
	}
	ps := proc.PageSize()
	pages := m.Size() / ps
	for first := uint64(0); first < pages; first += rp.Size {
		n := min(rp.Size, pages-first)
		addr := m.Start + first*ps
		if _, err := rp.Call(unix.SYS_MINCORE, addr, n*ps, rp.Scratch); err != nil {
			return fmt.Errorf("mincore: %w", err)
		}
		vec, err := rp.Get(0, int(n))
		if err != nil {
			return err
		}
		take := func(i uint64) bool { return vec[i]&1 != 0 && !obj.saved[m.Offset+(first+i)*ps] }
		for i := uint64(0); i < n; {
			if !take(i) {
				i++
				continue
			}
			j := i
			for j < n && take(j) {
				obj.saved[m.Offset+(first+j)*ps] = true
				j++
			}
			buf := make([]byte, (j-i)*ps)
			if err := ptrace.ReadMem(rp.Pid(), addr+i*ps, buf); err != nil {
				return err
			}
			obj.segments = append(obj.segments, shmemSegment{off: m.Offset + (first+i)*ps, data: buf})
			i = j
		}
	}
	return nil
}

// write saves each object as pagemap-shmem-<ino>.img with its pages file.
func (st *shmemTable) write(dir *image.Dir, firstPagesID uint32) error {
	for i, ino := range st.order {
		obj := st.objs[ino]
		// Pages read range by range come in no order.
		slices.SortFunc(obj.segments, func(a, b shmemSegment) int { return cmp.Compare(a.off, b.off) })
		id := firstPagesID + uint32(i)
		f, err := dir.CreatePages(id)
		if err != nil {
			return err
		}
		var entries []*pagemap.PagemapEntry
		for _, seg := range obj.segments {
			if _, err := f.Write(seg.data); err != nil {
				f.Close()
				return fmt.Errorf("shared memory %d: %w", ino, err)
			}
			entries = append(entries, &pagemap.PagemapEntry{
				Vaddr:   proto.Uint64(seg.off),
				NrPages: proto.Uint32(uint32(len(seg.data) / 4096)),
				Flags:   proto.Uint32(image.PagePresent),
			})
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := dir.WritePagemapNamed(image.ShmemPagemapName(ino), id, entries); err != nil {
			return err
		}
	}
	return nil
}
