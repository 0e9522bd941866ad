package dump

import (
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// acceptedConn is a connection cryo took out of a listener's backlog to
// read what its client sent: if the tree runs on, it is put back.
type acceptedConn struct {
	listener *unixDumped
	client   *unixDumped
	server   int // cryo's accepted end
}

// checkBacklogs saves the connections waiting in each listener's backlog.
// Their clients must be in the tree: the client is saved with the
// listener as its peer (as CRIU does), and restore connects it again. The
// bytes a client already sent wait in the server end, which has no
// descriptor: the only way to read them is to accept the connection, on a
// copy of the listener, which takes it out of the backlog. If the tree
// runs on (--leave-running, or a failed dump), putBackBacklogs makes the
// connections again.
func (ut *unixTable) checkBacklogs(ft *fileTable, opts Options) error {
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		if d.diag == nil || d.diag.State != stateListen || len(d.diag.Icons) == 0 {
			continue
		}
		where := fmt.Sprintf("process %d fd %d: Unix socket %d", d.pid, d.fd, ino)
		withData := false
		for _, c := range d.diag.Icons {
			client := ut.dumped[c]
			if client == nil {
				return fmt.Errorf("%s: a connection from socket %d outside the tree waits in its backlog: not supported", where, c)
			}
			if client.entry.GetPeer() != 0 {
				return fmt.Errorf("%s: client %d in its backlog has peer %d", where, c, client.entry.GetPeer())
			}
			if client.pid == os.Getpid() {
				return fmt.Errorf("%s: client %d in its backlog is in flight: not supported", where, c)
			}
			client.entry.Peer = proto.Uint32(ino)
			withData = withData || client.diag.WQueue > 0
		}
		image.AddBacklog(d.entry, d.diag.Icons)
		if !withData {
			continue
		}
		if len(d.entry.GetName()) == 0 || len(d.entry.GetName()) > 107 {
			return fmt.Errorf("%s: its name cannot be connected to again", where)
		}
		if err := ut.acceptBacklog(ft, opts, d); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// acceptBacklog takes every connection out of listener d's backlog and
// saves each server end, with what its client sent, as an entry of its
// own (see image.SetBacklogOf). cryo holds them until the dump ends.
func (ut *unixTable) acceptBacklog(ft *fileTable, opts Options, d *unixDumped) error {
	l, err := proc.CopyFd(d.pid, d.fd)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	// Each connection is recorded as soon as it is out of the backlog, so
	// that a failure below still puts every one back. The backlog is a
	// queue: they come out in the order sock_diag listed their clients.
	first := len(ut.accepted)
	for _, c := range d.diag.Icons {
		a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		if err != nil {
			return fmt.Errorf("accept a waiting connection: %w", err)
		}
		ft.held = append(ft.held, a)
		ut.accepted = append(ut.accepted, acceptedConn{listener: d, client: ut.dumped[c], server: a})
	}
	// The server ends have inodes now, and sock_diag tells their clients.
	diag, err := sockdiag.Unixes()
	if err != nil {
		return err
	}
	self := &process{pid: os.Getpid(), opts: opts}
	for i := first; i < len(ut.accepted); i++ {
		a := ut.accepted[i].server
		var st unix.Stat_t
		if err := unix.Fstat(a, &st); err != nil {
			return err
		}
		u := diag[uint32(st.Ino)]
		if u == nil || ut.dumped[u.Peer] == nil {
			return fmt.Errorf("accepted socket %d: its client is not known", st.Ino)
		}
		ut.accepted[i].client = ut.dumped[u.Peer]
		sockOpts, queued, _, err := self.socketState(ft, a, u, true)
		if err != nil {
			return fmt.Errorf("connection from socket %d: %w", u.Peer, err)
		}
		e := &skunix.UnixSkEntry{
			Ino: proto.Uint32(u.Ino), Type: proto.Uint32(uint32(u.Type)), State: proto.Uint32(stateEstablished),
			Flags: proto.Uint32(unix.O_RDWR), Uflags: proto.Uint32(0), Backlog: proto.Uint32(0), Peer: proto.Uint32(u.Peer),
			Fown: noOwner(), Name: d.entry.GetName(), Opts: sockOpts,
		}
		image.SetBacklogOf(e, d.entry.GetIno())
		e.Id = proto.Uint32(ft.add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Usk: e}))
		ut.dumped[u.Ino] = &unixDumped{pid: self.pid, fd: a, diag: u, entry: e, queued: queued}
		ut.order = append(ut.order, u.Ino)
	}
	return nil
}

