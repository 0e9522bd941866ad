package dump

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"os"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	skpacket "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TCP states as sock_diag reports them for Unix sockets.
const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

// unixTable holds the tree's Unix sockets and what the kernel says of the
// sockets of cryo's network namespace.
type unixTable struct {
	diag map[uint32]*sockdiag.Unix
	// nsOf: the id of the tree's net namespace a socket is in (none:
	// cryo's).
	nsOf   map[uint32]uint32
	dumped map[uint32]*unixDumped // by inode
	order  []uint32
	// external: peers outside the tree saved as external sockets.
	external map[uint32]bool
	// accepted: connections taken out of backlogs, in order.
	accepted []acceptedConn
	// outside: the tree's sockets connected to a peer outside that
	// --external named (see external.go).
	outside map[uint32]bool
}

type unixDumped struct {
	pid, fd int
	diag    *sockdiag.Unix
	entry   *skunix.UnixSkEntry
	queued  []queuedMsg // waiting to be read: a stream's bytes, or each message
}

// queuedMsg is one message waiting in a socket (or a run of a stream's
// bytes), with the descriptors in flight with it.
type queuedMsg struct {
	data []byte
	// fds are the files sent with it (SCM_RIGHTS): their ids in files.img.
	fds []uint32
	// from is the name recvfrom gives for its sender ("" for an unnamed
	// one), and sender that socket's file id once the tree is dumped.
	from   string
	sender uint32
	// cred: the sender's credentials, for a receiver with SO_PASSCRED.
	cred *unix.Ucred
}

// dumpUnix describes a Unix socket held at fd.
func (p *process) dumpUnix(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("%s (%s)", p.fdName(fd), target)
	if ft.emptyNet && p.netLeftOut {
		return p.dumpLeftOutSocket(ft, fd, target, info)
	}
	ino64, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: bad socket link", where)
	}
	ino := uint32(ino64)
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_UNIXSK.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		t := ft.entries[id-1].GetType()
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: t.Enum(), Fd: proto.Uint32(uint32(fd))}, nil
	}
	ut := &ft.unix
	if ut.diag == nil {
		if ut.diag, ut.nsOf, err = ft.nets.unixes(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		ut.dumped = map[uint32]*unixDumped{}
	}
	u := ut.diag[ino]
	if u == nil {
		return p.dumpInet(ft, fd, target, ino, info)
	}
	if u.State != stateListen && u.State != stateEstablished && u.Type != unix.SOCK_DGRAM && u.RQueue > 0 {
		return nil, fmt.Errorf("%s: bytes queued in a disconnected %s socket: not supported yet", where, sockType(u.Type))
	}
	name := u.Name
	if len(name) > 0 && name[0] != 0 {
		// A path: the kernel keeps its terminating NUL.
		name, _, _ = strings.Cut(name, "\x00")
		u.Name = name
	}
	e := &skunix.UnixSkEntry{
		Ino:     proto.Uint32(ino),
		Type:    proto.Uint32(uint32(u.Type)),
		State:   proto.Uint32(uint32(u.State)),
		Flags:   proto.Uint32(info.Flags &^ unix.O_CLOEXEC),
		Uflags:  proto.Uint32(0),
		Backlog: proto.Uint32(0),
		Peer:    proto.Uint32(u.Peer),
		Fown:    noOwner(),
		Name:    []byte(u.Name),
	}
	if u.State == stateListen {
		e.Backlog = proto.Uint32(u.WQueue)
	}
	if id := ut.nsOf[ino]; id != 0 {
		e.NsId = proto.Uint32(id)
	}
	if u.Shutdown != 0 {
		e.Shutdown = skopts.SkShutdown(u.Shutdown).Enum()
	}
	path := u.Name
	if u.HasName && len(u.Name) > 0 && u.Name[0] != 0 && u.Name[0] != '/' {
		// A relative name was bound in some directory, which restore
		// must bind in again: the process's working directory, if the
		// socket file there is this one (CRIU's name_dir).
		cwd, err := proc.Readlink(fmt.Sprintf("/proc/%d/cwd", p.pid))
		if err != nil {
			return nil, fmt.Errorf("%s: working directory: %w", p.fdName(fd), err)
		}
		st, err := proc.Lstat(fmt.Sprintf("/proc/%d/cwd/%s", p.pid, u.Name))
		if u.VfsIno != 0 && (err != nil || st.Ino != uint64(u.VfsIno)) {
			return nil, fmt.Errorf("%s: Unix socket bound to the relative name %q, which is not in the process's working directory %s: not supported yet", p.fdName(fd), u.Name, cwd)
		}
		e.NameDir = proto.String(cwd)
		path = cwd + "/" + u.Name
	}
	// A bound path: its permissions come back with it.
	if u.HasName && len(u.Name) > 0 && u.Name[0] != 0 && u.State != stateEstablished {
		if st, err := proc.FileStat(fmt.Sprintf("/proc/%d/root%s", p.pid, path)); err == nil {
			e.FilePerms = &skunix.FilePermsEntry{Mode: proto.Uint32(st.Mode), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid)}
		}
	}
	d := &unixDumped{pid: p.pid, fd: fd, diag: u, entry: e}
	// A datagram socket that is not connected can have messages queued
	// from any sender.
	peek := u.State == stateEstablished || (u.State != stateListen && u.RQueue > 0)
	opts, queued, cred, err := p.socketState(ft, fd, u, peek)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	e.Opts, d.queued = opts, queued
	if cred != nil && u.State == stateEstablished {
		image.SetPeerCred(e, image.PeerCred{Pid: uint32(cred.Pid), UID: cred.Uid, GID: cred.Gid})
	}
	id := ft.add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Usk: e})
	e.Id = proto.Uint32(id)
	ut.dumped[ino] = d
	ut.order = append(ut.order, ino)
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

