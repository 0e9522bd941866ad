package swrk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// maxPacket bounds one request. runc sends at most 40 KiB.
const maxPacket = 1 << 20

// conn is the caller's end of a SOCK_SEQPACKET socket: one protobuf
// message per packet, no framing of its own.
type conn struct {
	fd int
	// peer is the caller's pid (SO_PEERCRED): the descriptors an
	// option names (images_dir_fd, work_dir_fd, status_fd) are its.
	peer int
}

// newConn checks that fd is a SOCK_SEQPACKET Unix socket and reads its
// peer.
func newConn(fd int) (*conn, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: not a socket: %w", fd, err)
	}
	if typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("descriptor %d: socket type %d, CRIU's RPC needs SOCK_SEQPACKET", fd, typ)
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: peer credentials: %w", fd, err)
	}
	// The caller may have handed the socket over non-blocking; every
	// exchange here waits for its answer.
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil && flags&unix.O_NONBLOCK != 0 {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return &conn{fd: fd, peer: int(cred.Pid)}, nil
}

// recv reads one request; io.EOF when the caller closed its end. The
// packet's size is peeked first and the packet read into a buffer of that
// size.
func (c *conn) recv() (*rpc.CriuReq, error) {
	var one [1]byte
	for {
		n, _, _, _, err := unix.Recvmsg(c.fd, one[:], nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		if n == 0 {
			return nil, io.EOF
		}
		if n > maxPacket {
			return nil, fmt.Errorf("read request: %d bytes, more than %d", n, maxPacket)
		}
		buf := make([]byte, n)
		if n, _, _, _, err = unix.Recvmsg(c.fd, buf, nil, 0); err == unix.EINTR {
			continue // the packet is still there: peeked, not taken
		}
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		req := &rpc.CriuReq{}
		if err := proto.Unmarshal(buf[:n], req); err != nil {
			return nil, fmt.Errorf("decode request: %w", err)
		}
		return req, nil
	}
}

// send writes one response, with descriptors (SCM_RIGHTS) if any.
func (c *conn) send(resp *rpc.CriuResp, fds ...int) error {
	b, err := proto.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode %s response: %w", resp.GetType(), err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		// MSG_NOSIGNAL: a caller that went away is an error, not SIGPIPE.
		err = unix.Sendmsg(c.fd, b, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send %s response: %w", resp.GetType(), err)
	}
	return nil
}

// gone reports whether the caller closed its end, without waiting.
func (c *conn) gone() bool {
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	if err != nil || n == 0 {
		return false
	}
	if fds[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR) != 0 {
		return true
	}
	return false
}

// peerFile opens descriptor n of the caller, as CRIU does, through
// /proc/PEER/fd/N: runc keeps the images and work directories open in its
// own process and passes their numbers there.
func (c *conn) peerFile(what string, n int32, flags int) (*os.File, error) {
	path := fmt.Sprintf("/proc/%d/fd/%d", c.peer, n)
	f, err := os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s %d: the caller (pid %d) has no such descriptor", what, n, c.peer)
		}
		return nil, fmt.Errorf("%s %d of the caller (pid %d): %w", what, n, c.peer, err)
	}
	return f, nil
}

// dirPath returns a path naming the directory open as f, for the dump and
// restore code, which works with paths: the path the descriptor was opened
// at if it still names the same directory, else /proc/CRYO/fd/N (reachable
// from cryo's helper processes too, while f stays open).
func dirPath(f *os.File) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", fmt.Errorf("%s: not a directory", f.Name())
	}
	if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd())); err == nil {
		var pst unix.Stat_t
		if unix.Stat(p, &pst) == nil && pst.Dev == st.Dev && pst.Ino == st.Ino {
			return p, nil
		}
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
}
