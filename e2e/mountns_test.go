package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestE2EMountNS: a process started by root in a mount namespace of its
// own (unshare -m), with a tmpfs holding files of other owners, a bind
// mount of a host directory and a read-only one of a file inside the
// tmpfs, and a proc mount; a descriptor and the cwd of every thread on the
// tmpfs; and a time namespace with clock offsets (unshare -T). See
// testdata/mountns.c for what the restored process checks. Outside,
// nothing of its mounts shows.
func TestE2EMountNS(t *testing.T) {
	forEachVariant(t, "mountns", []int{1, 4}, func(t *testing.T, bin string, n int) {
		w := startWorkload(t, bin, "-t", nthreads(n))
		w.Checkpoint()
		w.Restore()
		w.Finish()
		assertNoMountsOf(t, w.Dir)
	})
}

// TestE2EMountNSTree: the same with a child that inherited the open file
// on the tmpfs and the cwd in it: restore opens the file in the root once
// the namespace exists and the child, cloned before, takes the same open
// file (kcmp) from it.
func TestE2EMountNSTree(t *testing.T) {
	forEachLink(t, "mountns", func(t *testing.T, bin string) {
		tr := startTree(t, bin, "tree")
		tr.Checkpoint()
		tr.Restore()
		tr.Finish()
		assertNoMountsOf(t, tr.w.Dir)
	})
}

// TestE2EMountNSRefused: the same with an mqueue mount, which cryo cannot
// make again, or a deleted file open on the tmpfs: the dump is refused in
// one line naming the filesystem and the mount point (or the file), and
// the process runs on untouched.
func TestE2EMountNSRefused(t *testing.T) {
	for mode, want := range map[string]string{"mqueue": "mqueue mount at %s/t/mq", "ghost": "deleted file %s/t/ghost on the tree's own tmpfs mount"} {
		t.Run(mode, func(t *testing.T) {
			forEachLink(t, "mountns", func(t *testing.T, bin string) {
				w := startWorkload(t, bin, mode)
				if !noCR {
					res := tryDump(t, w.Pid, t.TempDir())
					assertOneErrorLine(t, res, fmt.Sprintf(want, w.Dir))
					w.assertRunningUntouched("after the refused dump")
				}
				w.Finish()
			})
		})
	}
}

// assertNoMountsOf fails if the test's mount namespace has a mount below
// dir: the workload's mounts must stay in its own namespace.
func assertNoMountsOf(t *testing.T, dir string) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), dir) {
		t.Errorf("the test's mountinfo mentions %s: a mount leaked out of the namespace", dir)
	}
}
