package cryo

import "github.com/cryo-cr/cryo/internal/ptrace"

// ErrArchNotSupported is what errors.Is finds in the error of Dump and
// Restore when cryo is built for an architecture other than x86-64 (amd64):
// its register, injection and signal-frame code exists for x86-64 only.
var ErrArchNotSupported = ptrace.ErrArchNotSupported

// ArchError is the error behind ErrArchNotSupported; Arch names the
// architecture, and its text is "not supported on ARCH yet".
type ArchError = ptrace.ArchError
