//go:build !amd64

package cpu

import (
	"runtime"

	x86 "github.com/checkpoint-restore/go-criu/v7/crit/images/core-x86"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// The whole package is x86-64 state (general registers, XSAVE, CPUID);
// on another architecture these stand-ins keep the tree building, and the
// conversions fail with a *ptrace.ArchError. Callers never get here in
// practice: dump and restore refuse first (ptrace.ArchSupported).

// GPRsToImage returns nil: there are no x86-64 registers to convert.
func GPRsToImage(r *unix.PtraceRegs) *x86.UserX86RegsEntry { return nil }

// GPRsFromImage fails with a *ptrace.ArchError.
func GPRsFromImage(e *x86.UserX86RegsEntry) (unix.PtraceRegs, error) {
	return unix.PtraceRegs{}, &ptrace.ArchError{Arch: runtime.GOARCH}
}

// Xfeatures returns 0: no XSAVE area exists here.
func Xfeatures(area []byte) uint64 { return 0 }

// XsaveToImage fails with a *ptrace.ArchError.
func XsaveToImage(area []byte) (*x86.UserX86FpregsEntry, error) {
	return nil, &ptrace.ArchError{Arch: runtime.GOARCH}
}

// XsaveFromImage fails with a *ptrace.ArchError.
func XsaveFromImage(fp *x86.UserX86FpregsEntry, template []byte) ([]byte, error) {
	return nil, &ptrace.ArchError{Arch: runtime.GOARCH}
}

// SupportedXfeatures returns 0: there is no CPUID leaf 0xD here.
func SupportedXfeatures() uint64 { return 0 }
