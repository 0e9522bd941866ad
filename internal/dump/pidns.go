package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
)

// innerPids reads the ids a process and its threads have in their own pid
// namespace, one level below cryo's (NSpid's last field).
func (p *process) innerPids() error {
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return err
	}
	if len(st.NSpid) != 2 {
		return fmt.Errorf("process %d: pid namespaces nested %d deep: only one level below cryo's is supported", p.pid, len(st.NSpid)-1)
	}
	p.nsPid = uint32(st.NSpid[1])
	p.nsTids = map[int]uint32{}
	for _, t := range p.threads {
		ts, err := proc.ReadTaskStatus(p.pid, t.Tid)
		if err != nil {
			return err
		}
		if len(ts.NSpid) != 2 {
			return fmt.Errorf("process %d thread %d: NSpid %v", p.pid, t.Tid, ts.NSpid)
		}
		p.nsTids[t.Tid] = uint32(ts.NSpid[1])
	}
	return nil
}

// pidSeenBy is p's PID in the pid namespace of q, for a system call q is
// made to run that names p (pidfd_open).
func (p *process) pidSeenBy(q *process) (int, error) {
	switch {
	case q.nsPid == 0:
		// q is in cryo's pid namespace, where every process of the tree
		// has the PID cryo knows.
		return p.pid, nil
	case p.nsPid != 0 && p.ns["pid"] == q.ns["pid"]:
		return int(p.nsPid), nil
	}
	return 0, fmt.Errorf("process %d is not in the pid namespace of process %d", p.pid, q.pid)
}

// pidNsAtRoot refuses p's pid namespace ino, not cryo's and met for the
// first time, unless p is the tree's root: restore makes a pid namespace
// only with the tree's root, so one a sandbox made below it (bubblewrap's,
// Chromium's: clone with CLONE_NEWUSER|CLONE_NEWPID by a process of the
// tree) would be refused only after the dump had killed the tree.
func (t *nsTable) pidNsAtRoot(p *process, ino uint64) error {
	if t.added == 1 {
		return nil
	}
	return fmt.Errorf("process %d has a pid namespace of its own (%d) below the tree's root: nested pid namespaces, as sandboxes make them, are not supported yet", p.pid, ino)
}