// putBackBacklogs makes the connections cryo accepted again, in backlog
// order, for a tree that runs on: in each client's process a new socket
// connects to the listener's name (so the new server end's SO_PEERCRED
// names it again), gets what the client had sent, with the descriptors in
// flight, and takes the client's place at every descriptor that held it.
// The client's inode is new; everything the program can see of the
// connection is as it was.
func (d *dumper) putBackBacklogs() error {
	ut := &d.files.unix
	defer func() { ut.accepted = nil }()
	// One that cannot be put back does not keep the others from it.
	var errs []error
	for _, c := range ut.accepted {
		if err := d.putBack(c); err != nil {
			errs = append(errs, fmt.Errorf("process %d fd %d: put back its connection to listener %d: %w", c.client.pid, c.client.fd, c.listener.entry.GetIno(), err))
		}
	}
	return errors.Join(errs...)
}

func (d *dumper) putBack(c acceptedConn) error {
	target := fmt.Sprintf("socket:[%d]", c.client.entry.GetIno())
	holders, err := d.holdersOf(target)
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		return fmt.Errorf("%s is held by no process any more", target)
	}
	p := holders[0].p
	t := p.leader()
	if p.scratch.addr == 0 {
		if err := p.scratch.mapIn(p); err != nil {
			return err
		}
		defer p.scratch.unmap()
	}
	s, err := t.Syscall(unix.SYS_SOCKET, unix.AF_UNIX, uint64(c.client.entry.GetType())|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer t.Syscall(unix.SYS_CLOSE, s)
	sa := sockdiag.Sockaddr(c.listener.entry.GetName())
	if err := ptrace.WriteMem(p.pid, p.scratch.addr, sa); err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_CONNECT, s, p.scratch.addr, uint64(len(sa))); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := resend(c.server, p.pid, int(s)); err != nil {
		return err
	}
	for i, h := range holders {
		ht := h.p.leader()
		fd := s
		if i > 0 {
			// Another process shares the client: it gets the same new
			// socket, through a pidfd of the first.
			pid, err := p.pidSeenBy(h.p)
			if err != nil {
				return err
			}
			pidfd, err := ht.Syscall(unix.SYS_PIDFD_OPEN, uint64(pid), 0)
			if err != nil {
				return fmt.Errorf("process %d: pidfd_open: %w", h.p.pid, err)
			}
			fd, err = ht.Syscall(unix.SYS_PIDFD_GETFD, pidfd, s, 0)
			ht.Syscall(unix.SYS_CLOSE, pidfd)
			if err != nil {
				return fmt.Errorf("process %d: pidfd_getfd: %w", h.p.pid, err)
			}
		}
		err := replaceFd(ht, fd, uint64(h.fd))
		if i > 0 {
			ht.Syscall(unix.SYS_CLOSE, fd)
		}
		if err != nil {
			return fmt.Errorf("process %d fd %d: %w", h.p.pid, h.fd, err)
		}
	}
	return nil
}

// replaceFd puts the open file at fd in place of descriptor target, with
// target's file status flags and close-on-exec.
func replaceFd(t *ptrace.Tracee, fd, target uint64) error {
	fl, err := t.Syscall(unix.SYS_FCNTL, target, unix.F_GETFL)
	if err != nil {
		return err
	}
	fdFlags, err := t.Syscall(unix.SYS_FCNTL, target, unix.F_GETFD)
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, fl); err != nil {
		return err
	}
	var cloexec uint64
	if fdFlags&unix.FD_CLOEXEC != 0 {
		cloexec = unix.O_CLOEXEC
	}
	_, err = t.Syscall(unix.SYS_DUP3, fd, target, cloexec)
	return err
}

// resend sends what waits in server (cryo's accepted end) again through a
// copy of descriptor fd of process pid, the new client.
func resend(server, pid, fd int) error {
	s, err := proc.CopyFd(pid, fd)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	typ, err := unix.GetsockoptInt(server, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return err
	}
	q := queuePeeker{s: server, stream: typ == unix.SOCK_STREAM}
	msgs, err := q.peekAll()
	defer func() {
		for _, m := range msgs {
			closeAll(m.rights)
		}
	}()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := sockdiag.SendWhole(s, m.data, m.rights, m.cred, nil); err != nil {
			return fmt.Errorf("send %d bytes again: %w", len(m.data), err)
		}
	}
	return nil
}

// fdHolder is a descriptor of a process of the tree.
type fdHolder struct {
	p  *process
	fd int
}

// holdersOf lists every descriptor of the tree whose target is target.
func (d *dumper) holdersOf(target string) ([]fdHolder, error) {
	var out []fdHolder
	for _, p := range d.procs {
		if p.zombie || len(p.threads) == 0 {
			continue
		}
		fds, err := proc.Fds(p.pid)
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", p.pid, err)
		}
		for _, fd := range fds {
			if t, err := proc.FdTarget(p.pid, fd); err == nil && t == target {
				out = append(out, fdHolder{p, fd})
			}
		}
	}
	return out, nil
}
