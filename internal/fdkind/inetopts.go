package fdkind

import (
	"encoding/binary"
	"fmt"

	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// inetOptions reads the options of the inet socket s (cryo's copy) into e,
// in CRIU's fields where CRIU has them. An option the kernel will not read
// for this socket is left out, and so left at its default on restore.
func inetOptions(s int, e *skinet.InetSkEntry) error {
	get := func(level, opt int) (uint32, error) {
		v, err := unix.GetsockoptInt(s, level, opt)
		return uint32(v), err
	}
	o := &skopts.SkOptsEntry{}
	e.Opts = o
	var err error
	for _, b := range []struct {
		opt   int
		field **uint32
	}{{unix.SO_SNDBUF, &o.SoSndbuf}, {unix.SO_RCVBUF, &o.SoRcvbuf}, {unix.SO_BUF_LOCK, &o.SoBufLock}} {
		v, gerr := get(unix.SOL_SOCKET, b.opt)
		if gerr == nil {
			*b.field = proto.Uint32(v)
		} else if b.opt != unix.SO_BUF_LOCK {
			err = gerr
		}
	}
	if err != nil {
		return fmt.Errorf("buffer sizes: %w", err)
	}
	if err := SocketTimeouts(s, o); err != nil {
		return err
	}
	// CRIU keeps the linger time only when lingering is on.
	if l, err := unix.GetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER); err == nil && l.Onoff != 0 {
		o.SoLinger = proto.Uint32(uint32(l.Linger))
	}
	if dev, err := unix.GetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err == nil && dev != "" {
		o.SoBoundDev = proto.String(dev)
	}
	family, typ := int(e.GetFamily()), int(e.GetType())
	for _, opt := range sockopt.Ints(family, typ) {
		if v, err := get(opt.Level, opt.Opt); err == nil {
			opt.Store(e, v)
		}
	}
	return nil
}

// SocketTimeouts reads the send and receive timeouts of socket s (any
// family) into o; sk_opts_entry requires them, zero is no timeout.
func SocketTimeouts(s int, o *skopts.SkOptsEntry) error {
	for _, t := range []struct {
		opt       int
		sec, usec **uint64
	}{{unix.SO_SNDTIMEO, &o.SoSndTmoSec, &o.SoSndTmoUsec}, {unix.SO_RCVTIMEO, &o.SoRcvTmoSec, &o.SoRcvTmoUsec}} {
		tv, err := unix.GetsockoptTimeval(s, unix.SOL_SOCKET, t.opt)
		if err != nil {
			return fmt.Errorf("timeouts: %w", err)
		}
		*t.sec, *t.usec = proto.Uint64(uint64(tv.Sec)), proto.Uint64(uint64(tv.Usec))
	}
	return nil
}

// udpQueued is how many bytes of datagrams wait in the receive queue of the
// UDP socket s, counted as the receive memory the socket holds: reading
// SO_MEMINFO takes nothing from the queue and leaves the peek offset
// alone, which a MSG_PEEK would move.
func udpQueued(s int) (uint32, error) {
	// SO_MEMINFO is an array of u32; SK_MEMINFO_RMEM_ALLOC is the first
	// (linux/sock_diag.h), and there are nine on this kernel.
	meminfo, err := sockopt.GetBytes(s, unix.SOL_SOCKET, unix.SO_MEMINFO, 9*4)
	if err != nil {
		return 0, fmt.Errorf("SO_MEMINFO: %w", err)
	}
	if len(meminfo) < 4 {
		return 0, fmt.Errorf("SO_MEMINFO: %d bytes", len(meminfo))
	}
	return binary.NativeEndian.Uint32(meminfo[:4]), nil
}
