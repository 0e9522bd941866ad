package restore

import (
	"encoding/binary"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"

	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"golang.org/x/sys/unix"
)

// setUnixOpts gives the Unix socket at fd (in p) the SOL_SOCKET options
// the dump saved beyond buffers, timeouts and SO_PASSCRED (see the dump's
// unixSockOpts): only those set in the image, each refused in one line
// naming it when the kernel says no (SO_MARK and SO_PRIORITY above 6 take
// CAP_NET_ADMIN).
func (p *process) setUnixOpts(fd uint64, o *skopts.SkOptsEntry) error {
	type opt struct {
		name  string
		opt   int
		value *uint32
	}
	b := func(v *bool) *uint32 {
		if v == nil || !*v {
			return nil
		}
		one := uint32(1)
		return &one
	}
	for _, x := range []opt{
		{"SO_PASSSEC", unix.SO_PASSSEC, b(o.SoPasssec)},
		{"SO_DONTROUTE", unix.SO_DONTROUTE, b(o.SoDontroute)},
		{"SO_KEEPALIVE", unix.SO_KEEPALIVE, b(o.SoKeepalive)},
		{"SO_BROADCAST", unix.SO_BROADCAST, b(o.SoBroadcast)},
		{"SO_PRIORITY", unix.SO_PRIORITY, o.SoPriority},
		{"SO_MARK", unix.SO_MARK, o.SoMark},
		{"SO_RCVLOWAT", unix.SO_RCVLOWAT, o.SoRcvlowat},
		{"SO_BUF_LOCK", unix.SO_BUF_LOCK, o.SoBufLock},
	} {
		if x.value == nil {
			continue
		}
		if err := fdkind.SetSockopt(p.calls(), fd, unix.SOL_SOCKET, x.opt, binary.LittleEndian.AppendUint32(nil, *x.value)); err != nil {
			return fdkind.OptionError(x.name, *x.value, err)
		}
	}
	if o.SoLinger != nil {
		// struct linger: int l_onoff, int l_linger.
		l := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), o.GetSoLinger())
		if err := fdkind.SetSockopt(p.calls(), fd, unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
			return fdkind.OptionError("SO_LINGER", fmt.Sprintf("on, %ds", o.GetSoLinger()), err)
		}
	}
	return nil
}
