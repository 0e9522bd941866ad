package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestE2ESnapshot: dump --leave-running copies memory from a copy-on-write
// snapshot after the tree runs again, while snapwrite rewrites every page.
// The original, SIGTERMed, finds its memory untouched and no child left
// behind (the snapshot child was reaped); the restored process finds every
// page holding the generation of the freeze (a page copied later holds a
// newer one), and its MADV_DONTFORK, MADV_WIPEONFORK and shared areas
// intact (those are copied while frozen, or by their own path).
func TestE2ESnapshot(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "snapwrite", linkDynamic))
	w.Checkpoint("--leave-running")
	log := readString(filepath.Join(w.ImgDir, "dump.log"))
	if !strings.Contains(log, "snapshot child") || !strings.Contains(log, "copying its memory from 1 snapshots") {
		t.Fatalf("the dump did not copy from a snapshot; log:\n%s", clip(log, 8000))
	}
	w.Finish()
	w.Restore()
	w.Finish()
}

// TestE2ESnapshotFallback: when the injected clone fails (the process's
// pids cgroup is at its limit), the dump says so in the log and copies the
// memory while the tree is frozen, as before; the images restore.
func TestE2ESnapshotFallback(t *testing.T) {
	requireCryo(t)
	root := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		root = "/sys/fs/cgroup"
	}
	cg := filepath.Join(root, fmt.Sprintf("cryo-e2e-snapshot-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("pids cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	if err := os.WriteFile(filepath.Join(cg, "pids.max"), []byte("1"), 0o644); err != nil {
		t.Fatalf("pids cgroup: %v (no pids controller?)", err)
	}
	w := startWorkload(t, workloadBin(t, "snapwrite", linkDynamic))
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(w.Pid)), 0o644); err != nil {
		t.Fatalf("move %d into %s: %v", w.Pid, cg, err)
	}
	w.Checkpoint("--leave-running")
	log := readString(filepath.Join(w.ImgDir, "dump.log"))
	if !strings.Contains(log, "no snapshot") || !strings.Contains(log, "memory copied while frozen") || strings.Contains(log, "snapshot child") {
		t.Fatalf("the dump did not fall back to a frozen copy; log:\n%s", clip(log, 8000))
	}
	w.Finish()
	w.Restore()
	w.Finish()
}
