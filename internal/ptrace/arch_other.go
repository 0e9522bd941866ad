//go:build !amd64

package ptrace

// archSupported says that this architecture has no register, injection or
// signal-frame code yet: the *_other.go leaves return an *ArchError.
const archSupported = false
