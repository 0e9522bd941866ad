package e2e

// Reliability (issue 9, points 3 to 8): a restore right after a killed
// one, an image directory that runs out of room, concurrent restores and
// dumps, resource limits, and processes cryo cannot stop (vfork). See
// docs/reliability-limits.md.

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// imageDigests hashes every image file of dir (not the logs, nor the
// statistics a restore writes), to tell whether a restore changed them.
func imageDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".log") || strings.HasPrefix(n, "stats-") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = fmt.Sprintf("%x", sha256.Sum256(data))
	}
	return out
}

// compareDigests fails the test if the image files changed.
func compareDigests(t *testing.T, when string, before, after map[string]string) {
	t.Helper()
	var diff []string
	for n, d := range before {
		if after[n] != d {
			diff = append(diff, n)
		}
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			diff = append(diff, n+" (new)")
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("%s: image files changed: %s", when, strings.Join(diff, ", "))
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound(t, d))
	for !cond() {
		if time.Now().After(deadline) {
			hung()
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(pollInterval)
	}
}

// liveProcessesOf lists the live (not zombie) processes running bin.
func liveProcessesOf(bins ...string) []int {
	var out []int
	for _, pid := range allPids() {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !pidAlive(pid) {
			continue
		}
		for _, b := range bins {
			if b != "" && strings.TrimSuffix(exe, " (deleted)") == b {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestE2ERobustRestoreAfterKilledRestore: cryo restore is SIGKILLed once
// the restored root exists at its PID. Nothing of that restore is left
// running (its processes die with their tracer), the images are untouched,
// and a second restore started while the first one's processes are still
// zombies (the test, their subreaper, does not reap them yet) says it
// waits for a zombie, goes on once they are reaped, and the restored
// process passes its own checks.
func TestE2ERobustRestoreAfterKilledRestore(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	w.Checkpoint()
	before := imageDigests(t, w.ImgDir)

	first, _, _ := restore(t, w.ImgDir)
	waitFor(t, restoreReadyTimeout, fmt.Sprintf("the first restore made pid %d", w.Pid), func() bool {
		return procPPid(w.Pid) == first.Pid() || first.Exited()
	})
	if first.Exited() {
		logFile(t, filepath.Join(w.ImgDir, "restore.log"))
		t.Fatalf("the first restore exited (status %d) before pid %d existed", first.ExitCode(), w.Pid)
	}
	if err := first.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !first.Wait(bound(t, killTimeout)) {
		t.Fatalf("cryo restore did not die of SIGKILL")
	}
	// Its processes die with it and come to the test (a subreaper) as
	// zombies, which it keeps for now.
	waitFor(t, killTimeout, fmt.Sprintf("pid %d is a zombie", w.Pid), func() bool {
		return strings.HasPrefix(procStatus(fmt.Sprintf("/proc/%d/status", w.Pid))["State"], "Z")
	})
	if left := liveProcessesOf(w.Bin, cryoBin); len(left) > 0 {
		t.Fatalf("processes of the killed restore are still alive: %v", left)
	}
	compareDigests(t, "after the killed restore", before, imageDigests(t, w.ImgDir))

	w.rst, w.rstOut, w.rstErr = restore(t, w.ImgDir)
	log := filepath.Join(w.ImgDir, "restore.log")
	waitFor(t, restoreReadyTimeout, "the second restore says it waits for the zombie", func() bool {
		return strings.Contains(readString(log), "zombie") || w.rst.Exited()
	})
	if w.rst.Exited() {
		w.logAll()
		t.Fatalf("the second restore exited (status %d) while pid %d was a zombie", w.rst.ExitCode(), w.Pid)
	}
	reapZombieChildren()
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	compareDigests(t, "after the second restore", before, imageDigests(t, w.ImgDir))
	w.Finish()
}

// mountSmallTmpfs mounts a tmpfs of size bytes on a new directory (removed
// at the end of the test) and returns it.
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs of %s: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// TestE2ERobustOutOfRoom: the image directory is on a tmpfs too small for
// the process's memory, and holds the inventory of an earlier dump. The
// dump (without --leave-running, so the tree would be killed at the end)
// fails with one line naming the lack of space; the process runs on
// untouched and later passes its own checks; the old inventory is gone, so
// a restore of the partial directory is refused in one line.
func TestE2ERobustOutOfRoom(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	// A whole dump elsewhere gives an inventory to plant.
	whole := filepath.Join(t.TempDir(), "whole")
	dump(t, w.Pid, whole, "--leave-running")
	w.assertRunningUntouched("after dump --leave-running")

	dir := filepath.Join(mountSmallTmpfs(t, "2m"), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile(filepath.Join(whole, "inventory.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.img"), inv, 0o600); err != nil {
		t.Fatal(err)
	}
	res := runCryo(t, "dump", "-t", fmt.Sprint(w.Pid), "-D", dir)
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "no space left")
	w.assertRunningUntouched("after the dump that ran out of room")
	if _, err := os.Lstat(filepath.Join(dir, "inventory.img")); err == nil {
		t.Errorf("the partial directory still holds an inventory.img")
	}
	res = runCryo(t, "restore", "-D", dir)
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "inventory.img", "not a complete dump")
	checkNoStrayCryo(t, "after the refused restore")
	w.assertRunningUntouched("after the refused restore")
	w.Finish()
}
