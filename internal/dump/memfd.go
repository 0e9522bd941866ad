package dump

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// dumpMemfd describes a memfd held at fd: its contents are saved once per
// inode with the shared memory objects (a mapping of it shares them), its
// name, size and seals in memfd-inode.img.
func (p *process) dumpMemfd(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("%s (%s)", p.fdName(fd), target)
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_MEMFD.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	path := fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd)
	st, err := proc.FileStat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := ft.shmem.addPath(st.Ino, path); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if ft.memfds == nil {
		ft.memfds = map[uint64]*memfd.MemfdInodeEntry{}
	}
	if _, ok := ft.memfds[st.Ino]; !ok {
		f, err := proc.Open(path, unix.O_RDONLY)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		f.Close()
		if err != nil {
			seals = 0 // made without MFD_ALLOW_SEALING: sealed by the kernel
		}
		name := strings.TrimSuffix(strings.TrimPrefix(target, "/memfd:"), " (deleted)")
		ft.memfds[st.Ino] = &memfd.MemfdInodeEntry{
			Name: proto.String(name), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid),
			Size: proto.Uint64(uint64(st.Size)), Shmid: proto.Uint32(uint32(st.Ino)),
			Seals: proto.Uint32(uint32(seals)), InodeId: proto.Uint64(st.Ino),
		}
		ft.memfdOrder = append(ft.memfdOrder, st.Ino)
	}
	id := ft.add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_MEMFD.Enum(), Memfd: &memfd.MemfdFileEntry{
		Flags: proto.Uint32(info.Flags &^ unix.O_CLOEXEC), Pos: proto.Uint64(info.Pos),
		Fown: noOwner(), InodeId: proto.Uint32(uint32(st.Ino)),
	}})
	ft.entries[id-1].Memfd.Id = proto.Uint32(id)
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// writeMemfds writes memfd-inode.img.
func (ft *fileTable) writeMemfds(dir *image.Dir) error {
	var entries []proto.Message
	for _, ino := range ft.memfdOrder {
		entries = append(entries, ft.memfds[ino])
	}
	if len(entries) == 0 {
		return nil
	}
	return dir.Write(image.MemfdInodeName, "MEMFD_INODE", entries...)
}
