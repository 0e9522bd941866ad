package dump

import (
	tcpstream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/tcprepair"
)

// tcpStream is an established connection saved with --tcp-established.
type tcpStream struct {
	ino       uint32
	entry     *tcpstream.TcpStreamEntry
	inq, outq []byte
}

// saveTCP puts the socket s (cryo's copy) in repair mode and reads its
// connection. The socket stays in repair mode while the tree is killed, so
// that closing it sends nothing to the peer; ft.repair takes it out when
// the tree runs on.
func (ft *fileTable) saveTCP(s int, ino uint32) error {
	fd, err := ft.repair.Add(s)
	if err != nil {
		return err
	}
	e, inq, outq, err := tcprepair.Save(fd)
	if err != nil {
		return err
	}
	ft.tcp = append(ft.tcp, tcpStream{ino, e, inq, outq})
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
