package dump

import (
	tcpstream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/tcprepair"
)

// tcpStream is an established connection saved with --tcp-established.
type tcpStream struct {
	ino       uint32
	conn      netlock.Conn
	entry     *tcpstream.TcpStreamEntry
	inq, outq []byte
	// netNs: the id of the tree's net namespace it lives in (0: cryo's).
	netNs uint32
}

// saveTCP puts the socket s (cryo's copy) in repair mode and reads its
// connection. The socket stays in repair mode while the tree is killed, so
// that closing it sends nothing to the peer; ft.repair takes it out when
// the tree runs on.
func (ft *fileTable) saveTCP(s int, ino uint32, conn netlock.Conn) error {
	fd, err := ft.repair.Add(s)
	if err != nil {
		return err
	}
	e, inq, outq, err := tcprepair.Save(fd)
	if err != nil {
		return err
	}
	ft.tcp = append(ft.tcp, tcpStream{ino: ino, conn: conn, entry: e, inq: inq, outq: outq})
	return nil
}

func (ft *fileTable) writeTCP(dir *image.Dir) error {
	for _, t := range ft.tcp {
		if err := dir.WriteTCPStream(t.ino, t.entry, t.inq, t.outq); err != nil {
			return err
		}
	}
	return nil
}

// lockNetwork drops the peers' packets of the saved connections until the
// restore has rebuilt them: the tree is about to be killed, and a packet
// finding no socket would reset its connection.
func (d *dumper) lockNetwork() error {
	if len(d.files.tcp) == 0 {
		return nil
	}
	var conns []netlock.Conn
	inNets := map[uint32][]netlock.Conn{}
	for _, t := range d.files.tcp {
		if t.netNs != 0 {
			inNets[t.netNs] = append(inNets[t.netNs], t.conn)
			continue
		}
		conns = append(conns, t.conn)
	}
	if err := d.ns.lockNets(d.opts.Pid, inNets); err != nil {
		return err
	}
	if len(conns) == 0 {
		return nil
	}
	if d.ns.emptyNetIno != 0 {
		// The connections are in the tree's own namespace, left out of
		// the images (a container's): locked there, and the lock goes
		// with the namespace when the tree is killed.
		if err := netlock.LockInNetNS(d.opts.Pid, d.opts.Pid, conns); err != nil {
			d.ns.unlockNets(d.opts.Pid, inNets)
			return err
		}
		d.logf("network locked for %d TCP connections in the tree's net namespace (nftables table inet %s)", len(conns), netlock.TableName(d.opts.Pid))
		return nil
	}
	if err := netlock.Lock(d.opts.Pid, conns); err != nil {
		d.ns.unlockNets(d.opts.Pid, inNets)
		return err
	}
	d.logf("network locked for %d TCP connections (nftables table inet %s)", len(conns), netlock.TableName(d.opts.Pid))
	return nil
}
