package dump

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	"github.com/cryo-cr/cryo/internal/proc"
	"google.golang.org/protobuf/proto"
)

// addTimeNs records p's time namespace, once, with its clock offsets.
// /proc/PID/timens_offsets shows the namespace p's children get, so a
// process whose children would get another one than its own (it called
// unshare(CLONE_NEWTIME) and has not forked since) is refused.
func (t *nsTable) addTimeNs(p *process) error {
	ino, ok := p.ns["time"]
	if !ok {
		return nil
	}
	children, err := proc.NsInode(p.pid, "time_for_children")
	if err != nil {
		return fmt.Errorf("process %d: time namespace of its children: %w", p.pid, err)
	}
	if children != ino {
		return fmt.Errorf("process %d: its children would get time namespace %d, not its own %d: a pending time namespace is not supported", p.pid, children, ino)
	}
	if ino == t.own["time"] {
		return nil
	}
	if _, ok := t.times[ino]; ok {
		return nil // owned by its first process's user namespace, checked then
	}
	if err := ownedByOwnUserns(p, "time", ino); err != nil {
		return err
	}
	b, err := proc.ReadFile(fmt.Sprintf("/proc/%d/timens_offsets", p.pid))
	if err != nil {
		return fmt.Errorf("process %d: time namespace offsets: %w", p.pid, err)
	}
	e, err := parseTimensOffsets(string(b))
	if err != nil {
		return fmt.Errorf("process %d: /proc/%d/timens_offsets: %w", p.pid, p.pid, err)
	}
	t.times[ino] = e
	return nil
}

// parseTimensOffsets reads "monotonic SECS NSECS" and "boottime SECS
// NSECS" lines. Negative seconds are stored as their two's complement, as
// CRIU stores them in timespec's unsigned tv_sec.
func parseTimensOffsets(text string) (*timens.TimensEntry, error) {
	e := &timens.TimensEntry{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %q", line)
		}
		sec, err1 := strconv.ParseInt(f[1], 10, 64)
		nsec, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || nsec >= 1e9 {
			return nil, fmt.Errorf("line %q", line)
		}
		ts := &timens.Timespec{TvSec: proto.Uint64(uint64(sec)), TvNsec: proto.Uint64(nsec)}
		switch f[0] {
		case "monotonic", "1":
			e.Monotonic = ts
		case "boottime", "7":
			e.Boottime = ts
		}
	}
	if e.Monotonic == nil || e.Boottime == nil {
		return nil, fmt.Errorf("no monotonic and boottime offsets in %q", text)
	}
	return e, nil
}
