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

// makeInet recreates a TCP or UDP socket: bound to its address, listening
// or connected (UDP) as it was.
func (fp *filePlan) makeInet(p *process, id uint32) (err error) {
	t := p.leader
	e := fp.snap.files[id].GetIsk()
	where := fmt.Sprintf("restore pid %d socket %d", p.c.pid, e.GetIno())
	fd, err := t.Syscall(unix.SYS_SOCKET, uint64(e.GetFamily()), uint64(e.GetType())|unix.SOCK_CLOEXEC, uint64(e.GetProto()))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := fp.moveTo(p, fd, fp.temp[id]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	fd = fp.temp[id]
	setInt := func(level, opt uint64, v bool) error {
		val := uint32(0)
		if v {
			val = 1
		}
		addr, err := p.put(binary.LittleEndian.AppendUint32(nil, val))
		if err != nil {
			return err
		}
		_, err = t.Syscall(unix.SYS_SETSOCKOPT, fd, level, opt, addr, 4)
		return err
	}
	opts := e.GetOpts()
	if err := setBuffers(p, fd, opts); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	for _, o := range []struct {
		level, opt uint64
		on         bool
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, opts.GetReuseaddr()},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, opts.GetSoReuseport()},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, opts.GetSoKeepalive()},
	} {
		if o.on {
			if err := setInt(o.level, o.opt, true); err != nil {
				return fmt.Errorf("%s: option %d: %w", where, o.opt, err)
			}
		}
	}
	if e.GetFamily() == unix.AF_INET6 {
		if err := setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, e.GetV6Only()); err != nil {
			return fmt.Errorf("%s: IPV6_V6ONLY: %w", where, err)
		}
	}
	// withAddr makes bind or connect to an address of the image.
	withAddr := func(nr uintptr, words []uint32, port uint32) error {
		sa, err := sockaddr(e.GetFamily(), words, port)
		if err != nil {
			return err
		}
		addr, err := p.put(sa)
		if err != nil {
			return err
		}
		_, err = t.Syscall(nr, fd, addr, uint64(len(sa)))
		return err
	}
	established := e.GetType() == unix.SOCK_STREAM && e.GetState() == stateEstablished
	if established {
		// Bound and connected in repair mode, which binds the port even
		// where the listener that accepted the connection holds it.
		if err := fp.rebuildTCP(p, fd, id); err != nil {
			return fmt.Errorf("%s: TCP connection to port %d: %w", where, e.GetDstPort(), err)
		}
	} else if e.GetSrcPort() != 0 || anyNonZero(e.GetSrcAddr()) {
		// The port may still be held by connections of the dumped tree in
		// TIME_WAIT: bind as CRIU does, with SO_REUSEADDR for the moment.
		if !opts.GetReuseaddr() {
			if err := setInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, true); err != nil {
				return fmt.Errorf("%s: SO_REUSEADDR: %w", where, err)
			}
			defer func() {
				if err == nil {
					if err = setInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, false); err != nil {
						err = fmt.Errorf("%s: SO_REUSEADDR: %w", where, err)
					}
				}
			}()
		}
		if err := withAddr(unix.SYS_BIND, e.GetSrcAddr(), e.GetSrcPort()); err != nil {
			return fmt.Errorf("%s: bind port %d: %w", where, e.GetSrcPort(), err)
		}
	}
	switch {
	case established: // connected above
	case e.GetState() == stateListen:
		if _, err := t.Syscall(unix.SYS_LISTEN, fd, uint64(e.GetBacklog())); err != nil {
			return fmt.Errorf("%s: listen: %w", where, err)
		}
	case e.GetState() == stateEstablished: // a connected UDP socket
		if err := withAddr(unix.SYS_CONNECT, e.GetDstAddr(), e.GetDstPort()); err != nil {
			return fmt.Errorf("%s: connect: %w", where, err)
		}
	}
	if _, err := t.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(e.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	return nil
}

func anyNonZero(ws []uint32) bool {
	for _, w := range ws {
		if w != 0 {
			return true
		}
	}
	return false
}

// sockaddr builds struct sockaddr_in or sockaddr_in6.
func sockaddr(family uint32, words []uint32, port uint32) ([]byte, error) {
	addr := make([]byte, 0, 16)
	for _, w := range words {
		addr = binary.LittleEndian.AppendUint32(addr, w)
	}
	b := binary.LittleEndian.AppendUint16(nil, uint16(family))
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	switch {
	case family == unix.AF_INET && len(addr) == 4:
		b = append(b, addr...)
		return append(b, make([]byte, 8)...), nil
	case family == unix.AF_INET6 && len(addr) == 16:
		b = append(b, 0, 0, 0, 0) // flowinfo
		b = append(b, addr...)
		return append(b, 0, 0, 0, 0), nil // scope id
	}
	return nil, fmt.Errorf("address of %d bytes for family %d", len(addr), family)
}
