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
	// Each connection is locked in the namespace it lives in: cryo's, one
	// of the tree's own (through its helper), or the tree's namespace
	// left out of the images (a container's, EmptyNetNS), whose lock goes
	// with the namespace when the tree is killed.
	var conns, inEmpty []netlock.Conn
	inNets := map[uint32][]netlock.Conn{}
	var emptyID uint32
	if d.ns.emptyNetIno != 0 {
		emptyID = d.ns.ids["net"][d.ns.emptyNetIno]
	}
	for _, t := range d.files.tcp {
		switch {
		case t.netNs != 0 && t.netNs == emptyID:
			inEmpty = append(inEmpty, t.conn)
		case t.netNs != 0:
			inNets[t.netNs] = append(inNets[t.netNs], t.conn)
		default:
			conns = append(conns, t.conn)
		}
	}
	if err := d.ns.lockNets(d.opts.Pid, inNets); err != nil {
		return err
	}
	if len(conns) > 0 {
		if err := netlock.Lock(d.opts.Pid, conns); err != nil {
			d.ns.unlockNets(d.opts.Pid, inNets)
			return err
		}
		d.logf("network locked for %d TCP connections (nftables table inet %s)", len(conns), netlock.TableName(d.opts.Pid))
	}
	if len(inEmpty) > 0 {
		// Last: a failure after it would leave the running tree's own
		// namespace locked.
		if err := netlock.LockInNetNS(d.opts.Pid, d.opts.Pid, inEmpty); err != nil {
			d.ns.unlockNets(d.opts.Pid, inNets)
			if len(conns) > 0 {
				netlock.Unlock(d.opts.Pid)
			}
			return err
		}
		d.logf("network locked for %d TCP connections in the tree's net namespace (nftables table inet %s)", len(inEmpty), netlock.TableName(d.opts.Pid))
	}
	return nil
}
