//go:build !amd64

package dump

import "golang.org/x/sys/unix"

// describeRegs says nothing: cryo reads no registers on this architecture
// yet (dumps are refused before any thread is seized).
func describeRegs(r *unix.PtraceRegs) string { return "" }
