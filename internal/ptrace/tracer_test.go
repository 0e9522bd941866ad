package ptrace

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTracerRunNested checks that a Do made inside Run runs in place on
// the tracer thread (it would wait forever for the busy thread if it were
// handed over), that a Do from another goroutine still runs there, and
// that errors come back from both.
func TestTracerRunNested(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	var outer, inner, other int
	errInner := errors.New("inner")
	done := make(chan error, 1)
	go func() {
		done <- tr.Run(func() error {
			outer = unix.Gettid()
			err := tr.Do(func() error {
				inner = unix.Gettid()
				return errInner
			})
			if err != errInner {
				return err
			}
			return tr.Do(func() error { return nil })
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a Do inside Run did not return: it was handed to the busy tracer thread")
	}
	if err := tr.Do(func() error { other = unix.Gettid(); return nil }); err != nil {
		t.Fatal(err)
	}
	if outer != tr.tid || inner != tr.tid || other != tr.tid {
		t.Fatalf("threads: Run %d, nested Do %d, later Do %d; tracer thread %d", outer, inner, other, tr.tid)
	}
}

// TestTracerPanicReachesCaller checks that a panic on the tracer thread is
// raised again in the goroutine that made the Do, where a recover catches
// it, and that the tracer goes on serving.
func TestTracerPanicReachesCaller(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	got := func() (r any) {
		defer func() { r = recover() }()
		tr.Do(func() error { panic("boom in the tracer") })
		return nil
	}()
	p, ok := got.(*tracerPanic)
	if !ok {
		t.Fatalf("recovered %T %v, want the tracer's panic", got, got)
	}
	if s := p.String(); !strings.Contains(s, "boom in the tracer") || !strings.Contains(s, "tracer_test.go") {
		t.Fatalf("panic %q: want the value and the stack of the tracer thread", s)
	}
	if err := tr.Do(func() error { return nil }); err != nil {
		t.Fatalf("Do after a panic: %v", err)
	}
	tr.Close()
	if err := tr.Do(func() error { return nil }); err != ErrTracerClosed {
		t.Fatalf("Do after Close: %v, want ErrTracerClosed", err)
	}
}
