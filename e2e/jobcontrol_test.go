package e2e

import (
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// TestE2ETreeJobControl: a bash job-control tree (set -m puts each job in
// a process group of its own: a pipeline and a lone job) comes back with
// every PID, parent, process group and session, and the jobs still run.
func TestE2ETreeJobControl(t *testing.T) {
	requireCryo(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bash, "-c", "set -m; sleep 300 | cat & sleep 301 & wait")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	root := cmd.Process.Pid
	t.Cleanup(func() {
		unix.Kill(-root, unix.SIGKILL)
		for p := range descendants(root) {
			unix.Kill(p, unix.SIGKILL)
		}
		cmd.Wait()
	})
	// Wait for the three jobs' processes, each past its exec (a child of
	// bash's is named bash until it execs sleep or cat) and in its job's
	// group (bash sets it in the child and the parent, racing).
	var before map[int]proc.Stat
	deadline := time.Now().Add(bound(t, readyTimeout))
	ready := func() bool {
		if len(before) != 4 {
			return false
		}
		for pid, st := range before {
			if pid != root && (st.Comm == "bash" || st.Pgrp == before[root].Pgrp) {
				return false
			}
		}
		return true
	}
	for {
		before = treeStats(root)
		if ready() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job-control tree not ready: %v", before)
		}
		time.Sleep(pollInterval)
	}
	groups := map[int]bool{}
	for _, st := range before {
		groups[st.Pgrp] = true
	}
	if len(groups) != 3 {
		t.Fatalf("want bash and two jobs in three process groups, got %v", before)
	}
	images := filepath.Join(dir, "images")
	dump(t, root, images)
	cmd.Wait()
	pids := make([]int, 0, len(before))
	for pid := range before {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	res := runCryo(t, "restore", "-D", images, "-d", "-v", "4", "-o", "restore.log")
	if res.ExitCode != 0 {
		logFile(t, filepath.Join(images, "restore.log"))
		t.Fatalf("restore: %s", res)
	}
	// restore -d returns once the tree runs; wait until every process is
	// back and out of the stops of the restore, within a bound.
	var after map[int]proc.Stat
	deadline = time.Now().Add(bound(t, restoreReadyTimeout))
	for {
		after = treeStats(root)
		back := true
		for _, pid := range pids {
			if a, ok := after[pid]; !ok || a.State == 'T' || a.State == 't' {
				back = false
			}
		}
		if back || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	for _, pid := range pids {
		b, a := before[pid], after[pid]
		if a.Pid == 0 {
			t.Errorf("pid %d (%s) did not come back", pid, b.Comm)
			continue
		}
		if a.Comm != b.Comm || a.Pgrp != b.Pgrp || a.Session != b.Session || (pid != root && a.PPid != b.PPid) {
			t.Errorf("pid %d: comm %s pgid %d sid %d ppid %d, was %s %d %d %d", pid, a.Comm, a.Pgrp, a.Session, a.PPid, b.Comm, b.Pgrp, b.Session, b.PPid)
		}
		if a.State == 'T' || a.State == 'Z' || a.State == 't' {
			t.Errorf("pid %d is in state %c after the restore", pid, a.State)
		}
	}
}

// treeStats returns /proc/PID/stat of root and its descendants.
func treeStats(root int) map[int]proc.Stat {
	out := map[int]proc.Stat{}
	pids := descendants(root)
	pids[root] = true
	for pid := range pids {
		if st, err := proc.ReadStat(pid); err == nil {
			out[pid] = *st
		}
	}
	return out
}
