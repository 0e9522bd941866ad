package restore

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// addEpollHolders makes every process holding an epoll instance a holder
// of each file the instance watches that it does not hold itself (the
// watch outlived the descriptor it was added with, the file being held
// under another number or by another process): the file is then opened
// where that process inherits it, at its temporary descriptor, through
// which the watch is added.
func addEpollHolders(s *snapshot, procs []*process, holders map[uint32][]*process) error {
	for _, p := range procs {
		held := map[uint32]bool{}
		for _, fd := range p.c.fds {
			held[fd.GetId()] = true
		}
		for _, fd := range p.c.fds {
			if fd.GetType() != fdinfo.FdTypes_EVENTPOLL {
				continue
			}
			for _, w := range s.files[fd.GetId()].GetEpfd().GetTfd() {
				t, ok, err := image.EpollTarget(w)
				if err != nil {
					return fmt.Errorf("epoll %d: watch of descriptor %d: %w", fd.GetId(), w.GetTfd(), err)
				}
				if !ok || held[t] {
					continue
				}
				if s.files[t] == nil {
					return fmt.Errorf("epoll %d: watch of descriptor %d: its file %d is not in the image", fd.GetId(), w.GetTfd(), t)
				}
				holders[t] = append(holders[t], p)
				held[t] = true
			}
		}
	}
	return nil
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
			if err := fp.addWatch(p, uint64(fd.GetFd()), w); err != nil {
				return fmt.Errorf("restore pid %d: epoll fd %d: watch fd %d: %w", p.c.pid, fd.GetFd(), w.GetTfd(), err)
			}
		}
	}
	return nil
}

// addWatch adds one watch to the epoll instance at epfd, under its saved
// descriptor number. A watch whose file is no longer at that number (see
// addEpollHolders) is added through a descriptor that holds the file for
// the moment at that number: whatever p holds there steps aside to a
// spare descriptor and comes back afterwards, with its close-on-exec flag.
func (fp *filePlan) addWatch(p *process, epfd uint64, w *eventpoll.EventpollTfdEntry) error {
	t := p.leader
	tfd := uint64(w.GetTfd())
	// struct epoll_event is packed on x86-64: 4 + 8 bytes.
	ev := binary.LittleEndian.AppendUint32(nil, w.GetEvents())
	ev = binary.LittleEndian.AppendUint64(ev, w.GetData())
	add := func() error {
		addr, err := p.put(ev)
		if err != nil {
			return err
		}
		_, err = t.Syscall(unix.SYS_EPOLL_CTL, epfd, unix.EPOLL_CTL_ADD, tfd, addr)
		return err
	}
	target, ok, err := image.EpollTarget(w)
	if err != nil {
		return err
	}
	src, atNumber := uint64(0), !ok
	if ok {
		src = fp.temp[target]
		for _, fd := range p.c.fds {
			if fd.GetId() == target {
				src = uint64(fd.GetFd())
				if uint64(fd.GetFd()) == tfd {
					atNumber = true
				}
			}
		}
	}
	if atNumber {
		return add()
	}
	if _, has := fp.temp[target]; !has && src == 0 {
		return fmt.Errorf("its file %d was not made in this process", target)
	}
	// Whatever holds tfd now steps aside; EBADF: nothing does.
	spare, aside := uint64(0), false
	var flags uint64
	if f, err := t.Syscall(unix.SYS_FCNTL, tfd, unix.F_GETFD); err == nil {
		flags = f
		if spare, err = t.Syscall(unix.SYS_FCNTL, tfd, unix.F_DUPFD_CLOEXEC, fp.base+uint64(fp.tempCount())); err != nil {
			return fmt.Errorf("move descriptor %d aside: %w", tfd, err)
		}
		aside = true
	}
	if _, err := t.Syscall(unix.SYS_DUP3, src, tfd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("hold the watched file at %d: %w", tfd, err)
	}
	addErr := add()
	if aside {
		var cloexec uint64
		if flags&unix.FD_CLOEXEC != 0 {
			cloexec = unix.O_CLOEXEC
		}
		if _, err := t.Syscall(unix.SYS_DUP3, spare, tfd, cloexec); err != nil {
			return fmt.Errorf("put descriptor %d back: %w", tfd, err)
		}
		t.Syscall(unix.SYS_CLOSE, spare)
	} else {
		t.Syscall(unix.SYS_CLOSE, tfd)
	}
	return addErr
}
