package dump

import (
	"fmt"
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

// SkQueuesName is CRIU's image of the bytes queued in sockets.
const SkQueuesName = "sk-queues.img"

// TCP states as sock_diag reports them for Unix sockets.
const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

// unixTable holds the tree's Unix sockets and what the kernel says of the
// sockets of cryo's network namespace.
type unixTable struct {
	diag   map[uint32]*sockdiag.Unix
	dumped map[uint32]*unixDumped // by inode
	order  []uint32
	// external: peers outside the tree saved as external sockets.
	external map[uint32]bool
}

type unixDumped struct {
	pid, fd int
	entry   *skunix.UnixSkEntry
	queued  [][]byte // waiting to be read: a stream's bytes, or each message
}

// dumpUnix describes a Unix socket held at fd.
func (p *process) dumpUnix(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("process %d fd %d (%s)", p.pid, fd, target)
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
		if ut.diag, err = sockdiag.Unixes(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		ut.dumped = map[uint32]*unixDumped{}
	}
	u := ut.diag[ino]
	if u == nil {
		return p.dumpInet(ft, fd, target, ino, info)
	}
	if len(u.Icons) > 0 {
		return nil, fmt.Errorf("%s: listening socket with %d connections waiting to be accepted: not supported yet", where, len(u.Icons))
	}
	if u.State != stateListen && u.State != stateEstablished && u.Type != unix.SOCK_STREAM && u.RQueue > 0 {
		return nil, fmt.Errorf("%s: datagrams queued in an unconnected %s socket: not supported yet", where, sockType(u.Type))
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
	if u.Shutdown != 0 {
		e.Shutdown = skopts.SkShutdown(u.Shutdown).Enum()
	}
	// A bound path: its permissions come back with it.
	if u.HasName && len(u.Name) > 0 && u.Name[0] != 0 && u.State != stateEstablished {
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/root%s", p.pid, u.Name), &st); err == nil {
			e.FilePerms = &skunix.FilePermsEntry{Mode: proto.Uint32(st.Mode), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid)}
		}
	}
	d := &unixDumped{pid: p.pid, fd: fd, entry: e}
	opts, queued, cred, err := socketState(p.pid, fd, u.Type, u.State == stateEstablished)
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
// it (SO_PEEK_OFF walks through the queue): a stream's bytes in one piece,
// or each datagram or seqpacket message.
func socketState(pid, fd int, typ uint8, peek bool) (*skopts.SkOptsEntry, [][]byte, *unix.Ucred, error) {
	s, err := proc.CopyFd(pid, fd)
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
		SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0), SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0),
		SoPasscred: proto.Bool(get(unix.SO_PASSCRED) != 0),
	}
	cred, _ := unix.GetsockoptUcred(s, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if !peek {
		return opts, nil, cred, nil
	}
	if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
		return nil, nil, nil, fmt.Errorf("peek offset: %w", err)
	}
	defer unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
	var queued [][]byte
	stream := typ == unix.SOCK_STREAM
	// A message is bounded by the sender's buffer; a bigger one is refused.
	buf := make([]byte, 4<<20)
	oob := make([]byte, 256)
	for {
		n, oobn, flags, _, err := unix.Recvmsg(s, buf, oob, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("peek queued bytes: %w", err)
		}
		if oobn > 0 {
			return nil, nil, nil, fmt.Errorf("descriptors or credentials in flight: not supported yet")
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, nil, nil, fmt.Errorf("queued message of more than %d bytes: not supported", len(buf))
		}
		if n == 0 {
			if stream {
				break // the peer shut down writing: the end of the stream
			}
			return nil, nil, nil, fmt.Errorf("empty message queued: not supported yet")
		}
		msg := append([]byte(nil), buf[:n]...)
		if stream && len(queued) > 0 {
			queued[0] = append(queued[0], msg...)
		} else {
			queued = append(queued, msg)
		}
	}
	return opts, queued, cred, nil
}

// usk_extern: CRIU's flag for a socket outside the tree.
const uskExtern = 1

// check refuses a connected socket whose peer is not in the tree, unless
// external sockets are allowed (--ext-unix-sk) and the socket is a
// datagram one connected to a named peer: then the peer goes into the
// image as an external socket, and restore connects to its name again (a
// stream connection cannot be made again without the peer's consent).
func (ut *unixTable) check(ft *fileTable, external bool) error {
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
		if !external {
			return fmt.Errorf("%s: dump with --ext-unix-sk to reconnect it to that name on restore", where)
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
	return nil
}

// write saves what is queued in sockets to sk-queues.img: a stream's
// bytes as one entry, each message as its own.
func (ut *unixTable) write(dir *image.Dir) error {
	var entries []proto.Message
	var payloads [][]byte
	for _, ino := range ut.order {
		d := ut.dumped[ino]
		for _, msg := range d.queued {
			entries = append(entries, &skpacket.SkPacketEntry{IdFor: proto.Uint32(d.entry.GetId()), Length: proto.Uint32(uint32(len(msg)))})
			payloads = append(payloads, msg)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	return dir.WritePayloads(SkQueuesName, "SK_QUEUES", entries, payloads)
}
