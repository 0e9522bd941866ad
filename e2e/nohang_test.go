package e2e

import (
	"strconv"
	"testing"
)

// TestE2ERobustFrozenNoHang: a process whose threads cannot reach a ptrace
// stop. The workload (threads, 4 threads checking their own state) is put
// in a cgroup v2 and frozen: cryo seizes it, but a frozen thread resumed
// for an injected call goes back to the freezer and never reaches the
// call, so the wait for its stop used to block forever (even SIGTERM did
// not end cryo). With CRYO_STOP_TIMEOUT=2s the dump (without
// --leave-running) must fail in one line naming the process, the thread
// and the frozen cgroup; the process must be left untraced; once thawed it
// runs on as it was and passes its own checks.
func TestE2ERobustFrozenNoHang(t *testing.T) {
	requireRoot(t)
	cg := newCgroup(t, cgroup2Root(t))
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "4")
	cg.add(w.Pid)
	cg.freeze(true)
	dir := t.TempDir()
	res := faultRun(t, cryoBin, []string{"CRYO_STOP_TIMEOUT=2s"}, -1, "dump", "-t", strconv.Itoa(w.Pid), "-D", dir)
	assertOneErrorLine(t, res, "process "+strconv.Itoa(w.Pid)+" thread ", "did not stop within 2s", "frozen", cg.Dir)
	cg.freeze(false)
	w.assertRunningUntouched("after the dump that gave up")
	w.Finish()
}
