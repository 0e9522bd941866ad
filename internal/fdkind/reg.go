package fdkind

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Reg is a file reached through its path: a regular file, directory or
// block device (a deleted one saved as a ghost, ghost.go), or a terminal
// outside the tree, handed over at restore (-j) or given by the caller
// (--inherit-fd). Its entries also stand for the executable, the mapped
// files, the working directory and the root, which restore's memory and
// file-system code reads; a descriptor of one is opened here.
type Reg struct{}

// Type is REG.
func (Reg) Type() fdinfo.FdTypes { return fdinfo.FdTypes_REG }

// Check refuses an entry without its payload.
func (Reg) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetReg() != nil) }

// Keys are the file's path, with or without its leading slash.
func (Reg) Keys(f *fdinfo.FileEntry, _ func(uint32) *fdinfo.FileEntry) []string {
	name := f.GetReg().GetName()
	return []string{name, strings.TrimPrefix(name, "/")}
}

// DumpReg describes a file reached through path name, opened with flags
// (the file's: without O_CLOEXEC, which is the descriptor's) at offset pos, of the given size and mode (stat's). The entry's id is set
// when it is added (SetID).
func DumpReg(name string, flags uint32, pos, size uint64, mode uint32) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Reg: &regfile.RegFileEntry{
		Flags: proto.Uint32(flags),
		Pos:   proto.Uint64(pos),
		Fown:  noOwner(),
		Name:  proto.String(name),
		Size:  proto.Uint64(size),
		Mode:  proto.Uint32(mode),
	}}
}

// SetChecksum records the checksum of a regular file's first n bytes
// (image.ChecksumOf), which restore compares to refuse a mapped file that
// changed since the dump.
func SetChecksum(f *fdinfo.FileEntry, sum, n uint32) {
	f.GetReg().Checksum, f.GetReg().ChecksumConfig = proto.Uint32(sum), proto.Uint32(n)
}

// SetID gives entry f id, in the entry and in its payload.
func SetID(f *fdinfo.FileEntry, id uint32) {
	f.Id = proto.Uint32(id)
	if r := f.GetReg(); r != nil {
		r.Id = proto.Uint32(id)
	}
}

// RegName is the path of a regular-file entry ("" for another kind).
func RegName(f *fdinfo.FileEntry) string { return f.GetReg().GetName() }

// InheritFlags are the status flags (O_APPEND, O_NONBLOCK...) a file given
// by --inherit-fd gets, for the kinds whose entry has them.
func InheritFlags(f *fdinfo.FileEntry) (uint32, bool) {
	switch f.GetType() {
	case fdinfo.FdTypes_PIPE:
		return f.GetPipe().GetFlags(), true
	case fdinfo.FdTypes_REG:
		return f.GetReg().GetFlags(), true
	}
	return 0, false
}

// isTerminalPath tells whether a dumped descriptor named a terminal, which
// with -j is replaced by the restoring terminal, as CRIU does.
func isTerminalPath(name string, mode uint32) bool {
	if mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	return strings.HasPrefix(name, "/dev/pts/") || strings.HasPrefix(name, "/dev/tty") ||
		name == "/dev/console" || name == "/dev/ptmx"
}

// Open opens the file at its place, at its offset, as the process it is
// restored for (Opener.OpenChecked); a deleted file is opened where
// restore put it back (Opener.Ghost). With -j a terminal is replaced by
// the restoring one: cryo's stdin, or stdout for a file open for writing
// (every process still holds cryo's 0-2 while its files are made).
func (Reg) Open(m Opener, f *fdinfo.FileEntry) error {
	r := f.GetReg()
	where := fmt.Sprintf("%s file %s", m.Process(), r.GetName())
	if m.ShellJob() && isTerminalPath(r.GetName(), r.GetMode()) {
		std := uint64(0)
		if r.GetFlags()&unix.O_ACCMODE != unix.O_RDONLY {
			std = 1
		}
		if _, err := m.Place(std); err != nil {
			return fmt.Errorf("%s: hand over the terminal: %w", where, err)
		}
		return nil
	}
	name, want := r.GetName(), Want{Reg: r}
	if path, w, ok, err := m.Ghost(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	} else if ok {
		name, want = path, w
	}
	n, err := m.OpenChecked(name, reopenFlags(r.GetFlags()), want)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	at, err := placeAndClose(m, n)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if pos := r.GetPos(); pos != 0 {
		if _, err := m.Syscall(unix.SYS_LSEEK, at, pos, 0); err != nil {
			return fmt.Errorf("%s: seek to %d: %w", where, pos, err)
		}
	}
	return nil
}
