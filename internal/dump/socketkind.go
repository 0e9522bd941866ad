package dump

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/proc"
	"google.golang.org/protobuf/proto"
)

// dumpSocketKind describes a socket of a family internal/fdkind handles
// (netlink), from s, cryo's copy of it, which stays the caller's to close.
// Descriptors sharing it were found before (dumpUnix's sameFile).
func (p *process) dumpSocketKind(ft *fileTable, fd int, target string, ino uint32, s int, k fdkind.FamilySocket, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	fe, err := k.DumpSocket(dumpedSocket{dumped: dumped{p: p, fd: fd, target: target, info: info}, s: s, ino: ino, nets: ft.nets}, ft.nextID())
	if err != nil {
		return nil, err
	}
	id := ft.add(fe)
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: k.Type().Enum(), Fd: proto.Uint32(uint32(fd))}, nil
}

// dumpedSocket is one socket of a seized process, as a socket kind sees
// it.
type dumpedSocket struct {
	dumped
	s    int
	ino  uint32
	nets *nsTable
}

// Socket is cryo's copy of the socket.
func (d dumpedSocket) Socket() int { return d.s }

// Ino is the socket's inode number.
func (d dumpedSocket) Ino() uint32 { return d.ino }

// NetNs is the id of the tree's net namespace the socket is in.
func (d dumpedSocket) NetNs() (uint32, error) { return d.nets.socketNs(d.s) }

// The interface dump offers the socket kinds.
var _ fdkind.SocketDumped = dumpedSocket{}
