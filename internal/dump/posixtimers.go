package dump

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/timer"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// sigev_notify values.
const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThread   = 2
	sigevThreadID = 4
)

// posixTimers reads the process's POSIX timers: ids, clocks and
// notification from /proc/PID/timers, times and overruns by injected
// timer_gettime and timer_getoverrun.
func (p *process) posixTimers() ([]*timer.PosixTimerEntry, error) {
	b, err := proc.ReadFile(fmt.Sprintf("/proc/%d/timers", p.pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: timers: %w", p.pid, err)
	}
	var out []*timer.PosixTimerEntry
	var cur *timer.PosixTimerEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "ID":
			id, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("process %d: timers: %q", p.pid, sc.Text())
			}
			cur = &timer.PosixTimerEntry{ItId: proto.Uint32(uint32(id))}
			out = append(out, cur)
		case "signal":
			// "signo/0xvalue"
			sig, v, _ := strings.Cut(val, "/")
			n, _ := strconv.ParseUint(sig, 10, 32)
			ptr, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			if cur != nil {
				cur.SiSigno, cur.SivalPtr = proto.Uint32(uint32(n)), proto.Uint64(ptr)
			}
		case "notify":
			// "HOW/pid.N" or "HOW/tid.N": HOW is signal, none or thread,
			// and tid marks SIGEV_THREAD_ID (a signal to that thread).
			how, who, _ := strings.Cut(val, "/")
			notify := uint32(sigevSignal)
			switch how {
			case "none":
				notify = sigevNone
			case "thread":
				notify = sigevThread
			}
			if strings.HasPrefix(who, "tid.") {
				notify |= sigevThreadID
			}
			if cur != nil {
				cur.ItSigevNotify = proto.Uint32(notify)
				if notify&sigevThreadID != 0 {
					_, tid, _ := strings.Cut(who, ".")
					n, _ := strconv.Atoi(tid)
					cur.NotifyThreadId = proto.Int32(int32(n))
				}
			}
		case "ClockID":
			n, _ := strconv.ParseUint(val, 10, 32)
			if cur != nil {
				cur.ClockId = proto.Uint32(uint32(n))
			}
		}
	}
	s := &p.scratch
	for _, e := range out {
		if _, err := p.leader().Syscall(unix.SYS_TIMER_GETTIME, uint64(e.GetItId()), s.addr+scratchStack); err != nil {
			return nil, fmt.Errorf("process %d: timer %d: timer_gettime: %w", p.pid, e.GetItId(), err)
		}
		v, err := s.read(scratchStack, 32)
		if err != nil {
			return nil, err
		}
		le := binary.LittleEndian
		e.Isec, e.Insec = proto.Uint64(le.Uint64(v[0:])), proto.Uint64(le.Uint64(v[8:]))
		e.Vsec, e.Vnsec = proto.Uint64(le.Uint64(v[16:])), proto.Uint64(le.Uint64(v[24:]))
		over, err := p.leader().Syscall(unix.SYS_TIMER_GETOVERRUN, uint64(e.GetItId()))
		if err != nil {
			return nil, fmt.Errorf("process %d: timer %d: timer_getoverrun: %w", p.pid, e.GetItId(), err)
		}
		e.Overrun = proto.Uint32(uint32(over))
		if e.SiSigno == nil || e.ClockId == nil || e.ItSigevNotify == nil || e.SivalPtr == nil {
			return nil, fmt.Errorf("process %d: timer %d: /proc/%d/timers is incomplete", p.pid, e.GetItId(), p.pid)
		}
	}
	return out, nil
}
