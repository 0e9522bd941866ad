package dump

import (
	"context"
	"fmt"
	"strings"

	"github.com/cryo-cr/cryo/internal/proc"
)

// step marks one step of a dump: the fault-injection hook may stop cryo
// there, and a dump whose context was cancelled (cryo got SIGINT, SIGTERM,
// SIGHUP or SIGPIPE) stops at the first step after it and rolls back.
func (d *dumper) step(name string) error {
	d.opts.Fault.Point(name)
	if d.ctx.Err() != nil {
		return fmt.Errorf("%w by %v at step %q: tree left running as it was", ErrInterrupted, context.Cause(d.ctx), name)
	}
	return nil
}

// report logs, for a dump that failed with err, what each process of the
// tree was doing: each thread's state and the last call cryo injected into
// it, so that a bug report carries them.
func (d *dumper) report(err error) {
	d.logf("dump failed: %v", err)
	for _, p := range d.procs {
		switch {
		case p.zombie:
			d.logf("  process %d: zombie", p.pid)
			continue
		case p.helper:
			d.logf("  process %d: stands for a process group", p.pid)
			continue
		}
		if len(p.threads) == 0 {
			d.logf("  process %d: not seized", p.pid)
		}
		for _, t := range p.threads {
			state := "gone"
			if st, err := proc.ReadTaskStat(p.pid, t.Tid); err == nil {
				state = string(st.State)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "  process %d thread %d: state %s", p.pid, t.Tid, state)
			if r, err := t.Regs(); err == nil {
				b.WriteString(describeRegs(&r))
			}
			if t.Guarded() {
				b.WriteString(", injections guarded")
			}
			if c := t.LastCall(); c != "" {
				fmt.Fprintf(&b, ", last injected call: %s", c)
			} else {
				b.WriteString(", no call injected")
			}
			d.logf("%s", b.String())
		}
	}
}
