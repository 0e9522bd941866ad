package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// dumpInet describes a TCP or UDP socket, IPv4 or IPv6, from a copy of it
// (pidfd_getfd): listening and bound sockets, connected UDP ones, and with
// --tcp-established, established TCP connections (TCP repair). The kind
// reads it (fdkind.DumpInet); the tree keeps the connections it saved.
func (p *process) dumpInet(ft *fileTable, fd int, target string, ino uint32, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("%s (%s)", p.fdName(fd), target)
	s, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer unix.Close(s)
	// A socket of a family a kind of its own handles (netlink).
	if family, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
		if k := fdkind.FamilySocketOf(family); k != nil {
			return p.dumpSocketKind(ft, fd, target, ino, s, k, info)
		}
	}
	fe, err := fdkind.DumpInet(inetDumped{p: p, ft: ft, where: where}, s, ino, info.Flags, ft.nextID())
	if err != nil {
		return nil, err
	}
	id := ft.add(fe)
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_INETSK.Enum(), Fd: proto.Uint32(uint32(fd))}, nil
}

// inetDumped is one inet socket of the tree, as the inet kind sees it.
type inetDumped struct {
	p     *process
	ft    *fileTable
	where string
}

// Where names the descriptor.
func (d inetDumped) Where() string { return d.where }

// SkipInFlight is --skip-in-flight.
func (d inetDumped) SkipInFlight() bool { return d.p.opts.SkipInFlight }

// TCPEstablished is --tcp-established.
func (d inetDumped) TCPEstablished() bool { return d.p.opts.TCPEstablished }

// TCPClose is --tcp-close.
func (d inetDumped) TCPClose() bool { return d.p.opts.TCPClose }

// NetNs finds the socket's net namespace among the tree's.
func (d inetDumped) NetNs(s int) (uint32, error) { return d.ft.nets.socketNs(s) }

// Repair keeps s in repair mode until the tree is gone.
func (d inetDumped) Repair(s int) error {
	_, err := d.ft.repair.Add(s)
	return err
}

// SaveTCP saves the connection of s.
func (d inetDumped) SaveTCP(s int, ino uint32, conn netlock.Conn, netNs uint32) error {
	if err := d.ft.saveTCP(s, ino, conn); err != nil {
		return err
	}
	d.ft.tcp[len(d.ft.tcp)-1].netNs = netNs
	return nil
}
