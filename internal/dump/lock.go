package dump

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/runlock"
)

// dumpLocks keeps a second cryo from dumping a tree that is being dumped:
// each process is locked before it is seized, under a name made of its PID
// and start time (a PID alone could be a later process's). A second dump
// of the same process, or of a subtree (it also looks at the locks of the
// process's ancestors), is refused before it touches anything; the first
// one goes on unharmed. The locks die with their cryo, even when it is
// killed.
type dumpLocks struct {
	dir   string // "" when no lock directory could be made (logged)
	held  []*runlock.Lock
	owner int // the root of the tree this dump locks
}

// newDumpLocks finds the lock directory; without one, dumps go unlocked
// (ptrace still refuses a second tracer of a seized thread).
func newDumpLocks(root int, logf func(string, ...any)) *dumpLocks {
	dir, err := runlock.Dir()
	if err != nil {
		logf("warning: dumps are not locked: %v", err)
	}
	return &dumpLocks{dir: dir, owner: root}
}

// path is the lock file of process pid, or "" if it cannot be named.
func (l *dumpLocks) path(pid int) string {
	if l.dir == "" {
		return ""
	}
	st, err := proc.ReadStat(pid)
	if err != nil {
		return ""
	}
	return filepath.Join(l.dir, fmt.Sprintf("dump-%d-%d.lock", pid, st.StartTime))
}

// checkAncestors refuses a dump of a process some ancestor of which (up to
// the machine's init) is being dumped by another cryo.
func (l *dumpLocks) checkAncestors(pid int) error {
	if l.dir == "" {
		return nil
	}
	for a := pid; a > 1; {
		st, err := proc.ReadStat(a)
		if err != nil {
			return nil
		}
		if p := l.path(a); p != "" && runlock.Held(p) {
			if a == pid {
				return fmt.Errorf("process %d is being dumped by another cryo", pid)
			}
			return fmt.Errorf("process %d is in the tree of process %d, which another cryo is dumping", pid, a)
		}
		a = st.PPid
	}
	return nil
}

// lock locks process pid for this dump, before it is seized.
func (l *dumpLocks) lock(pid int) error {
	p := l.path(pid)
	if p == "" {
		return nil
	}
	lk, err := runlock.TryLock(p, true)
	if errors.Is(err, runlock.ErrBusy) {
		if pid == l.owner {
			return fmt.Errorf("process %d is being dumped by another cryo", pid)
		}
		return fmt.Errorf("process %d (in the tree of %d) is being dumped by another cryo", pid, l.owner)
	}
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	l.held = append(l.held, lk)
	return nil
}

// unlock releases every lock, once the dump let the tree go (or killed it).
func (l *dumpLocks) unlock() {
	for _, lk := range l.held {
		lk.Unlock()
	}
	l.held = nil
}
