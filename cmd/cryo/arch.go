package main

import "github.com/cryo-cr/cryo/internal/ptrace"

// archRefuses returns a *ptrace.ArchError for a command that needs the
// architecture-specific code (registers, injection, signal frames) when
// cryo is built for an architecture that lacks it, so that the command
// fails in one line before it touches any process. show only reads images,
// which are the same everywhere, and runs on any architecture.
func archRefuses(cmd string) error {
	switch cmd {
	case "dump", "pre-dump", "restore", "check", "swrk":
		return ptrace.ArchSupported()
	}
	return nil
}
