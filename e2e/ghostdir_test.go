package e2e

import (
	"os"
	"testing"
	"time"
)

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

// TestE2EGhostDirSymlinkSwap: after the dump, the directory the removed
// directories lived in is replaced by a symbolic link to another
// directory (root's, a stand-in for /etc). The restore is refused in one
// line naming the link, and makes nothing in that directory; with the
// directory back, the same images restore.
func TestE2EGhostDirSymlinkSwap(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "ghostdir", linkDynamic))
	w.Checkpoint()
	if noCR {
		return
	}
	etc := t.TempDir()
	if err := os.Rename(w.Dir, w.Dir+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(etc, w.Dir); err != nil {
		t.Fatal(err)
	}
	res := runCryo(t, "restore", "-D", w.ImgDir, "-d")
	if res.ExitCode == 0 {
		w.Finish()
		t.Fatalf("the restore through a symbolic link was not refused")
	}
	assertOneErrorLine(t, res, "symbolic link")
	checkDirIs(t, etc)
	if err := waitPidFree(w.Pid, bound(t, 10*time.Second)); err != nil {
		t.Errorf("after the refused restore: %v", err)
	}
	if err := os.Remove(w.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(w.Dir+".orig", w.Dir); err != nil {
		t.Fatal(err)
	}
	w.Restore("-d")
	w.Finish()
}
