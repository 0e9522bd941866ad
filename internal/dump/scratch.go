package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// scratchSize is enough for every injected call's buffer.
const scratchSize = 64 << 10

// scratch is a private anonymous mapping injected into the frozen process to
// hold buffers of injected system calls (sigaction results, stack_t, ...).
// It is mapped after /proc/PID/maps was read, so it never reaches the image,
// and unmapped before the process is released.
type scratch struct {
	t    *ptrace.Tracee
	addr uint64
}

func (s *scratch) mapIn(t *ptrace.Tracee) error {
	addr, err := t.Syscall(unix.SYS_MMAP, 0, scratchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("process %d: map scratch memory: %w", t.Pid, err)
	}
	s.t, s.addr = t, addr
	return nil
}

// unmap removes the scratch mapping; idempotent.
func (s *scratch) unmap() error {
	if s.addr == 0 {
		return nil
	}
	_, err := s.t.Syscall(unix.SYS_MUNMAP, s.addr, scratchSize)
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
