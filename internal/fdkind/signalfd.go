package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/signalfd"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Signalfd is a signalfd: its signal mask.
type Signalfd struct{}

// Type is SIGNALFD.
func (Signalfd) Type() fdinfo.FdTypes { return fdinfo.FdTypes_SIGNALFD }

// Target is how /proc/PID/fd names a signalfd.
func (Signalfd) Target() string { return "anon_inode:[signalfd]" }

// Check refuses an entry without its payload.
func (Signalfd) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetSgfd() != nil) }

// Dump reads the mask from fdinfo.
func (Signalfd) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	mask, err := number(d, "sigmask", 16)
	if err != nil {
		return nil, err
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_SIGNALFD.Enum(),
		Sgfd: &signalfd.SignalfdEntry{Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner(), Sigmask: proto.Uint64(mask)}}, nil
}

// Create makes the signalfd with its mask.
func (Signalfd) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetSgfd()
	addr, err := m.Put(putU64(nil, e.GetSigmask()))
	var fd uint64
	if err == nil {
		fd, err = m.Syscall(unix.SYS_SIGNALFD4, ^uint64(0), addr, 8, uint64(e.GetFlags()&unix.O_NONBLOCK)|unix.O_CLOEXEC)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}
