package image

import (
	"fmt"

	tcpstream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
)

// TCPStreamName is CRIU's image of an established TCP connection's state.
func TCPStreamName(ino uint32) string { return fmt.Sprintf("tcp-stream-%x.img", ino) }

// WriteTCPStream writes the entry, then the receive queue's bytes, then
// the send queue's (CRIU's layout).
func (d *Dir) WriteTCPStream(ino uint32, e *tcpstream.TcpStreamEntry, inq, outq []byte) error {
	name := TCPStreamName(ino)
	path, err := d.file(name)
	if err != nil {
		return err
	}
	if e.GetInqLen() != uint32(len(inq)) || e.GetOutqLen() != uint32(len(outq)) {
		return formatErr(path, 0, "queue lengths %d/%d with %d/%d bytes", e.GetInqLen(), e.GetOutqLen(), len(inq), len(outq))
	}
	b, err := appendEntry(header("TCP_STREAM"), path, 0, e)
	if err != nil {
		return err
	}
	b = append(append(b, inq...), outq...)
	return d.writeFile(name, path, b)
}

// ReadTCPStream reads what WriteTCPStream wrote.
func (d *Dir) ReadTCPStream(ino uint32) (*tcpstream.TcpStreamEntry, []byte, []byte, error) {
	rd, f, err := d.open(TCPStreamName(ino), "TCP_STREAM")
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	e := &tcpstream.TcpStreamEntry{}
	if err := rd.first(e, "TCP stream"); err != nil {
		return nil, nil, nil, err
	}
	if e.GetInqLen() > 64<<20 || e.GetOutqLen() > 64<<20 {
		return nil, nil, nil, formatErr(rd.path, 0, "queues of %d and %d bytes", e.GetInqLen(), e.GetOutqLen())
	}
	inq, err := rd.raw(0, int(e.GetInqLen()))
	if err != nil {
		return nil, nil, nil, err
	}
	outq, err := rd.raw(0, int(e.GetOutqLen()))
	if err != nil {
		return nil, nil, nil, err
	}
	return e, inq, outq, nil
}
