package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// maxEpollWatches bounds an epoll entry's watches (the kernel's default
// max_user_watches is about 4% of memory in 160-byte units: far fewer).
const maxEpollWatches = 1 << 20

// Epoll is an epoll instance and its watches. Its watches refer to other
// files of the tree, so two steps are the tree's, not the kind's: after
// every descriptor has its id, dump finds the file behind each watch (kcmp
// KCMP_EPOLL_TFD, dump/epoll.go); restore makes the watched files where
// the instance's holders inherit them and adds the watches once every
// descriptor is at its number (restore/epoll.go). Here: the instance, its
// watches as fdinfo lists them, and their checks.
type Epoll struct{}

// Type is EVENTPOLL.
func (Epoll) Type() fdinfo.FdTypes { return fdinfo.FdTypes_EVENTPOLL }

// Target is how /proc/PID/fd names an epoll instance.
func (Epoll) Target() string { return "anon_inode:[eventpoll]" }

// Check refuses an entry without its payload, with too many watches, or
// whose saved target of a watch cannot be read.
func (Epoll) Check(f *fdinfo.FileEntry) error {
	e := f.GetEpfd()
	if err := needPayload(f, e != nil); err != nil {
		return err
	}
	if n := len(e.GetTfd()); n > maxEpollWatches {
		return fmt.Errorf("epoll %d: %d watches", f.GetId(), n)
	}
	for _, w := range e.GetTfd() {
		if _, _, err := image.EpollTarget(w); err != nil {
			return fmt.Errorf("epoll %d: watch of descriptor %d: %w", f.GetId(), w.GetTfd(), err)
		}
	}
	return nil
}

// Dump reads the watches from fdinfo: "tfd: N events: HEX data: HEX
// pos:... ino:... sdev:...", one line per watch, numbered in this process.
func (Epoll) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	ep := &eventpoll.EventpollFileEntry{Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner()}
	for _, line := range d.Info().Lines {
		var tfd, events uint32
		var data uint64
		if _, err := fmt.Sscanf(line, "tfd: %d events: %x data: %x", &tfd, &events, &data); err != nil {
			continue
		}
		ep.Tfd = append(ep.Tfd, &eventpoll.EventpollTfdEntry{Id: proto.Uint32(id), Tfd: proto.Uint32(tfd), Events: proto.Uint32(events), Data: proto.Uint64(data)})
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_EVENTPOLL.Enum(), Epfd: ep}, nil
}

// Create makes an empty instance; its watches are added later.
func (Epoll) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	fd, err := m.Syscall(unix.SYS_EPOLL_CREATE1, unix.EPOLL_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}
