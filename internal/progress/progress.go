// Package progress counts the bytes of memory a dump or restore has
// copied, so that a caller can show how far a long one has got.
//
// A Meter is written by the copy loops of internal/dump and
// internal/restore and read by whoever shows progress (the public API's
// Progress callback, the CLI's progress line). Its methods are safe for
// concurrent use, and a nil *Meter counts nothing, so that code without a
// caller interested in progress needs no meter.
package progress

import (
	"sync/atomic"
	"time"
)

// Meter counts bytes done against a total that grows as the work is
// found (a dump learns each process's pages only once it scanned it).
type Meter struct {
	done, total atomic.Int64
	start       time.Time
}

// New returns a meter whose elapsed time starts now.
func New() *Meter { return &Meter{start: time.Now()} }

// Add counts n more bytes done.
func (m *Meter) Add(n int64) {
	if m != nil {
		m.done.Add(n)
	}
}

// Expect counts n more bytes to do.
func (m *Meter) Expect(n int64) {
	if m != nil {
		m.total.Add(n)
	}
}

// Snapshot is what a meter holds at one moment.
type Snapshot struct {
	// Done and Total are bytes copied and bytes known to copy; Total may
	// still grow, and is 0 while nothing is known.
	Done, Total int64
	// Elapsed is the time since the meter was made.
	Elapsed time.Duration
}

// Rate is the mean rate so far, in bytes per second.
func (s Snapshot) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Done) / s.Elapsed.Seconds()
}

// Load returns the meter's counts now; a nil meter has none.
func (m *Meter) Load() Snapshot {
	if m == nil {
		return Snapshot{}
	}
	return Snapshot{Done: m.done.Load(), Total: m.total.Load(), Elapsed: time.Since(m.start)}
}

// Watch calls fn with the meter's counts every interval until stop is
// closed, then once more with the final counts, and returns. It is meant
// to run in its own goroutine beside the work.
func (m *Meter) Watch(interval time.Duration, stop <-chan struct{}, fn func(Snapshot)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fn(m.Load())
			return
		case <-t.C:
			fn(m.Load())
		}
	}
}
