package ptrace

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/cryo-cr/cryo/internal/fault"
	"golang.org/x/sys/unix"
)

// ErrTracerClosed is returned by Do after Close.
var ErrTracerClosed = errors.New("ptrace: tracer closed")

// Tracer runs functions on one locked OS thread, the thread that owns every
// tracee it attaches or forks.
type Tracer struct {
	reqs chan func()
	quit chan struct{}
	// tid is the tracer thread's id: a Do made on it runs in place.
	tid int
	// Fault marks the steps of injections for the fault-injection tests
	// (nil outside them).
	Fault *fault.Injector
	// stopTimeout bounds each wait for a tracee's stop (waitbound.go).
	stopTimeout time.Duration
	// interrupted are the threads Interrupt attached that no Seize took
	// yet, tid -> pid (interrupt.go); used on the tracer thread only.
	interrupted map[int]int
}

// NewTracer starts the tracer thread.
func NewTracer() *Tracer {
	t := &Tracer{reqs: make(chan func()), quit: make(chan struct{}), stopTimeout: stopTimeoutFromEnv()}
	ready := make(chan struct{})
	go func() {
		// Never unlocked: if the goroutine returned while locked, the
		// runtime would destroy the thread, and with it the tracer
		// relationship of any tracee still attached.
		runtime.LockOSThread()
		t.tid = unix.Gettid()
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

// Do runs f on the tracer thread and returns its error. Called from the
// tracer thread itself (within Run), it runs f at once; from any other
// goroutine it hands f over and waits, and a panic in f is raised again in
// the caller (with f's stack), where the dump's or restore's recover
// handles it as its own.
func (t *Tracer) Do(f func() error) error {
	// Only the goroutine locked to the tracer thread ever runs on it, so
	// the thread id says whether the caller is that goroutine.
	if unix.Gettid() == t.tid {
		select {
		case <-t.quit:
			// Closed: the thread ends with f, and its id may be another
			// thread's later.
			return ErrTracerClosed
		default:
			return f()
		}
	}
	var err error
	var failed *tracerPanic
	done := make(chan struct{})
	run := func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				failed = &tracerPanic{value: r, stack: debug.Stack()}
			}
		}()
		err = f()
	}
	select {
	case t.reqs <- run:
	case <-t.quit:
		return ErrTracerClosed
	}
	<-done
	if failed != nil {
		panic(failed)
	}
	return err
}

// Run runs f, a whole dump or restore, on the tracer thread, so that f's
// own calls to Do run in place. A Do from another goroutine costs two
// thread switches, and a restore makes thousands: on a loaded machine
// each switch waits for a CPU (about 100 ms of 700 for the restore of a
// 7-process tree at load 8). f must not wait for another goroutine that
// calls Do: that Do waits until f returns.
func (t *Tracer) Run(f func() error) error { return t.Do(f) }

// tracerPanic is a panic raised on the tracer thread, carried to the
// goroutine that asked for the call.
type tracerPanic struct {
	value any
	stack []byte
}

func (p *tracerPanic) String() string {
	return fmt.Sprintf("%v (on the tracer thread)\n%s", p.value, p.stack)
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
