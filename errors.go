package cryo

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/image"
)

// RefusedError is a dump that did not happen: the tree runs on as it was.
// Err says why (an object cryo cannot save yet, a process that vanished, a
// full disk...).
type RefusedError struct {
	// Pid is the root of the tree that was to be dumped.
	Pid int
	// Err is the cause.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("cryo: dump %d refused, the tree runs on: %v", e.Pid, e.Err)
}

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }

// InterruptedError is a dump or restore stopped by its context or a
// signal before it finished; it was rolled back (see RefusedError and
// Restore for what that means).
type InterruptedError struct {
	// Op is "dump" or "restore".
	Op string
	// Cause is the context's cause (context.Cause).
	Cause error
	// Err says where the work stopped and what was rolled back.
	Err error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("cryo: %s: %v", e.Op, e.Err)
}

// Unwrap returns the cause and the detailed error, so that
// errors.Is(err, context.Canceled) holds.
func (e *InterruptedError) Unwrap() []error { return []error{e.Cause, e.Err} }

// ImageError is a malformed image file (truncated, a wrong magic, an entry
// that breaks the format's rules): a restore that meets one refuses before
// it makes anything.
type ImageError = image.FormatError