func sockType(t uint8) string {
	switch t {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "datagram"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return "type " + strconv.Itoa(int(t))
}

// socketState takes a copy of the socket (pidfd_getfd) to read its buffer
// sizes and, if asked, what is queued for reading, peeked without taking
// it (SO_PEEK_OFF walks through the queue): a stream's bytes, or each
// datagram or seqpacket message, with the descriptors in flight with them.
func (p *process) socketState(ft *fileTable, fd int, u *sockdiag.Unix, peek bool) (*skopts.SkOptsEntry, []queuedMsg, *unix.Ucred, error) {
	s, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return nil, nil, nil, err
	}
	defer unix.Close(s)
	get := func(opt int) uint32 {
		v, _ := unix.GetsockoptInt(s, unix.SOL_SOCKET, opt)
		return uint32(v)
	}
	opts := &skopts.SkOptsEntry{
		SoSndbuf: proto.Uint32(get(unix.SO_SNDBUF)), SoRcvbuf: proto.Uint32(get(unix.SO_RCVBUF)),
		SoPasscred: proto.Bool(get(unix.SO_PASSCRED) != 0),
	}
	if err := fdkind.SocketTimeouts(s, opts); err != nil {
		return nil, nil, nil, err
	}
	if err := unixSockOpts(s, opts); err != nil {
		return nil, nil, nil, err
	}
	cred, _ := unix.GetsockoptUcred(s, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if !peek {
		return opts, nil, cred, nil
	}
	q := queuePeeker{s: s, stream: u.Type == unix.SOCK_STREAM, shutRd: u.Shutdown&1 != 0, bytes: u.RQueue}
	queued, err := q.peekAll()
	for _, m := range queued {
		ft.held = append(ft.held, m.rights...)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	msgs := make([]queuedMsg, len(queued))
	for i, m := range queued {
		msgs[i] = queuedMsg{data: m.data, from: m.from, cred: m.cred}
		if len(m.rights) > 0 && p.pid == os.Getpid() && ft.inFlight[fd] {
			return nil, nil, nil, fmt.Errorf("descriptors in flight inside a socket in flight: not supported")
		}
		for _, r := range m.rights {
			id, err := ft.describeInFlight(p.opts, r)
			if err != nil {
				return nil, nil, nil, err
			}
			msgs[i].fds = append(msgs[i].fds, id)
		}
	}
	return opts, msgs, cred, nil
}

// peekedMsg is a queued message as peeked: cryo's copies of the
// descriptors in flight with it are open until the dump ends.
type peekedMsg struct {
	data []byte
	control
	from string
}

// control is what a message carries besides its bytes.
type control struct {
	rights []int
	// cred is the sender's credentials (SCM_CREDENTIALS), which the
	// kernel gives only to a receiver with SO_PASSCRED; nil if none were
	// attached to the message.
	cred *unix.Ucred
}

// sameCred tells whether two runs of a stream carry the same credentials.
func (c control) sameCred(o control) bool {
	if c.cred == nil || o.cred == nil {
		return c.cred == o.cred
	}
	return *c.cred == *o.cred
}

// queuePeeker reads a socket's receive queue without taking anything.
type queuePeeker struct {
	s      int
	stream bool
	// shutRd: the socket is shut down for reading (by itself, or by its
	// peer's SHUT_WR), so that a peek of its empty queue reads 0 bytes
	// instead of failing with EAGAIN; bytes is what sock_diag counts in
	// its queue (for seqpacket, the sum of the messages' lengths).
	shutRd bool
	bytes  uint32
	buf    []byte
	oob    []byte
}

func (q *queuePeeker) peekAll() ([]peekedMsg, error) {
	// The peek offset belongs to the socket, which the tree shares: it is
	// put back as it was.
	was, err := unix.GetsockoptInt(q.s, unix.SOL_SOCKET, unix.SO_PEEK_OFF)
	if err != nil {
		return nil, fmt.Errorf("peek offset: %w", err)
	}
	if err := unix.SetsockoptInt(q.s, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
		return nil, fmt.Errorf("peek offset: %w", err)
	}
	defer unix.SetsockoptInt(q.s, unix.SOL_SOCKET, unix.SO_PEEK_OFF, was)
	// A message is bounded by the sender's buffer; a bigger one is
	// refused. SCM_RIGHTS carries at most 253 descriptors.
	q.buf, q.oob = make([]byte, 4<<20), make([]byte, unix.CmsgSpace(253*4)+unix.CmsgSpace(64))
	var out []peekedMsg
	for {
		n, ctl, from, err := q.peek()
		if err == unix.EAGAIN {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			if q.stream {
				return out, nil // the peer shut down writing: the end of the stream
			}
			if q.shutRd && q.endOfQueue(out) {
				// Shut down for reading and nothing left: the 0 is
				// the end of file, not an empty message.
				closeAll(ctl.rights)
				return out, nil
			}
			closeAll(ctl.rights)
			return out, fmt.Errorf("empty message queued: not supported yet")
		}
		data := append([]byte(nil), q.buf[:n]...)
		if q.stream && len(ctl.rights) > 0 && n > 1 {
			// A peek of a stream stops after the message that carried
			// descriptors, but glues the bytes before it to it, and no peek
			// tells where it starts (on 6.18 a peek of any byte before it
			// returns its descriptors). They come back with its last
			// byte: a reader gets them with the byte it got them with, or
			// with a later one, never with earlier bytes.
			out = appendStream(out, peekedMsg{data: data[:n-1], control: control{cred: ctl.cred}})
			data = data[n-1:]
		}
		if q.stream {
			out = appendStream(out, peekedMsg{data: data, control: ctl})
			continue
		}
		out = append(out, peekedMsg{data: data, control: ctl, from: from})
	}
}

// appendStream adds a run of a stream's bytes, joined to the previous run
// unless either carries descriptors or their credentials differ.
func appendStream(out []peekedMsg, m peekedMsg) []peekedMsg {
	if n := len(out); n > 0 && len(m.rights) == 0 && len(out[n-1].rights) == 0 && m.sameCred(out[n-1].control) {
		out[len(out)-1].data = append(out[len(out)-1].data, m.data...)
		return out
	}
	return append(out, m)
}

// peek peeks the next message (or a stream's bytes, up to the end of the
// next message with descriptors): its length, what it carries (cryo's
// copies of the descriptors in flight with it) and its sender's name.
func (q *queuePeeker) peek() (int, control, string, error) {
	got, oobn, flags, from, err := unix.Recvmsg(q.s, q.buf, q.oob, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil {
		if err == unix.EAGAIN {
			return 0, control{}, "", err
		}
		return 0, control{}, "", fmt.Errorf("peek queued bytes: %w", err)
	}
	ctl, err := parseControl(q.oob[:oobn])
	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = fmt.Errorf("more descriptors in flight than SCM_RIGHTS can carry")
	}
	if err == nil && flags&unix.MSG_TRUNC != 0 {
		err = fmt.Errorf("queued message of more than %d bytes: not supported", len(q.buf))
	}
	if err != nil {
		closeAll(ctl.rights)
		return 0, control{}, "", err
	}
	return got, ctl, sockaddrName(from), nil
}

// parseControl reads the control messages of a peeked message: the
// descriptors of SCM_RIGHTS and the credentials of SCM_CREDENTIALS; any
// other kind is refused.
func parseControl(oob []byte) (control, error) {
	var c control
	if len(oob) == 0 {
		return c, nil
	}
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return c, fmt.Errorf("control message: %w", err)
	}
	for i := range cms {
		h := cms[i].Header
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS:
			r, err := unix.ParseUnixRights(&cms[i])
			if err != nil {
				closeAll(c.rights)
				return control{}, fmt.Errorf("SCM_RIGHTS: %w", err)
			}
			c.rights = append(c.rights, r...)
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS:
			cred, err := unix.ParseUnixCredentials(&cms[i])
			if err != nil {
				closeAll(c.rights)
				return control{}, fmt.Errorf("SCM_CREDENTIALS: %w", err)
			}
			// pid 0: none were attached when it was sent (nobody asked
			// for them then).
			if cred.Pid != 0 {
				c.cred = cred
			}
		default:
			closeAll(c.rights)
			return control{}, fmt.Errorf("control message (level %d, type %d) on a queued message: not supported yet", h.Level, h.Type)
		}
	}
	return c, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// sockaddrName is a Unix socket name as sock_diag gives it: a path, or an
// abstract name with its leading NUL; "" for an unnamed socket.
func sockaddrName(sa unix.Sockaddr) string {
	su, ok := sa.(*unix.SockaddrUnix)
	if !ok || su.Name == "" {
		return ""
	}
	if su.Name[0] == '@' {
		return "\x00" + su.Name[1:]
	}
	return su.Name
}

// describeInFlight describes a file cryo received by peeking a queue (its
// copy of a descriptor in flight) like a descriptor of the tree: the same
// open file as a descriptor some process holds shares its entry. cryo
// keeps the copy open until the dump ends, so that later descriptors are
// compared with it (kcmp).
func (ft *fileTable) describeInFlight(opts Options, fd int) (uint32, error) {
	// Errors name the receiving socket (the caller says which), not
	// cryo's copy.
	self := &process{pid: os.Getpid(), opts: opts, alias: "descriptor in flight"}
	target, err := proc.FdTarget(self.pid, fd)
	if err != nil {
		return 0, fmt.Errorf("descriptor in flight: %w", err)
	}
	switch {
	case strings.HasPrefix(target, "pipe:["):
	case strings.HasPrefix(target, "socket:["):
		ino, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 32)
		if ft.unix.diag[uint32(ino)] == nil {
			return 0, fmt.Errorf("descriptor in flight: %s is not a Unix socket: not supported yet", target)
		}
	case strings.HasPrefix(target, "/"):
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return 0, fmt.Errorf("descriptor in flight: %s is not a regular file: not supported yet", target)
		}
	default:
		return 0, fmt.Errorf("descriptor in flight: %s: only regular files, pipes and Unix sockets are supported", target)
	}
	if ft.inFlight == nil {
		ft.inFlight = map[int]bool{}
	}
	ft.inFlight[fd] = true
	e, err := self.dumpFd(ft, fd)
	if err != nil {
		return 0, err
	}
	return e.GetId(), nil
}

