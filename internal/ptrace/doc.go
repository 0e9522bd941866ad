// Package ptrace controls tracees: it seizes and stops threads, reads and
// writes their registers, and injects system calls into them.
//
// The kernel only accepts ptrace requests from the OS thread that attached a
// tracee (or forked it with PTRACE_TRACEME), so every request goes through a
// Tracer, which owns one goroutine locked to one OS thread for its whole life.
// wait4 and process_vm_* are not bound to the tracer thread, but wait4 is run
// there too so that stop bookkeeping stays in one place.
package ptrace
