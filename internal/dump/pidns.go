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

// checkPidNsParent refuses p, in pid namespace ino, when its parent is
// in another pid namespace and p is not the init of its own: restore makes
// a pid namespace only with its init (a clone with CLONE_NEWPID by the
// parent), so a process its parent put in an existing pid namespace
// (setns to pid_for_children, then fork) could not be made again. A pid
// namespace made below the tree's root, as sandboxes make them (bubblewrap,
// Chromium: clone with CLONE_NEWUSER|CLONE_NEWPID by a process of the
// tree), is recorded like the root's; innerPids refuses it if it lies more
// than one level below cryo's.
func (t *nsTable) checkPidNsParent(p *process, ino uint64) error {
	if t.pidNsOf == nil {
		t.pidNsOf = map[int]uint64{}
	}
	t.pidNsOf[p.pid] = ino
	parent, ok := t.pidNsOf[p.ppid]
	if t.added == 1 || !ok || parent == ino || p.nsPid == 1 {
		return nil
	}
	return fmt.Errorf("process %d is pid %d of pid namespace %d, but its parent %d is in another one: only the init of a pid namespace may have its parent outside (nothing else could be made again there)", p.pid, p.nsPid, ino, p.ppid)
}