// usk_extern: CRIU's flag for a socket outside the tree.
const uskExtern = 1

// check refuses a connected socket whose peer is not in the tree, unless
// external sockets are allowed (--ext-unix-sk) and the socket is a
// datagram one connected to a named peer: then the peer goes into the
// image as an external socket, and restore connects to its name again (a
// stream connection cannot be made again without the peer's consent).
func (ut *unixTable) check(ft *fileTable, opts Options, procs []*process) error {
	external := opts.ExtUnixSk
	if err := ut.checkBacklogs(ft, opts); err != nil {
		return err
	}
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		peer := d.entry.GetPeer()
		if peer == 0 || ut.dumped[peer] != nil {
			continue
		}
		pu := ut.diag[peer]
		name := ""
		if pu != nil && pu.HasName {
			name = " (" + strings.TrimPrefix(pu.Name, "\x00") + ")"
		}
		where := fmt.Sprintf("process %d fd %d: Unix socket %d is connected to socket %d%s outside the tree", d.pid, d.fd, ino, peer, name)
		if opts.ext.unixOutside(ino, peer) {
			if err := ut.outsidePeer(d, ino, where); err != nil {
				return err
			}
			continue
		}
		if !external {
			return fmt.Errorf("%s: dump with --ext-unix-sk to reconnect it to that name on restore, or with --external unix[%d] and restore with --inherit-fd fd[N]:socket:[%d]", where, ino, ino)
		}
		if d.entry.GetType() != unix.SOCK_DGRAM || pu == nil || !pu.HasName || len(pu.Name) == 0 {
			return fmt.Errorf("%s: only a datagram socket connected to a named peer can be external", where)
		}
		if len(d.queued) > 0 {
			return fmt.Errorf("%s: %d messages from the outside peer queued: only that peer could send them again", where, len(d.queued))
		}
		if ut.external == nil {
			ut.external = map[uint32]bool{}
		}
		if ut.external[peer] {
			continue
		}
		ut.external[peer] = true
		usk := &skunix.UnixSkEntry{
			Ino: proto.Uint32(peer), Type: proto.Uint32(uint32(pu.Type)), State: proto.Uint32(uint32(pu.State)),
			Flags: proto.Uint32(0), Uflags: proto.Uint32(uskExtern), Backlog: proto.Uint32(0), Peer: proto.Uint32(0),
			Fown: noOwner(), Name: []byte(pu.Name),
			Opts: &skopts.SkOptsEntry{SoSndbuf: proto.Uint32(0), SoRcvbuf: proto.Uint32(0),
				SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0), SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0)},
		}
		usk.Id = proto.Uint32(ft.add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Usk: usk}))
	}
	if err := ut.checkCreds(procs); err != nil {
		return err
	}
	return ut.resolveSenders()
}

