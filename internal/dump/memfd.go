package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
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
		name, _ := fdkind.MemfdName(target)
		inode, err := fdkind.DumpMemfdInode(path, name, &st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		ft.memfds[st.Ino] = inode
		ft.memfdOrder = append(ft.memfdOrder, st.Ino)
	}
	id := ft.add(fdkind.DumpMemfd(info.Flags, info.Pos, st.Ino, ft.nextID()))
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
