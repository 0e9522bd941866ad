package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// anonKinds are the anonymous-inode descriptors whose dump still lives in
// this package, by the name /proc/PID/fd shows. The others have their home
// in internal/fdkind (fdkind.Detect).
var anonKinds = map[string]fdinfo.FdTypes{
	"anon_inode:[eventpoll]": fdinfo.FdTypes_EVENTPOLL,
}

// dumpAnon describes an epoll instance from its fdinfo; its watched files
// are found once every descriptor has its id (resolveEpollTargets).
func (p *process) dumpAnon(ft *fileTable, fd int, target string, kind fdinfo.FdTypes, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: kind.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	// "tfd: N events: HEX data: HEX pos:... ino:... sdev:...", one line
	// per watched descriptor, numbered in this process.
	ep := &eventpoll.EventpollFileEntry{Flags: proto.Uint32(info.Flags &^ unix.O_CLOEXEC), Fown: noOwner()}
	for _, line := range info.Lines {
		var tfd uint32
		var events uint32
		var data uint64
		if _, err := fmt.Sscanf(line, "tfd: %d events: %x data: %x", &tfd, &events, &data); err != nil {
			continue
		}
		ep.Tfd = append(ep.Tfd, &eventpoll.EventpollTfdEntry{Id: proto.Uint32(0), Tfd: proto.Uint32(tfd), Events: proto.Uint32(events), Data: proto.Uint64(data)})
	}
	ft.epolls = append(ft.epolls, epollOwner{p: p, fd: fd, entry: ep})
	id := ft.add(&fdinfo.FileEntry{Type: kind.Enum(), Epfd: ep})
	ep.Id = proto.Uint32(id)
	for _, t := range ep.Tfd {
		t.Id = proto.Uint32(id)
	}
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// pokeTimerfds makes the kernel count the expirations of every timerfd
// (it does so lazily): an injected timerfd_gettime updates what fdinfo
// shows, its ticks and its next expiry.
func (p *process) pokeTimerfds() error {
	fds, err := proc.Fds(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: list descriptors: %w", p.pid, err)
	}
	for _, fd := range fds {
		if target, err := proc.FdTarget(p.pid, fd); err != nil || target != (fdkind.Timerfd{}).Target() {
			continue
		}
		if _, err := p.leader().Syscall(unix.SYS_TIMERFD_GETTIME, uint64(fd), p.scratch.addr+scratchStack); err != nil {
			return fmt.Errorf("%s: timerfd_gettime: %w", p.fdName(fd), err)
		}
	}
	return nil
}
