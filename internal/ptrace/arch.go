package ptrace

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrArchNotSupported is matched (errors.Is) by every ArchError: cryo's
// register, injection and signal-frame code exists for x86-64 only, and on
// any other architecture the operations that need it fail with it rather
// than the build failing.
var ErrArchNotSupported = errors.New("architecture not supported")

// ArchError is an operation that needs architecture-specific code cryo does
// not have for Arch yet. Its text is the one line every command prints.
type ArchError struct {
	// Arch is the GOARCH cryo was built for.
	Arch string
}

func (e *ArchError) Error() string { return fmt.Sprintf("not supported on %s yet", e.Arch) }

// Is makes errors.Is(err, ErrArchNotSupported) hold.
func (e *ArchError) Is(target error) bool { return target == ErrArchNotSupported }

// ArchSupported returns nil on an architecture cryo supports, and an
// *ArchError naming the running one otherwise: callers check it first so
// that they refuse in one line before they touch any process.
func ArchSupported() error {
	if archSupported {
		return nil
	}
	return &ArchError{Arch: runtime.GOARCH}
}
