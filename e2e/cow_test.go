package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestE2ETreeCow: copy-on-write sharing across fork survives a restore.
// The root of tree_cow fills 64 MiB, forks 4 workers that each overwrite 4
// pages, and one worker forks a grandchild that overwrites one more. After
// the restore each process checks its contents, and through the page
// frame numbers of /proc/PID/pagemap that the pages it did not write are
// its parent's very pages. The test also checks that the tree's
// proportional set size did not grow by a copy per worker, neither after
// the restore nor in the tree left running by a dump with -R.
func TestE2ETreeCow(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_cow", linkDynamic))
	before := treePss(t, tr.Pids)
	// A dump that leaves the tree running must not unshare its pages.
	dump(t, tr.w.Pid, t.TempDir(), "-R")
	if running := treePss(t, tr.Pids); running > before+before/2 {
		t.Errorf("tree PSS grew from %d KiB to %d KiB during a dump with -R: the dump copied the shared pages", before, running)
	}
	tr.Checkpoint()
	tr.Restore()
	after := treePss(t, tr.Pids)
	t.Logf("tree PSS: %d KiB before the dump, %d KiB after the restore", before, after)
	// Unshared, the 64 MiB would count six times (root, 4 workers, G).
	if after > before+before/2 {
		t.Errorf("tree PSS grew from %d KiB to %d KiB: the workers' pages are copies, not shared", before, after)
	}
	tr.Finish()
}

// treePss sums the proportional set size (KiB) of the processes: a page
// shared by n of them counts 1/n in each, so the sum is the tree's memory.
func treePss(t *testing.T, pids []int) int {
	t.Helper()
	total := 0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			t.Fatalf("PSS of %d: %v", pid, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				n, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("PSS of %d: %q", pid, line)
				}
				total += n
			}
		}
	}
	return total
}
