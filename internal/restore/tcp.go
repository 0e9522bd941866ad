package restore

import (
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/tcprepair"
	"golang.org/x/sys/unix"
)

// rebuildTCP gives the socket at fd in p the connection of socket ino
// saved in its tcp-stream image, working on a copy of it in repair mode.
func (fp *filePlan) rebuildTCP(p *process, fd uint64, ino uint32, local, remote unix.Sockaddr) error {
	stream, inq, outq, err := fp.dir.ReadTCPStream(ino)
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
