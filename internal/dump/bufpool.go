package dump

import "sync"

// bufPool keeps the copy buffers of one dump for the next process: a
// fresh buffer faults on each of its pages, which on a paravirtualized
// guest costs 15-55 µs a page, as much as the copy of a small process.
type bufPool struct {
	mu   sync.Mutex
	free [][]byte
}

// get returns a buffer of size bytes, reused when one is big enough.
func (bp *bufPool) get(size int) []byte {
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

// put gives a buffer back for later get calls.
func (bp *bufPool) put(b []byte) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.free = append(bp.free, b)
}
