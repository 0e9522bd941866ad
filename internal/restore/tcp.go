package restore

import (
	"encoding/binary"
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/tcprepair"
	"golang.org/x/sys/unix"
)

// rebuildTCP gives the socket at fd in p the connection saved in its
// tcp-stream image, working on a copy of it in repair mode.
func (fp *filePlan) rebuildTCP(p *process, fd uint64, id uint32) error {
	e := fp.snap.files[id].GetIsk()
	stream, inq, outq, err := fp.dir.ReadTCPStream(e.GetIno())
	if err != nil {
		return err
	}
	local, err := inetAddr(e.GetFamily(), e.GetSrcAddr(), e.GetSrcPort())
	if err != nil {
		return err
	}
	remote, err := inetAddr(e.GetFamily(), e.GetDstAddr(), e.GetDstPort())
	if err != nil {
		return err
	}
	s, err := proc.CopyFd(p.leader.Tid, int(fd))
	if err != nil {
		return err
	}
	defer unix.Close(s)
	// Repair mode lasts until the whole tree is back (fp.repair).
	fp.tcpRestored++
	repairing, err := fp.repair.Add(s)
	if err != nil {
		return err
	}
	return tcprepair.Rebuild(repairing, stream, inq, outq, local, remote)
}

// inetAddr is the address an image keeps as 32-bit words in network order.
func inetAddr(family uint32, words []uint32, port uint32) (unix.Sockaddr, error) {
	var b []byte
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	switch {
	case family == unix.AF_INET && len(b) == 4:
		a := &unix.SockaddrInet4{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	case family == unix.AF_INET6 && len(b) == 16:
		a := &unix.SockaddrInet6{Port: int(port)}
		copy(a.Addr[:], b)
		return a, nil
	}
	return nil, fmt.Errorf("address of %d bytes for family %d", len(b), family)
}