// checkCreds refuses a queued message whose credentials name a process
// outside the tree: restore sends each message again with its
// credentials, and only the tree's processes exist then.
func (ut *unixTable) checkCreds(procs []*process) error {
	inTree := map[int]bool{}
	for _, p := range procs {
		inTree[p.pid] = true
	}
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		for _, m := range d.queued {
			if m.cred != nil && !inTree[int(m.cred.Pid)] {
				return fmt.Errorf("process %d fd %d: Unix socket %d has a message queued with the credentials of process %d, outside the tree: not supported", d.pid, d.fd, ino, m.cred.Pid)
			}
		}
	}
	return nil
}

// resolveSenders finds, for each datagram queued in a socket that is not
// connected both ways with its sender, the sending socket by the name
// recvfrom gives: restore sends the datagram from it again, so that the
// receiver sees the same source. A named sender outside the tree is
// refused: nothing could send from its name. An unnamed sender leaves no
// trace the receiver can see, and any unnamed socket stands for it.
func (ut *unixTable) resolveSenders() error {
	byName := map[string]*unixDumped{}
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		if name := string(d.entry.GetName()); name != "" && d.entry.GetType() == unix.SOCK_DGRAM {
			byName[name] = d
		}
	}
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		if peer := ut.dumped[d.entry.GetPeer()]; peer != nil && peer.entry.GetPeer() == ino {
			continue // a pair: the peer sent everything
		}
		if _, of, _ := image.Backlog(d.entry); of != 0 {
			continue // the server end of a connection waiting in a backlog
		}
		for i := range d.queued {
			m := &d.queued[i]
			if m.from == "" {
				continue
			}
			sender := byName[m.from]
			if sender == nil || sender.entry.GetType() != d.entry.GetType() {
				return fmt.Errorf("process %d fd %d: Unix socket %d has a datagram queued from %q, a socket outside the tree: not supported", d.pid, d.fd, ino, printableName(m.from))
			}
			m.sender = sender.entry.GetId()
		}
	}
	return nil
}

