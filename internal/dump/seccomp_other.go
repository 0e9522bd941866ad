//go:build !amd64

package dump

// namedCall is a system call cryo injects, for a warning that names it.
type namedCall struct {
	name string
	nr   int32
}

// injectedCalls returns nothing where cryo does not dump (see
// docs/architectures.md): no filter is evaluated.
func injectedCalls() (arch uint32, calls []namedCall) { return 0, nil }

// sigreturnNr is unused where injectedCalls returns nothing.
const sigreturnNr = -1
