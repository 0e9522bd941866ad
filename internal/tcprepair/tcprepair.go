// Package tcprepair saves and rebuilds an established TCP connection with
// the kernel's TCP repair mode: in repair mode a socket's sequence numbers,
// queues, options and window can be read and set, it connects without a
// handshake and closes without telling the peer. Everything here works on
// a descriptor cryo holds (a pidfd_getfd copy of the tracee's socket).
package tcprepair

import (
	"encoding/binary"
	"fmt"

	tcpstream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TCP_INFO's tcpi_options bits.
const (
	optTimestamps = 1
	optSack       = 2
	optWscale     = 4
)

// TCP_REPAIR_QUEUE's values (linux/tcp.h).
const (
	recvQueue = 1
	sendQueue = 2
)

// On puts the socket in repair mode: from now on closing it sends nothing.
func On(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); err != nil {
		return fmt.Errorf("TCP repair mode: %w", err)
	}
	return nil
}

// Off leaves repair mode; the connection goes on (a window probe tells the
// peer where it stands).
func Off(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF); err != nil {
		return fmt.Errorf("leave TCP repair mode: %w", err)
	}
	return nil
}

// Save reads the state of a socket in repair mode: the entry of CRIU's
// tcp-stream image, the bytes received but not read, and the bytes written
// but not acknowledged.
func Save(fd int) (*tcpstream.TcpStreamEntry, []byte, []byte, error) {
	e := &tcpstream.TcpStreamEntry{}
	inq, inSeq, err := queue(fd, recvQueue, unix.SIOCINQ)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receive queue: %w", err)
	}
	outq, outSeq, err := queue(fd, sendQueue, unix.SIOCOUTQ)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("send queue: %w", err)
	}
	e.InqLen, e.InqSeq = proto.Uint32(uint32(len(inq))), proto.Uint32(inSeq)
	e.OutqLen, e.OutqSeq = proto.Uint32(uint32(len(outq))), proto.Uint32(outSeq)
	// Bytes written but never sent (Nagle, cork) are sent again after
	// restore like the rest of the queue; CRIU records their count.
	unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("unsent bytes: %w", err)
	}
	e.UnsqLen = proto.Uint32(uint32(unsent))

	info, err := sockopt.GetBytes(fd, unix.SOL_TCP, unix.TCP_INFO, 8)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TCP_INFO: %w", err)
	}
	e.OptMask = proto.Uint32(uint32(info[5]))
	e.SndWscale = proto.Uint32(uint32(info[6] & 0xf))
	e.RcvWscale = proto.Uint32(uint32(info[6] >> 4))
	mss, err := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_MAXSEG)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TCP_MAXSEG: %w", err)
	}
	e.MssClamp = proto.Uint32(uint32(mss))
	if info[5]&optTimestamps != 0 {
		ts, err := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_TIMESTAMP)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("TCP_TIMESTAMP: %w", err)
		}
		e.Timestamp = proto.Uint32(uint32(ts))
	}
	nodelay, _ := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_NODELAY)
	cork, _ := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_CORK)
	e.Nodelay, e.Cork = proto.Bool(nodelay != 0), proto.Bool(cork != 0)

	w, err := sockopt.GetBytes(fd, unix.SOL_TCP, unix.TCP_REPAIR_WINDOW, 20)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TCP_REPAIR_WINDOW: %w", err)
	}
	if len(w) != 20 {
		return nil, nil, nil, fmt.Errorf("TCP_REPAIR_WINDOW: %d bytes", len(w))
	}
	word := func(i int) *uint32 { return proto.Uint32(binary.LittleEndian.Uint32(w[4*i:])) }
	e.SndWl1, e.SndWnd, e.MaxWindow, e.RcvWnd, e.RcvWup = word(0), word(1), word(2), word(3), word(4)
	return e, inq, outq, nil
}

// queue reads one queue's sequence number and bytes without taking them.
func queue(fd, which int, sizeReq uint) ([]byte, uint32, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, which); err != nil {
		return nil, 0, err
	}
	defer unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, 0)
	seq, err := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_QUEUE_SEQ)
	if err != nil {
		return nil, 0, fmt.Errorf("sequence number: %w", err)
	}
	size, err := unix.IoctlGetInt(fd, sizeReq)
	if err != nil {
		return nil, 0, fmt.Errorf("length: %w", err)
	}
	if size == 0 {
		return nil, uint32(seq), nil
	}
	b := make([]byte, size)
	n, _, err := unix.Recvfrom(fd, b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil {
		return nil, 0, fmt.Errorf("peek %d bytes: %w", size, err)
	}
	if n != size {
		return nil, 0, fmt.Errorf("peeked %d of %d bytes", n, size)
	}
	return b, uint32(seq), nil
}

