//go:build !amd64

package ptrace

import (
	"runtime"

	"github.com/cryo-cr/cryo/internal/proc"
)

// Gadgets is empty: guarded injection (guard_amd64.go) builds x86-64
// signal frames, and has no counterpart on this architecture yet.
type Gadgets struct{}

// FindGadgets finds nothing on this architecture.
func FindGadgets(pid int, maps []proc.Mapping) (g Gadgets, ok bool) { return Gadgets{}, false }

// Guard is the guarded-injection state shared by the threads of a process;
// on this architecture it guards nothing.
type Guard struct{}

// NewGuard returns a Guard that SetGuard refuses.
func NewGuard(g Gadgets) *Guard { return &Guard{} }

// GuardAreaSize is 0: no frames are written on this architecture.
func GuardAreaSize(n int, xsize int) uint64 { return 0 }

// SetArea does nothing on this architecture.
func (g *Guard) SetArea(addr, size uint64) {}

// ClearArea does nothing on this architecture.
func (g *Guard) ClearArea() {}

// guardState is never set on this architecture.
type guardState struct{}

// SetGuard fails with an *ArchError.
func (t *Tracee) SetGuard(g *Guard) error { return &ArchError{Arch: runtime.GOARCH} }

// Guarded is always false on this architecture.
func (t *Tracee) Guarded() bool { return false }

// guardedSyscall is never reached (SetGuard refuses); it fails with an
// *ArchError all the same.
func (t *Tracee) guardedSyscall(pre func() error, nr uintptr, a [6]uint64) (uint64, error) {
	return 0, &ArchError{Arch: runtime.GOARCH}
}

// disarm has nothing to undo: no thread is ever armed here.
func (t *Tracee) disarm() error { return nil }

// Disarm has nothing to undo on this architecture.
func (t *Tracee) Disarm() error { return nil }
