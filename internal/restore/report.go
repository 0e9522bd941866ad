package restore

import (
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
)

// report logs, for a restore that failed, what each process it made was
// doing: each thread's state and the last call cryo injected into it, so
// that a bug report carries them. It runs before abort kills them.
func (r *restorer) report() {
	line := func(what string, pid int, t *ptrace.Tracee) {
		state := "gone"
		if st, err := proc.ReadTaskStat(pid, t.Tid); err == nil {
			state = string(st.State)
		}
		last := t.LastCall()
		if last == "" {
			last = "none"
		}
		r.logf("  %s %d thread %d: state %s, last injected call: %s", what, pid, t.Tid, state, last)
	}
	if r.stub != nil {
		line("stub", r.stub.Pid, r.stub)
	}
	for _, p := range r.procs {
		if len(p.threads) == 0 && p.leader != nil {
			line("process", p.pid, p.leader)
		}
		for _, t := range p.threads {
			line("process", p.pid, t)
		}
		if p.leader == nil && len(p.threads) == 0 {
			r.logf("  process %d: not made yet, or already let go", p.pid)
		}
	}
}