// Rebuild gives a new socket in repair mode the saved connection: sequence
// numbers, local and remote address (connect does no handshake in repair
// mode), options, window and both queues. The socket stays in repair mode
// until Off, which must wait until the peer, if restored too, exists.
func Rebuild(fd int, e *tcpstream.TcpStreamEntry, inq, outq []byte, local, remote unix.Sockaddr) error {
	setSeq := func(which int, seq uint32) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, which); err != nil {
			return err
		}
		return unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_QUEUE_SEQ, int(int32(seq)))
	}
	// Queued bytes are written again below, which moves the numbers on to
	// the saved ones.
	if err := setSeq(sendQueue, e.GetOutqSeq()-e.GetOutqLen()); err != nil {
		return fmt.Errorf("send sequence number: %w", err)
	}
	if err := setSeq(recvQueue, e.GetInqSeq()-e.GetInqLen()); err != nil {
		return fmt.Errorf("receive sequence number: %w", err)
	}
	if err := unix.Bind(fd, local); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Connect(fd, remote); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var opts []byte
	add := func(code, val uint32) {
		opts = binary.LittleEndian.AppendUint32(opts, code)
		opts = binary.LittleEndian.AppendUint32(opts, val)
	}
	add(unix.TCPOPT_MAXSEG, e.GetMssClamp())
	if e.GetOptMask()&optWscale != 0 {
		add(unix.TCPOPT_WINDOW, e.GetSndWscale()|e.GetRcvWscale()<<16)
	}
	if e.GetOptMask()&optSack != 0 {
		add(unix.TCPOPT_SACK_PERMITTED, 0)
	}
	if e.GetOptMask()&optTimestamps != 0 {
		add(unix.TCPOPT_TIMESTAMP, 0)
	}
	if err := sockopt.SetBytes(fd, unix.SOL_TCP, unix.TCP_REPAIR_OPTIONS, opts); err != nil {
		return fmt.Errorf("TCP options: %w", err)
	}
	if e.GetOptMask()&optTimestamps != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_TIMESTAMP, int(int32(e.GetTimestamp()))); err != nil {
			return fmt.Errorf("TCP_TIMESTAMP: %w", err)
		}
	}
	if err := fill(fd, recvQueue, inq); err != nil {
		return fmt.Errorf("receive queue: %w", err)
	}
	if err := fill(fd, sendQueue, outq); err != nil {
		return fmt.Errorf("send queue: %w", err)
	}
	// The window is checked against the receive sequence number, which
	// the receive queue's bytes have moved on to the saved one.
	if e.SndWl1 != nil {
		var w []byte
		for _, v := range []uint32{e.GetSndWl1(), e.GetSndWnd(), e.GetMaxWindow(), e.GetRcvWnd(), e.GetRcvWup()} {
			w = binary.LittleEndian.AppendUint32(w, v)
		}
		if err := sockopt.SetBytes(fd, unix.SOL_TCP, unix.TCP_REPAIR_WINDOW, w); err != nil {
			return fmt.Errorf("TCP_REPAIR_WINDOW: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, 0); err != nil {
		return err
	}
	for _, o := range []struct {
		opt int
		on  bool
	}{{unix.TCP_NODELAY, e.GetNodelay()}, {unix.TCP_CORK, e.GetCork()}} {
		if o.on {
			if err := unix.SetsockoptInt(fd, unix.SOL_TCP, o.opt, 1); err != nil {
				return fmt.Errorf("option %d: %w", o.opt, err)
			}
		}
	}
	return nil
}

// fill writes bytes into a queue of a socket in repair mode: nothing is
// sent, the bytes land in the queue as if received or not yet acknowledged.
func fill(fd, which int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, which); err != nil {
		return err
	}
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT)
		if err != nil {
			return fmt.Errorf("%d bytes left: %w", len(b), err)
		}
		b = b[n:]
	}
	return nil
}

// Set holds cryo's copies of sockets it put in repair mode, to take them
// out together: after a dump that leaves the tree running, or once a
// restored tree is whole (leaving repair mode sends a window probe, which
// a peer not there yet would answer with a reset).
//
// Repair mode forces SO_REUSEADDR on, and leaving it turns SO_REUSEADDR
// off whatever it was: the Set keeps each socket's value from before and
// gives it back.
type Set struct {
	fds       []int
	reuseAddr []int
}

// Add takes a copy of the socket s (closing it is the Set's job) and puts
// the socket in repair mode.
func (rs *Set) Add(s int) (int, error) {
	fd, err := unix.Dup(s)
	if err != nil {
		return -1, fmt.Errorf("copy of the socket: %w", err)
	}
	reuse, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR)
	if err == nil {
		err = On(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	rs.fds = append(rs.fds, fd)
	rs.reuseAddr = append(rs.reuseAddr, reuse)
	return fd, nil
}

// Resume takes every socket out of repair mode: the connections go on.
func (rs *Set) Resume() error {
	var first error
	for i, fd := range rs.fds {
		err := Off(fd)
		if err == nil && rs.reuseAddr[i] != 0 {
			if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, rs.reuseAddr[i]); err != nil {
				err = fmt.Errorf("SO_REUSEADDR after repair mode: %w", err)
			}
		}
		if err != nil && first == nil {
			first = err
		}
		unix.Close(fd)
	}
	rs.fds, rs.reuseAddr = nil, nil
	return first
}

// Drop lets go of the copies, leaving the sockets in repair mode: they die
// with their processes without a word to their peers. Idempotent.
func (rs *Set) Drop() {
	for _, fd := range rs.fds {
		unix.Close(fd)
	}
	rs.fds, rs.reuseAddr = nil, nil
}
