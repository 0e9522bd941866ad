package ptrace

// archSupported says that this architecture has its register, injection
// and signal-frame code (the *_amd64.go files).
const archSupported = true
