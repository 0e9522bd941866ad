package e2e

import "testing"

// TestE2EGhostDir: a process whose working directory was removed, and
// which holds a removed directory open whose name was taken again since,
// comes back in the same state (docs/conformance.md): "(deleted)" names,
// no links, the saved mode and owner, files still not creatable there,
// and nothing left in the directory the ghosts were made in.
func TestE2EGhostDir(t *testing.T) {
	forEachVariant(t, "ghostdir", []int{1}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2ERootlessGhostDir: the same, dumped and restored by the test
// user, for a tree of its own uid and for one running as a subordinate
// uid inside its user namespace.
func TestE2ERootlessGhostDir(t *testing.T) {
	t.Run("own-uid", func(t *testing.T) { runRootlessWorkload(t, rootlessOwnUID, "ghostdir") })
	t.Run("subids", func(t *testing.T) { runRootlessWorkload(t, rootlessSubIDs, "ghostdir") })
}
