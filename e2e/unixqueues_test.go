package e2e

import "testing"

// TestE2EUnixQueues: messages queued in connected Unix socket pairs come
// back one by one, with their boundaries: datagrams both ways (1, 1000 and
// 70000 bytes; 3 and 5), seqpacket messages (10 and 20000 bytes), and a
// stream's 5000 bytes; nothing more is queued.
func TestE2EUnixQueues(t *testing.T) {
	forEachVariant(t, "unix_queues", []int{1}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}
