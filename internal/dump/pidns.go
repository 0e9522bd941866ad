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
