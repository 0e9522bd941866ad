package fdkind

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fifo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Fifo is a named pipe: a FIFO entry for the open file, which refers to a
// regular-file entry for its path and flags, and its queued bytes in
// fifo-data.img. Which process of the tree reads the queue at dump is the
// tree's business (dump/pipes.go), as for pipes.
type Fifo struct{}

// Type is FIFO.
func (Fifo) Type() fdinfo.FdTypes { return fdinfo.FdTypes_FIFO }

// Check refuses an entry without its payload.
func (Fifo) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetFifo() != nil) }

// Refs refuses a FIFO whose path entry is not a regular-file entry.
func (Fifo) Refs(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) error {
	if file(f.GetFifo().GetRegfId()).GetReg() == nil {
		return fmt.Errorf("FIFO %d refers to unknown file %d", f.GetId(), f.GetFifo().GetRegfId())
	}
	return nil
}

// Keys are the FIFO's path, with or without its leading slash.
func (Fifo) Keys(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) []string {
	name := file(f.GetFifo().GetRegfId()).GetReg().GetName()
	return []string{name, strings.TrimPrefix(name, "/")}
}

// DumpFifo describes FIFO ino at path, opened with flags (fdinfo's), of
// the given mode, as two entries: the regular-file entry of its path, then
// the FIFO entry referring to it. add gives each entry its id; DumpFifo
// returns the FIFO entry's.
func DumpFifo(path string, flags, mode uint32, ino uint64, add func(*fdinfo.FileEntry) uint32) uint32 {
	reg := &regfile.RegFileEntry{
		Flags: proto.Uint32(flags &^ unix.O_CLOEXEC),
		Pos:   proto.Uint64(0),
		Fown:  noOwner(),
		Name:  proto.String(path),
		Mode:  proto.Uint32(mode),
	}
	reg.Id = proto.Uint32(add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Reg: reg}))
	fe := &fifo.FifoEntry{PipeId: proto.Uint32(uint32(ino)), RegfId: reg.Id}
	fe.Id = proto.Uint32(add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_FIFO.Enum(), Fifo: fe}))
	return fe.GetId()
}

// Open opens a FIFO end at its place. A read-write "keeper" opened first
// means neither end blocks (or fails, non-blocking) waiting for the
// other; the first end opened of each FIFO also gets its capacity and
// queued bytes, written by cryo through the keeper.
func (Fifo) Open(m Opener, f *fdinfo.FileEntry) error {
	ff := f.GetFifo()
	reg := m.File(ff.GetRegfId()).GetReg()
	where := fmt.Sprintf("%s FIFO %s", m.Process(), reg.GetName())
	want := Want{Reg: reg}
	keeper, err := m.OpenChecked(reg.GetName(), unix.O_RDWR|unix.O_NONBLOCK, want)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer m.Syscall(unix.SYS_CLOSE, keeper)
	flags := reopenFlags(reg.GetFlags())
	n, err := m.OpenChecked(reg.GetName(), flags|unix.O_NONBLOCK, want)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	at, err := placeAndClose(m, n)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if _, err := m.Syscall(unix.SYS_FCNTL, at, unix.F_SETFL, flags&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	pd, data := m.FifoQueue(ff.GetPipeId())
	return fillQueue(m, keeper, pd, data)
}
