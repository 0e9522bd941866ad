package fdkind

import (
	"encoding/binary"
	"errors"
	"fmt"

	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"github.com/cryo-cr/cryo/internal/sockopt"
	"golang.org/x/sys/unix"
)

// setInetOptions gives the new inet socket at fd in p the options saved in
// e, before it is bound. An option is set only where the new socket's value
// differs from the saved one: a user restoring without privileges then
// fails only on a privileged option (SO_PRIORITY above 6, SO_MARK,
// a device binding on a socket already bound to one) that really was
// changed, in one line naming it.
func setInetOptions(p SockCaller, fd uint64, e *skinet.InetSkEntry) error {
	opts := e.GetOpts() // checked when the images were read (checkInet)
	// MPTCP sockets take only some options (EOPNOTSUPP for the others):
	// one they refuse could not have been changed on the dumped socket
	// either, so the new socket has it as it was.
	mptcp := e.GetProto() == unix.IPPROTO_MPTCP
	unsupported := func(err error) bool { return mptcp && errors.Is(err, unix.EOPNOTSUPP) }
	if dev := opts.GetSoBoundDev(); dev != "" {
		if err := SetSockopt(p, fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, append([]byte(dev), 0)); err != nil {
			return OptionError("SO_BINDTODEVICE", dev, err)
		}
	}
	for _, o := range sockopt.Ints(int(e.GetFamily()), int(e.GetType())) {
		want, ok := o.Load(e)
		if !ok {
			continue
		}
		if have, err := getsockoptInt(p, fd, o.Level, o.Opt); err == nil && have == want {
			continue
		}
		if err := SetSockopt(p, fd, o.Level, o.Opt, binary.LittleEndian.AppendUint32(nil, want)); err != nil && !unsupported(err) {
			return OptionError(o.Name, want, err)
		}
	}
	if err := SetSockTimeouts(p, fd, opts); err != nil {
		return err
	}
	if opts.SoLinger != nil {
		// Present only when lingering was on (as CRIU writes it).
		l := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), opts.GetSoLinger())
		if err := SetSockopt(p, fd, unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
			return OptionError("SO_LINGER", opts.GetSoLinger(), err)
		}
	}
	if mptcp && opts.GetSoBufLock() == 0 {
		// Sizes the kernel tunes: setting them would lock them, and an
		// MPTCP socket cannot be unlocked (SO_BUF_LOCK is refused).
		return nil
	}
	if err := SetSockBuffers(p, fd, opts); err != nil {
		return err
	}
	// Setting the sizes locked them; the saved lock says whether the
	// kernel may tune them again (TCP autotuning), as before the dump.
	if opts.SoBufLock != nil {
		want := opts.GetSoBufLock()
		if have, err := getsockoptInt(p, fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK); err != nil || have != want {
			if err := SetSockopt(p, fd, unix.SOL_SOCKET, unix.SO_BUF_LOCK, binary.LittleEndian.AppendUint32(nil, want)); err != nil && !unsupported(err) {
				return OptionError("SO_BUF_LOCK", want, err)
			}
		}
	}
	return nil
}

// SetSockTimeouts gives the socket at fd in p (any family) its saved send
// and receive timeouts.
func SetSockTimeouts(p SockCaller, fd uint64, opts *skopts.SkOptsEntry) error {
	for _, t := range []struct {
		name      string
		opt       int
		sec, usec uint64
	}{
		{"SO_SNDTIMEO", unix.SO_SNDTIMEO, opts.GetSoSndTmoSec(), opts.GetSoSndTmoUsec()},
		{"SO_RCVTIMEO", unix.SO_RCVTIMEO, opts.GetSoRcvTmoSec(), opts.GetSoRcvTmoUsec()},
	} {
		if t.sec == 0 && t.usec == 0 {
			continue
		}
		// struct timeval on x86-64: two 64-bit words.
		tv := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, t.sec), t.usec)
		if err := SetSockopt(p, fd, unix.SOL_SOCKET, t.opt, tv); err != nil {
			return OptionError(t.name, fmt.Sprintf("%d.%06ds", t.sec, t.usec), err)
		}
	}
	return nil
}

// OptionError says which option could not be set to which value, and that
// it takes a privilege where the kernel refused one.
func OptionError(name string, value any, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("option %s = %v: %w (needs CAP_NET_ADMIN or CAP_NET_RAW, which the restoring user lacks)", name, value, err)
	}
	return fmt.Errorf("option %s = %v: %w", name, value, err)
}

// SockCaller is what setting a socket's options needs of the process that
// holds it: injected calls, its scratch area, and reading its memory.
type SockCaller interface {
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	Put(b []byte) (uint64, error)
	Read(addr uint64, b []byte) error
}

// SetSockopt sets an option of the socket at fd in p to the bytes val.
func SetSockopt(p SockCaller, fd uint64, level, opt int, val []byte) error {
	addr, err := p.Put(val)
	if err != nil {
		return err
	}
	_, err = p.Syscall(unix.SYS_SETSOCKOPT, fd, uint64(level), uint64(opt), addr, uint64(len(val)))
	return err
}

// getsockoptInt reads an int option of the socket at fd in p.
func getsockoptInt(p SockCaller, fd uint64, level, opt int) (uint32, error) {
	// The value, then its length.
	addr, err := p.Put(binary.LittleEndian.AppendUint32(make([]byte, 4), 4))
	if err != nil {
		return 0, err
	}
	if _, err := p.Syscall(unix.SYS_GETSOCKOPT, fd, uint64(level), uint64(opt), addr, addr+4); err != nil {
		return 0, err
	}
	b := make([]byte, 4)
	if err := p.Read(addr, b); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// SetSockBuffers gives the socket at fd its saved buffer sizes. The kernel
// doubles what is set and reports the doubled value, so half is set; the
// FORCE options (root) pass over net.core.[rw]mem_max, as the sizes may
// have been set by a process that could, or grown by TCP autotuning.
func SetSockBuffers(p SockCaller, fd uint64, opts *skopts.SkOptsEntry) error {
	for _, b := range []struct {
		name         string
		force, plain uint64
		size         uint32
	}{
		{"SO_SNDBUF", unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, opts.GetSoSndbuf()},
		{"SO_RCVBUF", unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, opts.GetSoRcvbuf()},
	} {
		if b.size == 0 {
			continue
		}
		addr, err := p.Put(binary.LittleEndian.AppendUint32(nil, b.size/2))
		if err != nil {
			return err
		}
		_, err = p.Syscall(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, b.force, addr, 4)
		if errors.Is(err, unix.EPERM) {
			_, err = p.Syscall(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, b.plain, addr, 4)
		}
		if err != nil {
			return fmt.Errorf("%s %d: %w", b.name, b.size, err)
		}
	}
	return nil
}
