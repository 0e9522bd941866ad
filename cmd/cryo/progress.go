package main

import (
	"fmt"
	"os"
	"time"

	"github.com/cryo-cr/cryo/internal/progress"
	"golang.org/x/sys/unix"
)

// progressDelay is how long a dump or restore runs before its progress
// line appears: a small one finishes before and prints nothing.
const progressDelay = time.Second

// progressLine shows, on a terminal, how much memory a long dump or
// restore has copied and at what rate, on one line rewritten in place on
// stderr and erased at the end. On anything but a terminal it shows
// nothing and returns a nil meter. The function it returns stops it.
func progressLine(op string, quiet bool) (*progress.Meter, func()) {
	if quiet {
		return nil, func() {}
	}
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err != nil {
		return nil, func() {}
	}
	m := progress.New()
	stop, done := make(chan struct{}), make(chan struct{})
	shown := false
	go func() {
		defer close(done)
		m.Watch(200*time.Millisecond, stop, func(s progress.Snapshot) {
			select {
			case <-stop:
				if shown {
					fmt.Fprint(os.Stderr, "\r\033[K")
				}
				return
			default:
			}
			if s.Elapsed < progressDelay || s.Total == 0 {
				return
			}
			shown = true
			fmt.Fprintf(os.Stderr, "\r\033[Kcryo: %s: %s of %s of memory, %s/s", op, size(s.Done), size(s.Total), size(int64(s.Rate())))
		})
	}()
	return m, func() { close(stop); <-done }
}

// size prints a byte count in binary units.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
