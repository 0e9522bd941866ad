package fdkind

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Memfd is a descriptor of a memfd: a file entry with its flags and offset
// that refers to the memfd's inode. The inode (name, size, seals) is in
// memfd-inode.img and its contents are saved with the shared memory
// objects, since a mapping of the memfd shares them: the inode is made
// again by restore's shared memory code, and each descriptor is a copy of
// it (Opener.Shared).
type Memfd struct{}

// Type is MEMFD.
func (Memfd) Type() fdinfo.FdTypes { return fdinfo.FdTypes_MEMFD }

// Check refuses an entry without its payload.
func (Memfd) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetMemfd() != nil) }

// MemfdName returns the name of the memfd /proc/PID/fd names target
// ("/memfd:NAME (deleted)"), and whether it is one.
func MemfdName(target string) (string, bool) {
	if !strings.HasPrefix(target, "/memfd:") || !strings.HasSuffix(target, " (deleted)") {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(target, "/memfd:"), " (deleted)"), true
}

// DumpMemfdInode describes the inode of memfd name, reached through path
// (/proc/PID/fd/N), whose stat is st: its owner, size and seals.
func DumpMemfdInode(path, name string, st *unix.Stat_t) (*memfd.MemfdInodeEntry, error) {
	f, err := proc.Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	f.Close()
	if err != nil {
		seals = 0 // made without MFD_ALLOW_SEALING: sealed by the kernel
	}
	return &memfd.MemfdInodeEntry{
		Name: proto.String(name), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid),
		Size: proto.Uint64(uint64(st.Size)), Shmid: proto.Uint32(uint32(st.Ino)),
		Seals: proto.Uint32(uint32(seals)), InodeId: proto.Uint64(st.Ino),
	}, nil
}

// DumpMemfd describes a descriptor of memfd inode ino, opened with flags
// (fdinfo's) at offset pos, as file entry id.
func DumpMemfd(flags uint32, pos, ino uint64, id uint32) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_MEMFD.Enum(), Memfd: &memfd.MemfdFileEntry{
		Id: proto.Uint32(id), Flags: proto.Uint32(flags &^ unix.O_CLOEXEC), Pos: proto.Uint64(pos),
		Fown: noOwner(), InodeId: proto.Uint32(uint32(ino)),
	}}
}

// MemfdInode is the memfd inode file f refers to, when f is a memfd's.
func MemfdInode(f *fdinfo.FileEntry) (uint64, bool) {
	m := f.GetMemfd()
	return uint64(m.GetInodeId()), m != nil
}

// Open gives a memfd descriptor its place: a copy of the memfd made for
// its inode, with its flags and offset.
func (Memfd) Open(m Opener, f *fdinfo.FileEntry) error {
	mf := f.GetMemfd()
	where := fmt.Sprintf("%s memfd %d", m.Process(), f.GetId())
	shared, ok := m.Shared(uint64(mf.GetInodeId()))
	if !ok {
		return fmt.Errorf("%s: its inode %d was not made", where, mf.GetInodeId())
	}
	at, err := m.Place(shared)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if _, err := m.Syscall(unix.SYS_FCNTL, at, unix.F_SETFL, uint64(mf.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	if pos := mf.GetPos(); pos != 0 {
		if _, err := m.Syscall(unix.SYS_LSEEK, at, pos, 0); err != nil {
			return fmt.Errorf("%s: seek: %w", where, err)
		}
	}
	return nil
}
