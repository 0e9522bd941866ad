package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	seccompimg "github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/seccomp"
	"golang.org/x/sys/unix"
)

// seccomp state comes back last in each thread, or first where cryo can
// suspend it. Once a thread is under its filters (or strict mode), every
// call cryo injects into it passes through them. As root, cryo sets
// PTRACE_O_SUSPEND_SECCOMP on the process's threads and installs the
// filters before anything else of the thread, while the stub still has
// the privilege to install filters without no_new_privs (as the process
// once did, or a parent for it); the injections that follow skip them.
// Without root, the filters go in after the credentials and the other
// kernel state, strict mode after the scratch memory is gone: the kernel
// then checks the install against the rights the process has, so an
// image can never make cryo install what the process itself could not.

// loadSeccomp reads the seccomp image, if the dump has one, checks it and
// checks every thread's reference into it.
func (s *snapshot) loadSeccomp(dir *image.Dir) error {
	var e seccompimg.SeccompEntry
	err := dir.ReadOne(seccomp.ImageName, seccomp.Magic, &e)
	switch {
	case err == nil:
		if err := seccomp.Check(&e); err != nil {
			return err
		}
		s.seccomp = &e
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for _, c := range s.procs {
		for i, ce := range c.cores {
			if c.zombie {
				break
			}
			tc := ce.GetThreadCore()
			switch tc.GetSeccompMode() {
			case core.SeccompMode_disabled, core.SeccompMode_strict:
			case core.SeccompMode_filter:
				if s.seccomp == nil {
					return fmt.Errorf("process %d: thread %d is in seccomp filter mode, but the dump has no %s", c.pid, i, seccomp.ImageName)
				}
				if tc.SeccompFilter == nil {
					return fmt.Errorf("process %d: thread %d is in seccomp filter mode without a filter", c.pid, i)
				}
				if _, err := seccomp.Chain(s.seccomp, tc.GetSeccompFilter()); err != nil {
					return fmt.Errorf("process %d: thread %d: %w", c.pid, i, err)
				}
			default:
				return fmt.Errorf("process %d: thread %d: seccomp mode %d is not supported", c.pid, i, tc.GetSeccompMode())
			}
		}
	}
	return nil
}

// seccompPlan is what a process's threads get back: a chain of filters
// (indexes into the image) or strict mode, per thread, and how many of
// the first filters all threads share.
type seccompPlan struct {
	chains [][]uint32
	strict []bool
	// shared is the length of the chain prefix common to every thread,
	// installed once with SECCOMP_FILTER_FLAG_TSYNC so that the threads
	// share those filters again (a later TSYNC of the program's needs it).
	shared int
	// done says the plan was carried out early, under suspension.
	done bool
}

// planSeccomp returns the plan of p, or nil if no thread is under seccomp.
func (p *process) planSeccomp() (*seccompPlan, error) {
	plan := &seccompPlan{chains: make([][]uint32, len(p.c.cores)), strict: make([]bool, len(p.c.cores))}
	some, allFilter := false, true
	for i, ce := range p.c.cores {
		tc := ce.GetThreadCore()
		switch tc.GetSeccompMode() {
		case core.SeccompMode_strict:
			plan.strict[i], some, allFilter = true, true, false
		case core.SeccompMode_filter:
			chain, err := seccomp.Chain(p.r.snap.seccomp, tc.GetSeccompFilter())
			if err != nil {
				return nil, fmt.Errorf("restore pid %d: %w", p.c.pid, err)
			}
			plan.chains[i], some = chain, true
		default:
			allFilter = false
		}
	}
	if !some {
		return nil, nil
	}
	if allFilter && len(plan.chains) > 1 {
		n := len(plan.chains[0])
		for _, c := range plan.chains[1:] {
			k := 0
			for k < n && k < len(c) && c[k] == plan.chains[0][k] {
				k++
			}
			n = k
		}
		plan.shared = n
	}
	return plan, nil
}

// seccompEarly carries out the plan right after the threads are made,
// if cryo can suspend seccomp in them (root): the threads' injections
// then skip the filters until cryo lets them go. Otherwise the plan is
// left to seccompFilters and seccompStrict, at the end.
func (p *process) seccompEarly(plan *seccompPlan) error {
	if plan == nil {
		return nil
	}
	for i, t := range p.threads {
		if err := t.SuspendSeccomp(true); err != nil {
			if i == 0 && errors.Is(err, ptrace.ErrNoSuspend) {
				p.r.logf("process %d: seccomp cannot be suspended (%v): its filters go in last", p.c.pid, err)
				return nil
			}
			return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
		}
	}
	if err := p.seccompFilters(plan); err != nil {
		return err
	}
	if err := p.seccompStrict(plan); err != nil {
		return err
	}
	plan.done = true
	return nil
}

// seccompFilters installs every thread's filters, oldest first: the
// shared prefix once from the leader with TSYNC, then each thread's own.
func (p *process) seccompFilters(plan *seccompPlan) error {
	if plan == nil || plan.done {
		return nil
	}
	for k := 0; k < plan.shared; k++ {
		if err := p.installFilter(p.threads[0], plan.chains[0][k], unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
			return err
		}
	}
	for i, chain := range plan.chains {
		for _, idx := range chain[min(plan.shared, len(chain)):] {
			if err := p.installFilter(p.threads[i], idx, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// seccompStrict puts the threads saved in strict mode in it. It needs no
// memory, so without suspension it comes after the scratch area is gone.
func (p *process) seccompStrict(plan *seccompPlan) error {
	if plan == nil || plan.done {
		return nil
	}
	for i, strict := range plan.strict {
		if !strict {
			continue
		}
		t := p.threads[i]
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_STRICT); err != nil {
			return fmt.Errorf("restore pid %d thread %d: seccomp strict mode: %w", p.c.pid, t.Tid, err)
		}
	}
	return nil
}

// installFilter installs filter idx of the image in thread t, with its
// own flags and extra ones.
func (p *process) installFilter(t *ptrace.Tracee, idx uint32, extra uint32) error {
	f := seccomp.Get(p.r.snap.seccomp, idx)
	// struct sock_fprog (an unsigned short, padding, a pointer), then the
	// program.
	const fprogLen = 16
	b := make([]byte, fprogLen, fprogLen+len(f.Prog))
	binary.LittleEndian.PutUint16(b[0:], uint16(f.Insns()))
	binary.LittleEndian.PutUint64(b[8:], p.scratch+fprogLen)
	b = append(b, f.Prog...)
	addr, err := p.put(b)
	if err != nil {
		return err
	}
	flags := uint64(f.Flags | extra)
	got, err := t.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, addr)
	if err != nil {
		if errors.Is(err, unix.EACCES) {
			return fmt.Errorf("restore pid %d thread %d: install seccomp filter %d: %w (the thread has neither no_new_privs nor CAP_SYS_ADMIN in its user namespace, and cryo cannot install it for it without root)", p.c.pid, t.Tid, idx, err)
		}
		return fmt.Errorf("restore pid %d thread %d: install seccomp filter %d (flags %#x): %w", p.c.pid, t.Tid, idx, flags, err)
	}
	if got != 0 {
		// TSYNC names the thread it could not synchronize.
		return fmt.Errorf("restore pid %d thread %d: install seccomp filter %d: thread %d could not share it", p.c.pid, t.Tid, idx, got)
	}
	return nil
}
