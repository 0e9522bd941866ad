package e2e

import "testing"

// TestE2EMemKinds: the rows of docs/conformance.md that were "not checked
// yet" (testdata/memkinds.c). A region locked with mlock comes back locked
// (the process checks VmLck and the contents). An AIO ring and a traced
// process are refused in one line naming them, and the process runs on
// untouched: its AIO context still works, its child is still its tracee.
func TestE2EMemKinds(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "memkinds", linkDynamic)
	t.Run("mlock", func(t *testing.T) {
		w := startWorkload(t, bin, "mlock")
		w.Checkpoint()
		w.Restore()
		w.Finish()
	})
	for _, c := range []struct{ mode, want string }{
		{"aio", "AIO ring"},
		{"traced", "already traced"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			w := startWorkload(t, bin, c.mode)
			res := tryDump(t, w.Pid, t.TempDir())
			assertOneErrorLine(t, res, c.want)
			w.assertRunningUntouched("after the refused dump")
			w.Finish()
		})
	}
}
