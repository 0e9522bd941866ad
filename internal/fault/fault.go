// Package fault is the hook of the fault-injection tests: it makes cryo
// kill itself (or send itself a catchable signal) at a chosen step, so that
// a test can stop cryo at a precise point of a dump and check that the tree
// survives.
//
// The hook exists only in a binary built with the "cryofault" build tag
// (see fault_on.go); in every other build FromEnv returns nil and Point on
// a nil *Injector does nothing, so no environment of a user's can reach it.
package fault

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables read by a cryofault build.
const (
	// EnvStep is the 1-based number of the step at which cryo stops itself.
	EnvStep = "CRYO_FAULT_STEP"
	// EnvSignal names the signal it sends itself there: KILL (default),
	// TERM, INT, HUP or PIPE.
	EnvSignal = "CRYO_FAULT_SIGNAL"
	// EnvTrace, set to a file name, makes it append one line per step
	// ("N name"), so that a test can learn how many steps a dump has.
	EnvTrace = "CRYO_FAULT_TRACE"
)

// Injector counts the steps of one cryo run and acts at the chosen one.
// A nil *Injector is valid and does nothing.
type Injector struct {
	ctx   context.Context // cancelled once a catchable signal was handled
	step  int64
	sig   unix.Signal
	trace *os.File
	n     atomic.Int64
}

// signalByName maps EnvSignal's values.
func signalByName(name string) (unix.Signal, bool) {
	switch name {
	case "KILL":
		return unix.SIGKILL, true
	case "TERM":
		return unix.SIGTERM, true
	case "INT":
		return unix.SIGINT, true
	case "HUP":
		return unix.SIGHUP, true
	case "PIPE":
		return unix.SIGPIPE, true
	}
	return 0, false
}

// fromEnv builds the injector of a cryofault build from the environment;
// nil when no variable asks for anything.
func fromEnv(ctx context.Context) (*Injector, error) {
	s, tr := os.Getenv(EnvStep), os.Getenv(EnvTrace)
	if s == "" && tr == "" {
		return nil, nil
	}
	in := &Injector{ctx: ctx, sig: unix.SIGKILL}
	if s != "" {
		if _, err := fmt.Sscan(s, &in.step); err != nil || in.step <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive step number", EnvStep, s)
		}
	}
	if v := os.Getenv(EnvSignal); v != "" {
		sig, ok := signalByName(v)
		if !ok {
			return nil, fmt.Errorf("%s=%q: want KILL, TERM, INT, HUP or PIPE", EnvSignal, v)
		}
		in.sig = sig
	}
	if tr != "" {
		f, err := os.OpenFile(tr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTrace, err)
		}
		in.trace = f
	}
	return in, nil
}

// Point marks one step named name. At the chosen step it sends the signal
// to cryo itself: SIGKILL ends cryo there; for a catchable signal it waits
// (a bounded time) until the signal was handled, so that the step where
// the dump notices it is the next one.
func (in *Injector) Point(name string) {
	if in == nil {
		return
	}
	n := in.n.Add(1)
	if in.trace != nil {
		fmt.Fprintf(in.trace, "%d %s\n", n, name)
	}
	if n != in.step {
		return
	}
	unix.Kill(os.Getpid(), in.sig)
	if in.sig == unix.SIGKILL {
		select {} // never returns: the kernel ends the process
	}
	select {
	case <-in.ctx.Done():
	case <-time.After(5 * time.Second):
	}
}
