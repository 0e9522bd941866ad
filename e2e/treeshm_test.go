package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestE2ETreeSharedMemory: shared memory the root mapped before forking
// children A and B, who inherit it: 4 MiB MAP_SHARED|MAP_ANONYMOUS, a sealed
// 1 MiB memfd ("cryo-shm-test", fd kept open at offset 777) and a file in
// /dev/shm, with pattern pages, pages written by a child only and
// never-touched (zero) pages. After restore every process checks the
// contents and /proc/self/maps, then the regions must still be one memory:
// tokens the root writes are seen by A and B, and theirs by the root. The
// root also checks the memfd's link, seals, offset and size.
func TestE2ETreeSharedMemory(t *testing.T) {
	forEachLink(t, "tree_shm", func(t *testing.T, bin string) {
		tr := startTree(t, bin)
		// The workload unlinks its /dev/shm file at the end; not if it died.
		t.Cleanup(func() { _ = os.Remove(fmt.Sprintf("/dev/shm/cryo-shm-test.%d", tr.w.Pid)) })
		tr.Checkpoint()
		tr.Restore()
		tr.Finish()
	})
}
