package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
)

// exitedWhileSeized reports whether process p, found among its frozen
// parent's children, exited while it was being seized (a container's
// shell runs a short-lived child for every usleep): it is then a zombie
// its parent has not reaped, since the parent is frozen, and is dumped as
// one. The threads seized meanwhile, if any, are let go first.
func (p *process) exitedWhileSeized() bool {
	p.release()
	p.threads = nil
	st, err := proc.ReadStat(p.pid)
	if err != nil || st.State != 'Z' {
		return false
	}
	p.stat, p.zombie = st, true
	return true
}

// zombieNsPid reads the pid a zombie has in its own pid namespace, when
// that is not cryo's (a zombie in a container): restore makes it again
// with that pid there. A zombie has no threads but its leader.
func (p *process) zombieNsPid() error {
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return fmt.Errorf("zombie %d: %w", p.pid, err)
	}
	switch len(st.NSpid) {
	case 1:
	case 2:
		p.nsPid = uint32(st.NSpid[1])
	default:
		return fmt.Errorf("zombie %d: pid namespaces nested %d deep: only one level below cryo's is supported", p.pid, len(st.NSpid)-1)
	}
	return nil
}
