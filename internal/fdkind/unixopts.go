package fdkind

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// DumpUnixOpts reads the options of Unix socket s (cryo's copy): its
// buffer sizes, SO_PASSCRED, its timeouts and unixSockOpts's.
func DumpUnixOpts(s int) (*skopts.SkOptsEntry, error) {
	get := func(opt int) uint32 {
		v, _ := unix.GetsockoptInt(s, unix.SOL_SOCKET, opt)
		return uint32(v)
	}
	opts := &skopts.SkOptsEntry{
		SoSndbuf: proto.Uint32(get(unix.SO_SNDBUF)), SoRcvbuf: proto.Uint32(get(unix.SO_RCVBUF)),
		SoPasscred: proto.Bool(get(unix.SO_PASSCRED) != 0),
	}
	if err := SocketTimeouts(s, opts); err != nil {
		return nil, err
	}
	if err := unixSockOpts(s, opts); err != nil {
		return nil, err
	}
	return opts, nil
}

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

// sockProcess is a process holding a socket whose options are set, named
// in errors.
type sockProcess interface {
	SockCaller
	// Process names the process in errors: "restore pid P".
	Process() string
}

// UnixSettings gives Unix socket f, made at fd in the process, its file
// flags and saved options: buffer sizes (the kernel doubles what is set,
// and reports the doubled value), timeouts, SO_PASSCRED and setUnixOpts's.
func UnixSettings(m sockProcess, fd uint64, f *fdinfo.FileEntry) error {
	u := f.GetUsk()
	where := fmt.Sprintf("%s Unix socket %d", m.Process(), u.GetIno())
	if _, err := m.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(u.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("%s: flags: %w", where, err)
	}
	opts := u.GetOpts()
	set := func(opt, v uint64) {
		if addr, err := m.Put(binary.LittleEndian.AppendUint32(nil, uint32(v))); err == nil {
			m.Syscall(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, opt, addr, 4)
		}
	}
	if err := SetSockBuffers(m, fd, opts); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := SetSockTimeouts(m, fd, opts); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if opts.GetSoPasscred() {
		set(unix.SO_PASSCRED, 1)
	}
	if err := setUnixOpts(m, fd, opts); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// setUnixOpts gives the Unix socket at fd (in p) the SOL_SOCKET options
// the dump saved beyond buffers, timeouts and SO_PASSCRED (see the dump's
// unixSockOpts): only those set in the image, each refused in one line
// naming it when the kernel says no (SO_MARK and SO_PRIORITY above 6 take
// CAP_NET_ADMIN).
func setUnixOpts(p SockCaller, fd uint64, o *skopts.SkOptsEntry) error {
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
		if err := SetSockopt(p, fd, unix.SOL_SOCKET, x.opt, binary.LittleEndian.AppendUint32(nil, *x.value)); err != nil {
			return OptionError(x.name, *x.value, err)
		}
	}
	if o.SoLinger != nil {
		// struct linger: int l_onoff, int l_linger.
		l := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), o.GetSoLinger())
		if err := SetSockopt(p, fd, unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
			return OptionError("SO_LINGER", fmt.Sprintf("on, %ds", o.GetSoLinger()), err)
		}
	}
	return nil
}
