package dump

import (
	"fmt"

	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// unixSockOpts reads the SOL_SOCKET options of a Unix socket that CRIU's
// sk_opts_entry holds beyond buffers, timeouts and SO_PASSCRED (read with
// them): a receiver's SO_PASSSEC (it gets SCM_SECURITY), SO_PRIORITY,
// SO_MARK, SO_RCVLOWAT, SO_LINGER, SO_BUF_LOCK and the flags the kernel
// keeps for any socket (SO_DONTROUTE, SO_KEEPALIVE, SO_BROADCAST). Fields
// at their default stay unset, so restore touches only what changed.
func unixSockOpts(s int, o *skopts.SkOptsEntry) error {
	for _, b := range []struct {
		opt   int
		field **bool
	}{
		{unix.SO_PASSSEC, &o.SoPasssec}, {unix.SO_DONTROUTE, &o.SoDontroute},
		{unix.SO_KEEPALIVE, &o.SoKeepalive}, {unix.SO_BROADCAST, &o.SoBroadcast},
	} {
		v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, b.opt)
		if err != nil {
			return fmt.Errorf("option %d: %w", b.opt, err)
		}
		if v != 0 {
			*b.field = proto.Bool(true)
		}
	}
	for _, n := range []struct {
		opt   int
		def   int
		field **uint32
	}{
		{unix.SO_PRIORITY, 0, &o.SoPriority}, {unix.SO_MARK, 0, &o.SoMark},
		{unix.SO_RCVLOWAT, 1, &o.SoRcvlowat}, {unix.SO_BUF_LOCK, 0, &o.SoBufLock},
	} {
		v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, n.opt)
		if err != nil {
			return fmt.Errorf("option %d: %w", n.opt, err)
		}
		if v != n.def {
			*n.field = proto.Uint32(uint32(v))
		}
	}
	l, err := unix.GetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER)
	if err != nil {
		return fmt.Errorf("SO_LINGER: %w", err)
	}
	if l.Onoff != 0 {
		o.SoLinger = proto.Uint32(uint32(l.Linger))
	}
	return nil
}
