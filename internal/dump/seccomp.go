package dump

import (
	"errors"
	"fmt"
	"strings"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/seccomp"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// suspendSeccomp runs right after the process is seized, before any call
// is injected into it: the calls cryo injects would otherwise pass
// through the filters of a thread under seccomp (and strict mode kills a
// thread at its first one). It sets PTRACE_O_SUSPEND_SECCOMP on each such
// thread; where the kernel refuses (cryo is not root, or is under seccomp
// itself), reading the filters is refused too, so the dump fails here,
// with the tree untouched.
func (p *process) suspendSeccomp() error {
	suspended := 0
	defer func() {
		if suspended > 0 {
			p.logf("process %d: seccomp suspended in %d of its threads while cryo works on them", p.pid, suspended)
		}
	}()
	for _, t := range p.threads {
		st, err := proc.ReadTaskStatus(p.pid, t.Tid)
		if err != nil {
			return fmt.Errorf("process %d: thread %d: status: %w", p.pid, t.Tid, err)
		}
		if st.Seccomp == unix.SECCOMP_MODE_DISABLED {
			continue
		}
		if err := t.SuspendSeccomp(false); err != nil {
			if errors.Is(err, ptrace.ErrNoSuspend) {
				return fmt.Errorf("process %d: thread %d is under seccomp (%s): cryo can neither read its filters nor inject calls past them: %w", p.pid, t.Tid, modeName(st.Seccomp), ptrace.ErrNoSuspend)
			}
			return fmt.Errorf("process %d: %w", p.pid, err)
		}
		suspended++
	}
	return nil
}

// modeName names a seccomp mode as /proc/PID/status numbers it.
func modeName(mode int) string {
	switch mode {
	case unix.SECCOMP_MODE_STRICT:
		return "strict mode"
	case unix.SECCOMP_MODE_FILTER:
		return "filter mode"
	}
	return fmt.Sprintf("mode %d", mode)
}

// collectSeccomp records each thread's seccomp state in its core: the
// mode, and for filter mode the newest filter of its chain in the
// tree's seccomp table.
func (p *process) collectSeccomp(table *seccomp.Table, cores []*core.CoreEntry) error {
	for i, t := range p.threads {
		tc := cores[i].GetThreadCore()
		switch mode := tc.GetSeccompMode(); mode {
		case core.SeccompMode_disabled, core.SeccompMode_strict:
		case core.SeccompMode_filter:
			chain, err := t.SeccompFilters()
			if err != nil {
				return fmt.Errorf("process %d: %w", p.pid, err)
			}
			if len(chain) == 0 {
				return fmt.Errorf("process %d: thread %d: in seccomp filter mode without a filter", p.pid, t.Tid)
			}
			last, err := table.Add(chain)
			if err != nil {
				return fmt.Errorf("process %d: thread %d: %w", p.pid, t.Tid, err)
			}
			tc.SeccompFilter = proto.Uint32(last)
			p.warnSeccompGap(t.Tid, chain)
		default:
			return fmt.Errorf("process %d: thread %d: seccomp mode %d is not supported", p.pid, t.Tid, mode)
		}
	}
	return nil
}

// warnSeccompGap logs what a cryo killed during this dump would cost the
// thread under its filters (evaluated with zero arguments): a filter that
// kills or traps one of the calls every dump injects kills the process if
// cryo dies while that call is set up or running; one that does not allow
// rt_sigreturn leaves the thread unable to get its state back from the
// guard's frame should cryo die at any point (see docs/seccomp.md).
func (p *process) warnSeccompGap(tid int, chain []seccomp.Filter) {
	arch, calls := injectedCalls()
	if len(calls) == 0 {
		return
	}
	var fatal []string
	for _, c := range calls {
		ret, err := seccomp.Action(chain, seccomp.Call{Nr: c.nr, Arch: arch})
		if err != nil {
			p.logf("process %d: thread %d: %v", p.pid, tid, err)
			return
		}
		if seccomp.Fatal(ret) {
			fatal = append(fatal, c.name)
		}
	}
	if len(fatal) > 0 {
		p.logf("process %d: thread %d: its seccomp filters kill at %s, which cryo injects: should cryo die while it injects one, the process dies of its filter", p.pid, tid, strings.Join(fatal, ", "))
	}
	ret, err := seccomp.Action(chain, seccomp.Call{Nr: sigreturnNr, Arch: arch})
	if err == nil && ret&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ALLOW && ret&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_LOG {
		p.logf("process %d: thread %d: its seccomp filters do not allow rt_sigreturn: should cryo die during the dump, the thread cannot get its state back", p.pid, tid)
	}
}

// writeSeccomp writes the tree's seccomp image, if a thread has filters.
func writeSeccomp(dir *image.Dir, table *seccomp.Table) error {
	if table.Empty() {
		return nil
	}
	return dir.Write(seccomp.ImageName, seccomp.Magic, table.Entry())
}
