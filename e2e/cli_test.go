package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestE2ECheck: `cryo check` prints the kernel features and exits 0 on this
// machine (all essential features present).
func TestE2ECheck(t *testing.T) {
	requireCryo(t)
	res := runCryo(t, "check")
	t.Logf("%s", res)
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Fatalf("cryo check: exit %d (err %v, timed out %v), want 0", res.ExitCode, res.Err, res.TimedOut)
	}
	if strings.TrimSpace(res.Stdout) == "" {
		t.Errorf("cryo check printed nothing on stdout; want the list of kernel features")
	}
}

// TestE2ECheckRootless: `cryo check` run by the test user, who may
// restore only in a user namespace of its own, passes (set_tid in the
// initial pid namespace is not essential then) and reports user
// namespaces and the uidmap helpers the rootless restore uses.
func TestE2ECheckRootless(t *testing.T) {
	requireRoot(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	res := runCryoAs(t, testUserCred(), bound(t, cryoTimeout), "check")
	t.Logf("%s", res)
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Fatalf("cryo check as uid %d: exit %d (err %v, timed out %v), want 0", testUID, res.ExitCode, res.Err, res.TimedOut)
	}
	for _, want := range []string{`user namespaces for a normal user \(rootless restore\):\s+yes`, `newuidmap and newgidmap \(subordinate ids, rootless\):\s+yes`} {
		if !regexp.MustCompile(want).MatchString(res.Stdout) {
			t.Errorf("cryo check as uid %d does not say %q", testUID, want)
		}
	}
}

// TestE2ELeaveStopped: CRIU's -s/--leave-stopped. `dump -s` leaves the
// process stopped (state T) instead of killing it; after SIGCONT it runs
// on. Killed, it is restored with `restore -d --leave-stopped`: stopped
// again at its PID, and after SIGCONT it goes on with its state intact
// and passes its checks.
func TestE2ELeaveStopped(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "2")
	if noCR {
		w.Finish()
		return
	}
	w.ImgDir = filepath.Join(t.TempDir(), "images")
	if res := tryDump(t, w.Pid, w.ImgDir, "-s"); res.ExitCode != 0 {
		t.Fatalf("dump -s: %s", res)
	}
	waitState := func(what string, want byte) {
		t.Helper()
		st := ""
		for deadline := time.Now().Add(bound(t, restoreReadyTimeout)); time.Now().Before(deadline); time.Sleep(pollInterval) {
			if st = procStatus(fmt.Sprintf("/proc/%d/status", w.Pid))["State"]; st != "" && st[0] == want {
				return
			}
		}
		w.logAll()
		t.Fatalf("%s: process %d is in state %q, want %c", what, w.Pid, st, want)
	}
	waitState("after dump -s", 'T')
	if err := unix.Kill(w.Pid, unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState("after SIGCONT", 'S')
	w.orig.kill(t)
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	w.rst, w.rstOut, w.rstErr = restore(t, w.ImgDir, "-d", "--leave-stopped")
	w.detach = true
	if !w.rst.Wait(bound(t, restoreReadyTimeout)) || w.rst.ExitCode() != 0 {
		w.logAll()
		t.Fatalf("cryo restore -d --leave-stopped: exit %d", w.rst.ExitCode())
	}
	waitState("after restore --leave-stopped", 'T')
	if err := unix.Kill(w.Pid, unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	w.Finish()
}

// TestE2EShowJSON: `cryo show DIR` and `cryo show FILE` print valid JSON.
func TestE2EShowJSON(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	w.Checkpoint()

	res := runCryo(t, "show", w.ImgDir)
	if res.ExitCode != 0 || !json.Valid([]byte(res.Stdout)) {
		t.Errorf("cryo show DIR: exit %d, valid JSON %v\n%s", res.ExitCode, json.Valid([]byte(res.Stdout)), res)
	} else if !strings.Contains(res.Stdout, strconv.Itoa(w.Pid)) {
		t.Errorf("cryo show DIR: the JSON does not mention the pid %d", w.Pid)
	}
	for _, f := range []string{"inventory.img", "pstree.img", fmt.Sprintf("core-%d.img", w.Pid), fmt.Sprintf("mm-%d.img", w.Pid), fmt.Sprintf("pagemap-%d.img", w.Pid)} {
		res := runCryo(t, "show", filepath.Join(w.ImgDir, f))
		if res.ExitCode != 0 || !json.Valid([]byte(res.Stdout)) || strings.TrimSpace(res.Stdout) == "" {
			t.Errorf("cryo show %s: exit %d, valid JSON %v\n%s", f, res.ExitCode, json.Valid([]byte(res.Stdout)), res)
		}
	}
}

// TestE2EDumpNoSuchPID: dumping a PID that does not exist fails with exactly
// one "cryo: ..." line naming the pid, no panic.
func TestE2EDumpNoSuchPID(t *testing.T) {
	requireCryo(t)
	pid := freePid(t)
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, pid, dir)
	t.Logf("%s", res)
	assertOneErrorLine(t, res, strconv.Itoa(pid))
	checkNoStrayCryo(t, "after the failed dump")
}

