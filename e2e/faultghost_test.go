package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestE2EFaultGhost: cryo restore killed (SIGKILL) right after it gave a
// ghost file (a file the tree held deleted) its name, which it removes
// again once the tree holds it. The kill leaves the file at its name (the
// test checks that it does: the kill point is the worst one), carrying
// cryo's mark; the next restore removes it, makes its own, and afterwards
// nothing is left in the directory but what the workload made. A SIGTERM
// at the same step leaves nothing at once. The workload (ghost: a deleted
// file held by two descriptors, a deleted file mapped) then passes its own
// checks, among them that nothing is left at either name.
func TestE2EFaultGhost(t *testing.T) {
	w := startWorkload(t, workloadBin(t, "ghost", linkDynamic))
	w.Checkpoint()
	trace := traceRestore(t, w)
	// Lines "N restore: ghost PATH named".
	var steps []int
	var paths []string
	for _, l := range strings.Split(readString(trace), "\n") {
		var n int
		var path string
		if _, err := fmt.Sscanf(l, "%d restore: ghost %s named", &n, &path); err == nil {
			steps, paths = append(steps, n), append(paths, path)
		}
	}
	if len(steps) != 2 {
		t.Fatalf("the restore marked %d ghost files named (%v), want 2 (ghost.dat, ghost-map.dat); trace:\n%s", len(steps), paths, readString(trace))
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("after a whole restore, a file is left at %s", p)
		}
	}
	for i, step := range steps {
		res := faultRun(t, faultBin(t), []string{fmt.Sprintf("CRYO_FAULT_STEP=%d", step)}, -1, "restore", "-D", w.ImgDir, "-d")
		if res.ExitCode != 128+int(syscall.SIGKILL) {
			t.Fatalf("SIGKILL at restore step %d: cryo did not die of it: %s", step, res)
		}
		if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
			t.Fatalf("SIGKILL at restore step %d: %v", step, err)
		}
		for _, p := range paths[:i+1] {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("SIGKILL right after %s was named: no file left there (%v): the kill point is not where the test wants it", p, err)
			}
		}
		t.Logf("SIGKILL at restore step %d: %v left behind", step, paths[:i+1])
	}
	res := faultRun(t, faultBin(t), []string{fmt.Sprintf("CRYO_FAULT_STEP=%d", steps[1]), "CRYO_FAULT_SIGNAL=TERM"}, -1, "restore", "-D", w.ImgDir, "-d")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "interrupted") {
		t.Fatalf("SIGTERM at restore step %d: want one line saying it was interrupted and a non-zero exit: %s", steps[1], res)
	}
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("SIGTERM at restore step %d: a file is left at %s", steps[1], p)
		}
	}
	ents, err := os.ReadDir(filepath.Dir(paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), "cryo-ghost") || strings.HasPrefix(e.Name(), "ghost") {
			t.Errorf("after the interrupted restore, %s is in the workload's directory", e.Name())
		}
	}
	w.detach = false
	w.Restore()
	w.Finish()
}
