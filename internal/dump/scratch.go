package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// scratchSize is enough for every injected call's buffer.
const scratchSize = 64 << 10

// scratchFrameMax bounds one thread's XSAVE area for the room of its
// signal frame (AMX makes it about 11 KiB).
const scratchFrameMax = 16 << 10

// scratch is a private anonymous mapping injected into the frozen process to
// hold buffers of injected system calls (sigaction results, stack_t, ...)
// and, after them, the signal frames of guarded injection (one per
// thread). It is mapped after /proc/PID/maps was read, so it never reaches
// the image, and unmapped before the process is released.
type scratch struct {
	t       *ptrace.Tracee
	threads []*ptrace.Tracee
	guard   *ptrace.Guard
	addr    uint64
	size    uint64 // of the whole mapping, frames included
}

// guard makes every injection into the process's threads survive cryo's
// death (see ptrace.Guard); without the code it needs in the process, the
// injections run unguarded and the log says so.
func (s *scratch) guardThreads(p *process, maps []proc.Mapping) error {
	g, ok := ptrace.FindGadgets(p.pid, maps)
	if !ok {
		p.logf("process %d: no \"syscall; ret\" and rt_sigreturn code found in it: its injected calls are not protected against cryo being killed", p.pid)
		return nil
	}
	s.guard = ptrace.NewGuard(g)
	for _, t := range p.threads {
		if err := t.SetGuard(s.guard); err != nil {
			return fmt.Errorf("process %d: %w", p.pid, err)
		}
	}
	return nil
}

// sizeFor is how much scratch memory mapIn maps into p: the buffers, and
// the guarded threads' signal frames.
func (s *scratch) sizeFor(p *process) uint64 {
	size := uint64(scratchSize)
	if s.guard != nil {
		size += ptrace.GuardAreaSize(len(p.threads), scratchFrameMax)
	}
	return size
}

func (s *scratch) mapIn(p *process) error {
	t := p.leader()
	size := s.sizeFor(p)
	addr, err := t.Syscall(unix.SYS_MMAP, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("process %d: map scratch memory: %w", t.Pid, err)
	}
	s.t, s.threads, s.addr, s.size = t, p.threads, addr, size
	if s.guard != nil {
		s.guard.SetArea(addr+scratchSize, size-scratchSize)
	}
	return nil
}

// unmap removes the scratch mapping; idempotent. Threads whose frames are
// in it get their own registers back first; the munmap itself runs with
// the leader's frame on its stack.
func (s *scratch) unmap() error {
	if s.addr == 0 {
		return nil
	}
	var first error
	if s.guard != nil {
		for _, t := range s.threads {
			if t != s.t {
				if err := t.Disarm(); err != nil && first == nil {
					first = err
				}
			}
		}
		if first != nil {
			// A thread may still use its frame: keep the mapping.
			return fmt.Errorf("process %d: %w", s.t.Pid, first)
		}
		s.guard.ClearArea()
	}
	_, err := s.t.Syscall(unix.SYS_MUNMAP, s.addr, s.size)
	s.addr = 0
	if err != nil {
		return fmt.Errorf("process %d: unmap scratch memory: %w", s.t.Pid, err)
	}
	return nil
}

func (s *scratch) read(off uint64, n int) ([]byte, error) { return s.remote().Get(off, n) }

func (s *scratch) zero(off uint64, n int) error {
	_, err := s.remote().Put(off, make([]byte, n))
	return err
}

// remote is the scratch area as package remote's view of the process.
func (s *scratch) remote() remote.Proc {
	return remote.Proc{T: s.t, Scratch: s.addr, Size: scratchSize}
}
