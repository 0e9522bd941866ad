package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestE2ETreeAnonSharedUnderShell: sh -c 'tree_anonshm; exit $?', where
// tree_anonshm maps 64 MiB MAP_SHARED|MAP_ANONYMOUS and forks 3 workers
// that each write a page. The root (sh) does not hold the area, so its
// scratch memory could sit where the area is staged in the holders; the
// restore once unmapped it there ("write memory of PID at 0x100000000: bad
// address"). After the restore the test creates "stop": every process
// checks the whole area and that it is still shared (tokens written after
// the restore are seen by the others); sh exits with the owner's status.
func TestE2ETreeAnonSharedUnderShell(t *testing.T) {
	forEachLink(t, "tree_anonshm", func(t *testing.T, bin string) {
		sh := copyExecutable(t, "/bin/sh", filepath.Join(t.TempDir(), "sh"))
		tr := startTree(t, sh, "-c", fmt.Sprintf("'%s'; exit $?", bin))
		if len(tr.Pids) != 5 {
			t.Fatalf("workload bug: %d TREE lines, want sh, the owner and 3 workers", len(tr.Pids))
		}
		tr.Checkpoint()
		tr.Restore()
		if err := os.WriteFile(filepath.Join(tr.w.Dir, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		tr.finishBySelf()
	})
}