// TestE2ELeaveRunning: dump --leave-running leaves the original running and
// intact (it passes when SIGTERMed); the images it wrote restore correctly
// once the original is gone.
func TestE2ELeaveRunning(t *testing.T) {
	requireCryo(t)
	t.Run("original-continues", func(t *testing.T) {
		w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
		w.Checkpoint("--leave-running")
		for _, tid := range w.Tids {
			if _, err := os.Stat(filepath.Join(w.ImgDir, fmt.Sprintf("core-%d.img", tid))); err != nil {
				t.Errorf("image of thread %d: %v", tid, err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		w.assertRunningUntouched("300 ms after dump --leave-running")
		w.Finish()
	})
	t.Run("restore-from-images", func(t *testing.T) {
		w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
		w.Checkpoint("--leave-running")
		w.killOriginal()
		w.Restore()
		w.Finish()
	})
}

// TestE2ERestoreDetached: restore -d --pidfile returns 0 once the process
// runs, writes its PID to the pidfile; the process is not cryo's child and
// still passes.
func TestE2ERestoreDetached(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "4")
	w.Checkpoint()
	pidfile := filepath.Join(t.TempDir(), "restored.pid")
	w.Restore("-d", "--pidfile", pidfile)
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Errorf("pidfile: %v", err)
	} else if got := strings.TrimSpace(string(data)); got != strconv.Itoa(w.Pid) {
		t.Errorf("pidfile contains %q, want %d", got, w.Pid)
	}
	if ppid := procPPid(w.Pid); ppid == w.rst.Pid() {
		t.Errorf("restored process %d is still a child of the exited cryo %d", w.Pid, ppid)
	}
	w.Finish()
}

// TestE2ERestorePIDTaken: restoring while the original (dumped with
// --leave-running) still holds the PID fails with one "cryo:" line naming
// the PID; the original is untouched and still passes; no stub is left.
func TestE2ERestorePIDTaken(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	w.Checkpoint("--leave-running")
	res := runCryo(t, "restore", "-D", w.ImgDir, "-v", "4", "-o", "restore.log")
	t.Logf("%s", res)
	if res.ExitCode == 0 {
		logFile(t, filepath.Join(w.ImgDir, "restore.log"))
	}
	assertOneErrorLine(t, res, strconv.Itoa(w.Pid))
	checkNoStrayCryo(t, "after the failed restore")
	w.assertRunningUntouched("after the failed restore")
	w.Finish()
}

// TestE2EDumpUnsupportedFD: dumping a process holding an fd cryo cannot
// checkpoint (io_uring) fails with one "cryo:" line naming the fd, and
// leaves the process running untouched: it still passes its checks (fd
// table, offsets, flags) when SIGTERMed.
func TestE2EDumpUnsupportedFD(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "files", linkDynamic), "-t", "4", "iouring")
	m := regexp.MustCompile(`(?m)^IOURING fd=(\d+)$`).FindStringSubmatch(w.Output())
	if m == nil {
		t.Fatalf("the workload did not print its io_uring fd; output:\n%s", w.Output())
	}
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, w.Pid, dir)
	t.Logf("%s", res)
	if res.ExitCode == 0 {
		logFile(t, filepath.Join(dir, "dump.log"))
	}
	assertOneErrorLine(t, res)
	line := firstLine(res.Stderr)
	if !strings.Contains(strings.ToLower(line), "io_uring") && !regexp.MustCompile(`fd\D{0,3}`+m[1]+`\b`).MatchString(line) {
		t.Errorf("the error line names neither io_uring nor fd %s: %s", m[1], line)
	}
	checkNoStrayCryo(t, "after the failed dump")
	w.assertRunningUntouched("after the failed dump")
	w.Finish()
}

// freePid returns a PID with no process, near pid_max (PIDs are allocated
// upwards, so it stays free for the duration of the test).
func freePid(t *testing.T) int {
	t.Helper()
	max := 32768
	if data, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			max = n
		}
	}
	for pid := max - 1; pid > max-1000; pid-- {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return pid
		}
	}
	t.Fatal("no free pid found")
	return 0
}
