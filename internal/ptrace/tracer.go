package ptrace

import (
	"errors"
	"runtime"

	"github.com/cryo-cr/cryo/internal/fault"
)

// ErrTracerClosed is returned by Do after Close.
var ErrTracerClosed = errors.New("ptrace: tracer closed")

// Tracer runs functions on one locked OS thread, the thread that owns every
// tracee it attaches or forks.
type Tracer struct {
	reqs chan func()
	quit chan struct{}
	// Fault marks the steps of injections for the fault-injection tests
	// (nil outside them).
	Fault *fault.Injector
	// interrupted are the threads Interrupt attached that no Seize took
	// yet, tid -> pid (interrupt.go); used on the tracer thread only.
	interrupted map[int]int
}

// NewTracer starts the tracer thread.
func NewTracer() *Tracer {
	t := &Tracer{reqs: make(chan func()), quit: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		// Never unlocked: if the goroutine returned while locked, the
		// runtime would destroy the thread, and with it the tracer
		// relationship of any tracee still attached.
		runtime.LockOSThread()
		close(ready)
		for {
			select {
			case f := <-t.reqs:
				f()
			case <-t.quit:
				return
			}
		}
	}()
	<-ready
	return t
}

// Do runs f on the tracer thread and returns its error.
func (t *Tracer) Do(f func() error) error {
	var err error
	done := make(chan struct{})
	select {
	case t.reqs <- func() { err = f(); close(done) }:
	case <-t.quit:
		return ErrTracerClosed
	}
	<-done
	return err
}

// Close stops the tracer thread. Tracees still attached are detached by
// the kernel when the thread exits (or killed, with PTRACE_O_EXITKILL).
// Close is idempotent.
func (t *Tracer) Close() {
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
}
