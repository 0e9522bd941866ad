package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Eventfd is an eventfd: its counter and semaphore mode.
type Eventfd struct{}

// Type is EVENTFD.
func (Eventfd) Type() fdinfo.FdTypes { return fdinfo.FdTypes_EVENTFD }

// Target is how /proc/PID/fd names an eventfd.
func (Eventfd) Target() string { return "anon_inode:[eventfd]" }

// Check refuses an entry without its payload.
func (Eventfd) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetEfd() != nil) }

// Dump reads the counter and semaphore mode from fdinfo.
func (Eventfd) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	count, err := number(d, "eventfd-count", 16)
	if err != nil {
		return nil, err
	}
	e := &eventfd.EventfdFileEntry{Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner(), Counter: proto.Uint64(count)}
	if sem, err := number(d, "eventfd-semaphore", 10); err == nil {
		image.SetEventfdSemaphore(e, sem != 0)
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_EVENTFD.Enum(), Efd: e}, nil
}

// Create makes the eventfd and writes its counter.
func (Eventfd) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetEfd()
	flags := uint64(e.GetFlags()&unix.O_NONBLOCK) | unix.O_CLOEXEC
	if sem, _ := image.EventfdSemaphore(e); sem {
		flags |= 1 // EFD_SEMAPHORE
	}
	if e.GetCounter() > 0xfffffffffffffffe {
		return 0, fmt.Errorf("%s: counter %d", m.Where(), e.GetCounter())
	}
	// The counter is written after: eventfd2 takes only 32 bits.
	fd, err := m.Syscall(unix.SYS_EVENTFD2, 0, flags)
	if err == nil && e.GetCounter() > 0 {
		var addr uint64
		if addr, err = m.Put(putU64(nil, e.GetCounter())); err == nil {
			_, err = m.Syscall(unix.SYS_WRITE, fd, addr, 8)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}
