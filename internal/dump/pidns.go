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
