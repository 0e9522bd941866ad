package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timerfd"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Timerfd is a timerfd: its clock, interval, time left and unread
// expirations.
type Timerfd struct{}

// Prepare makes the kernel count the expirations (it does so lazily): an
// injected timerfd_gettime updates what fdinfo shows, its ticks and its
// next expiry.
func (Timerfd) Prepare(in Injector, fd int) error {
	if _, err := in.Syscall(unix.SYS_TIMERFD_GETTIME, uint64(fd), in.Scratch()); err != nil {
		return fmt.Errorf("timerfd_gettime: %w", err)
	}
	return nil
}

// Type is TIMERFD.
func (Timerfd) Type() fdinfo.FdTypes { return fdinfo.FdTypes_TIMERFD }

// Target is how /proc/PID/fd names a timerfd.
func (Timerfd) Target() string { return "anon_inode:[timerfd]" }

// Check refuses an entry without its payload.
func (Timerfd) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetTfd() != nil) }

// Dump reads the timer from fdinfo.
func (Timerfd) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	clock, err := number(d, "clockid", 10)
	if err != nil {
		return nil, err
	}
	ticks, err := number(d, "ticks", 10)
	if err != nil {
		return nil, err
	}
	setFlags, err := number(d, "settime flags", 8)
	if err != nil {
		return nil, err
	}
	vs, vns, err := pair(d.Info().Extra["it_value"])
	if err != nil {
		return nil, fmt.Errorf("%s: it_value: %w", d.Where(), err)
	}
	is, ins, err := pair(d.Info().Extra["it_interval"])
	if err != nil {
		return nil, fmt.Errorf("%s: it_interval: %w", d.Where(), err)
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_TIMERFD.Enum(), Tfd: &timerfd.TimerfdEntry{
		Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner(), Clockid: proto.Uint32(uint32(clock)),
		Ticks: proto.Uint64(ticks), SettimeFlags: proto.Uint32(uint32(setFlags)),
		Vsec: proto.Uint64(vs), Vnsec: proto.Uint64(vns), Isec: proto.Uint64(is), Insec: proto.Uint64(ins)}}, nil
}

// Create makes the timerfd, arms it and gives it its unread expirations.
func (Timerfd) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetTfd()
	fd, err := m.Syscall(unix.SYS_TIMERFD_CREATE, uint64(e.GetClockid()), uint64(e.GetFlags()&unix.O_NONBLOCK)|unix.O_CLOEXEC)
	if err == nil && (e.GetVsec() != 0 || e.GetVnsec() != 0 || e.GetIsec() != 0 || e.GetInsec() != 0) {
		err = armTimerfd(m, fd, e.GetClockid(), e.GetSettimeFlags(), e.GetVsec(), e.GetVnsec(), e.GetIsec(), e.GetInsec())
	}
	if err == nil && e.GetTicks() > 0 {
		const tfdIocSetTicks = 0x40085400
		var addr uint64
		if addr, err = m.Put(putU64(nil, e.GetTicks())); err == nil {
			_, err = m.Syscall(unix.SYS_IOCTL, fd, tfdIocSetTicks, addr)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}

// armTimerfd arms a recreated timerfd with the time that was left. An
// absolute timer (TFD_TIMER_ABSTIME) is armed at now+left on its clock, so
// that it stays absolute; a periodic timer with no time left fires after
// one interval.
func armTimerfd(m Maker, fd uint64, clock, flags uint32, vsec, vnsec, isec, insec uint64) error {
	if vsec == 0 && vnsec == 0 {
		vsec, vnsec = isec, insec
	}
	const tfdTimerAbstime = 1
	if flags&tfdTimerAbstime != 0 {
		var now unix.Timespec
		if err := unix.ClockGettime(int32(clock), &now); err != nil {
			return fmt.Errorf("clock %d: %w", clock, err)
		}
		ns := uint64(now.Nsec) + vnsec
		vsec, vnsec = uint64(now.Sec)+vsec+ns/1e9, ns%1e9
	}
	addr, err := m.Put(putU64(nil, isec, insec, vsec, vnsec))
	if err != nil {
		return err
	}
	_, err = m.Syscall(unix.SYS_TIMERFD_SETTIME, fd, uint64(flags&tfdTimerAbstime), addr, 0)
	return err
}