func printableName(name string) string { return strings.Replace(name, "\x00", "@", 1) }

// closeHeld closes cryo's copies of descriptors in flight and the server
// ends it accepted.
func (ft *fileTable) closeHeld() {
	closeAll(ft.held)
	ft.held = nil
}

// write saves what is queued in sockets to sk-queues.img: a stream's
// bytes as one entry, each message as its own.
func (ut *unixTable) write(dir *image.Dir) error {
	var entries []proto.Message
	var payloads [][]byte
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		for _, msg := range d.queued {
			e := &skpacket.SkPacketEntry{IdFor: proto.Uint32(d.entry.GetId()), Length: proto.Uint32(uint32(len(msg.data)))}
			if len(msg.fds) > 0 {
				e.Scm = []*skpacket.ScmEntry{{Type: proto.Uint32(unix.SCM_RIGHTS), Rights: msg.fds}}
			}
			if msg.sender != 0 {
				image.SetPacketSender(e, msg.sender)
			}
			if c := msg.cred; c != nil {
				image.SetPacketCred(e, image.PeerCred{Pid: uint32(c.Pid), UID: c.Uid, GID: c.Gid})
			}
			entries = append(entries, e)
			payloads = append(payloads, msg.data)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	return dir.WritePayloads(image.SkQueuesName, "SK_QUEUES", entries, payloads)
}

// endOfQueue tells, for a socket shut down for reading whose peek read 0
// bytes, whether the messages peeked so far are all its queue holds: a
// seqpacket socket's count of queued bytes is then theirs; a datagram
// socket's counts only the next message, so only a socket sock_diag saw
// empty is taken as ended. An empty message left in such a queue would
// look the same: it is dropped, where nothing after it is lost.
func (q *queuePeeker) endOfQueue(peeked []peekedMsg) bool {
	var sum uint32
	for _, m := range peeked {
		sum += uint32(len(m.data))
	}
	return q.bytes == sum || (len(peeked) == 0 && q.bytes == 0)
}
