package dump

import (
	"errors"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ShmemPagemapName is CRIU's image of an anonymous shared memory object's
// pages, by shmid (here the object's inode).
func ShmemPagemapName(shmid uint64) string { return fmt.Sprintf("pagemap-shmem-%d.img", shmid) }

// shmemObj is one MAP_SHARED|MAP_ANONYMOUS object and its data.
type shmemObj struct {
	ino      uint64
	segments []shmemSegment // data, by offset; holes are zero
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
// this process never touched) and tells data from holes.
func (st *shmemTable) add(pid int, m proc.Mapping) error {
	return st.addPath(m.Inode, fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End))
}

// addPath records the object with inode ino, read through path (a
// map_files or fd link of a process).
func (st *shmemTable) addPath(ino uint64, path string) error {
	if _, ok := st.objs[ino]; ok {
		return nil
	}
	f, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the shared memory object: %w", err)
	}
	defer unix.Close(f)
	var sb unix.Stat_t
	if err := unix.Fstat(f, &sb); err != nil {
		return err
	}
	obj := &shmemObj{ino: ino}
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
	st.order = append(st.order, ino)
	return nil
}

// write saves each object as pagemap-shmem-<ino>.img with its pages file.
func (st *shmemTable) write(dir *image.Dir, firstPagesID uint32) error {
	for i, ino := range st.order {
		obj := st.objs[ino]
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
				Flags:   proto.Uint32(PagePresent),
			})
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := dir.WritePagemapNamed(ShmemPagemapName(ino), id, entries); err != nil {
			return err
		}
	}
	return nil
}
