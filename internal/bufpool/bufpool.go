// Package bufpool keeps the copy buffers of one dump or restore for the
// next process: a fresh buffer faults on each of its pages, which on a
// paravirtualized guest costs 15-55 µs a page, as much as the copy of a
// small process.
package bufpool

import "sync"

// Pool holds buffers given back for reuse. The zero value is empty and
// ready; it is safe for concurrent use.
type Pool struct {
	mu   sync.Mutex
	free [][]byte
}

// Get returns a buffer of size bytes, reused when one is big enough.
func (bp *Pool) Get(size int) []byte {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	for i, b := range bp.free {
		if cap(b) >= size {
			bp.free = append(bp.free[:i], bp.free[i+1:]...)
			return b[:size]
		}
	}
	return make([]byte, size)
}

// Put gives a buffer back for later Get calls.
func (bp *Pool) Put(b []byte) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.free = append(bp.free, b)
}
