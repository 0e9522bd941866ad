package restore

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"golang.org/x/sys/unix"
)

// makeEpoll creates an empty epoll instance at its temporary descriptor;
// its watches are added in phase two, once the watched descriptors are at
// their numbers.
func (fp *filePlan) makeEpoll(p *process, id uint32) error {
	fd, err := p.leader.Syscall(unix.SYS_EPOLL_CREATE1, unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("restore pid %d: epoll %d: %w", p.c.pid, id, err)
	}
	return fp.moveTo(p, fd, fp.temp[id])
}

// addEpollWatches adds the saved watches of the epoll instances p holds,
// once per instance: their descriptor numbers are p's (the process that
// holds the instance added them).
func (fp *filePlan) addEpollWatches(p *process) error {
	if fp.epollsWatching == nil {
		fp.epollsWatching = map[uint32]bool{}
	}
	for _, fd := range p.c.fds {
		if fd.GetType() != fdinfo.FdTypes_EVENTPOLL || fp.epollsWatching[fd.GetId()] {
			continue
		}
		fp.epollsWatching[fd.GetId()] = true
		for _, w := range fp.snap.files[fd.GetId()].GetEpfd().GetTfd() {
			// struct epoll_event is packed on x86-64: 4 + 8 bytes.
			ev := binary.LittleEndian.AppendUint32(nil, w.GetEvents())
			ev = binary.LittleEndian.AppendUint64(ev, w.GetData())
			addr, err := p.put(ev)
			if err != nil {
				return err
			}
			if _, err := p.leader.Syscall(unix.SYS_EPOLL_CTL, uint64(fd.GetFd()), unix.EPOLL_CTL_ADD, uint64(w.GetTfd()), addr); err != nil {
				return fmt.Errorf("restore pid %d: epoll fd %d: watch fd %d: %w", p.c.pid, fd.GetFd(), w.GetTfd(), err)
			}
		}
	}
	return nil
}
