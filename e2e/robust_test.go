package e2e

// Reliability (issue 9, points 3 to 8): a restore right after a killed
// one, an image directory that runs out of room, concurrent restores and
// dumps, resource limits, and processes cryo cannot stop (vfork). See
// docs/reliability-limits.md.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// imageDigests hashes every image file of dir (not the logs, nor the
// statistics a restore writes, nor their temporary file), to tell whether a restore changed them.
func imageDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".log") || strings.HasPrefix(n, "stats-") || strings.HasPrefix(n, ".stats-") {
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

// startNSTree starts the unix_inflight tree as pid 1 of its own pid
// namespace under unshare(1) with the given flags (-pf: the pid namespace
// belongs to the initial user namespace; -Urpf: to a user namespace of
// the tree's own) and returns the launcher, the tree's root and its
// output file.
func startNSTree(t *testing.T, flags string) (launcher *bgProc, root int, out string) {
	t.Helper()
	requireRoot(t)
	bin := workloadBin(t, "unix_inflight", linkDynamic)
	dir := t.TempDir()
	out = filepath.Join(dir, "output.txt")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command("unshare", flags, "--mount-proc", bin, "tree")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if launcher, err = startBg(t, "unshare", cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { launcher.kill(t) })
	waitFor(t, readyTimeout, "the tree under unshare "+flags+" is READY", func() bool {
		if launcher.Exited() {
			t.Fatalf("unshare %s exited; output:\n%s", flags, clip(readString(out), 8000))
		}
		return readyRe.MatchString(readString(out))
	})
	root = -1
	for _, pid := range allPids() {
		if procPPid(pid) == launcher.Pid() {
			root = pid
		}
	}
	if root < 0 || nsInnerPid(root) != 1 {
		t.Fatalf("no pid 1 of a new pid namespace under unshare %d (found %d)", launcher.Pid(), root)
	}
	t.Cleanup(func() { unix.Kill(root, unix.SIGKILL) })
	return launcher, root, out
}

// TestE2ERobustConcurrentRestores: two trees with pid namespaces of their
// own are dumped, then restored by two cryos started at the same moment,
// three times over, for trees whose pid namespace belongs to the initial
// user namespace (both PIDs chosen by set_tid). Both restores succeed
// every time, every process is back at its PIDs, and both trees pass
// their own checks. Trees with a user namespace of their own (-Urpf) are
// left out: their outer PIDs still come from ns_last_pid, which a task of
// the machine can beat (see docs/reliability-limits.md).
func TestE2ERobustConcurrentRestores(t *testing.T) {
	requireCryo(t)
	for _, flags := range []string{"-pf"} {
		t.Run(strings.TrimPrefix(flags, "-"), func(t *testing.T) {
			for round := 0; round < 3; round++ {
				type tree struct {
					launcher *bgProc
					root     int
					out, dir string
				}
				var trees []tree
				for i := 0; i < 2; i++ {
					l, root, out := startNSTree(t, flags)
					dir := filepath.Join(t.TempDir(), "images")
					if res := tryDump(t, root, dir); res.ExitCode != 0 {
						logFile(t, filepath.Join(dir, "dump.log"))
						t.Fatalf("round %d: dump of tree %d: %s", round, i, res)
					}
					l.Wait(bound(t, finishTimeout))
					trees = append(trees, tree{l, root, out, dir})
				}
				for _, tr := range trees {
					if err := waitPidFree(tr.root, bound(t, pidFreeTimeout)); err != nil {
						t.Fatal(err)
					}
				}
				var rsts []*bgProc
				for _, tr := range trees {
					p, _, _ := restore(t, tr.dir, "-d")
					rsts = append(rsts, p)
				}
				for i, p := range rsts {
					if !p.Wait(bound(t, restoreReadyTimeout)) || p.ExitCode() != 0 {
						logFile(t, filepath.Join(trees[i].dir, "restore.log"))
						t.Fatalf("round %d: the restore of tree %d beside another failed: exit %d", round, i, p.ExitCode())
					}
				}
				for i, tr := range trees {
					if nsInnerPid(tr.root) != 1 {
						t.Fatalf("round %d: tree %d: pid %d is not pid 1 of its pid namespace", round, i, tr.root)
					}
					if err := unix.Kill(tr.root, unix.SIGTERM); err != nil {
						t.Fatal(err)
					}
				}
				for i, tr := range trees {
					if err := waitPidFree(tr.root, bound(t, finishTimeout)); err != nil {
						t.Fatalf("round %d: tree %d did not exit after SIGTERM: %v", round, i, err)
					}
					if text := readString(tr.out); !strings.Contains(text, "PASS") || strings.Contains(text, "FAIL") {
						t.Errorf("round %d: restored tree %d failed its checks:\n%s", round, i, clip(text, 8000))
					}
				}
			}
		})
	}
}

// TestE2ERobustSecondDumpRefused: while a dump holds a process (its
// verbose log goes to its stderr, a pipe the test keeps full, so the dump
// waits at its first log line once the tree is seized), a second dump of
// the same process is refused in one line without touching it; once the
// pipe is drained the first dump finishes, and the process (dumped with
// --leave-running) runs on and passes its own checks. (A log file may not
// be a FIFO: -o refuses anything but a regular file.)
func TestE2ERobustSecondDumpRefused(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	size, err := unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "images")
	cmd, stdout, _ := cryoCommand(t, "dump", "-t", fmt.Sprint(w.Pid), "-D", dir, "--leave-running", "-v", "4")
	cmd.Stderr = pw
	first, err := startBg(t, "cryo dump", cmd)
	pw.Close() // the dump holds the write end
	if err != nil {
		t.Fatal(err)
	}
	var (
		logMu sync.Mutex
		log   []byte
	)
	logText := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return clip(string(bytes.TrimLeft(log, "\x00")), 4000)
	}
	waitFor(t, cryoTimeout, "the first dump seized the process", func() bool {
		if first.Exited() {
			t.Fatalf("the first dump exited early (status %d): %s", first.ExitCode(), readString(stdout))
		}
		// TracerPid names the tracing thread: one of cryo's.
		tp := procStatus(fmt.Sprintf("/proc/%d/status", w.Pid))["TracerPid"]
		if tp == "" || tp == "0" {
			return false
		}
		_, err := os.Stat(fmt.Sprintf("/proc/%d/task/%s", first.Pid(), tp))
		return err == nil
	})
	res := runCryo(t, "dump", "-t", fmt.Sprint(w.Pid), "-D", filepath.Join(t.TempDir(), "second"), "--leave-running")
	t.Logf("%s", res)
	assertOneErrorLine(t, res, fmt.Sprint(w.Pid), "being dumped by another cryo")
	if first.Exited() {
		t.Fatalf("the first dump ended while the second ran (status %d)", first.ExitCode())
	}
	// Drain the log: the first dump goes on.
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := pr.Read(b)
			logMu.Lock()
			log = append(log, b[:n]...)
			logMu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if !first.Wait(bound(t, cryoTimeout)) || first.ExitCode() != 0 {
		t.Fatalf("the first dump failed (status %d): %s", first.ExitCode(), logText())
	}
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
		t.Errorf("the first dump is not whole: %v", err)
	}
	w.assertRunningUntouched("after the two dumps")
	w.Finish()
}

// TestE2ERobustVfork: a process waiting in vfork for its child (state D
// until the child execs or exits) cannot be stopped: its dump (without
// --leave-running) is refused in one line, in bounded time, and neither it
// nor its child is touched; once the child is gone the process goes on
// and passes its own checks.
func TestE2ERobustVfork(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "vfork", linkDynamic))
	var child int
	waitFor(t, readyTimeout, "the vfork child says its pid", func() bool {
		_, err := fmt.Sscanf(findLine(w.Output(), "CHILD pid="), "CHILD pid=%d", &child)
		return err == nil
	})
	waitFor(t, readyTimeout, "the parent waits in vfork (state D)", func() bool {
		return strings.HasPrefix(procStatus(fmt.Sprintf("/proc/%d/status", w.Pid))["State"], "D")
	})
	res := tryDump(t, w.Pid, filepath.Join(t.TempDir(), "images"))
	t.Logf("%s", res)
	assertOneErrorLine(t, res, fmt.Sprint(w.Pid), "vfork")
	w.assertRunningUntouched("after the refused dump")
	if procStatus(fmt.Sprintf("/proc/%d/status", child))["TracerPid"] != "0" || !pidAlive(child) {
		t.Fatalf("the vfork child %d is not running untouched", child)
	}
	if err := unix.Kill(child, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, finishTimeout, "the parent leaves vfork", func() bool {
		return !strings.HasPrefix(procStatus(fmt.Sprintf("/proc/%d/status", w.Pid))["State"], "D")
	})
	w.Finish()
}

// TestE2ERobustLimits: a process at its RLIMIT_NOFILE (every descriptor
// below the soft limit taken) or its RLIMIT_AS (not one more page) is
// dumped and restored; it comes back with the same limits, still at them,
// and with its memory intact (its own checks).
func TestE2ERobustLimits(t *testing.T) {
	requireCryo(t)
	for _, mode := range []string{"nofile", "as"} {
		t.Run(mode, func(t *testing.T) {
			w := startWorkload(t, workloadBin(t, "limits", linkDynamic), mode)
			w.Checkpoint()
			w.Restore()
			w.Finish()
		})
	}
}

// TestE2ERobustSessionOutsider: a tree whose session holds a process
// outside the tree (an orphan of a subshell, reparented away) is refused
// in one line once that process has had a bounded time to exit, and the
// tree and the outsider run on untraced.
func TestE2ERobustSessionOutsider(t *testing.T) {
	requireCryo(t)
	cmd := exec.Command("sh", "-c", "(sleep 1000 &); exec sleep 1001")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	root, err := startBg(t, "session leader", cmd)
	if err != nil {
		t.Fatal(err)
	}
	// The orphan once the subshell that started it has exited: then the
	// session holds the leader and the orphan only.
	var outsider int
	waitFor(t, readyTimeout, "an orphan alone beside the leader in its session", func() bool {
		var others []int
		for _, pid := range allPids() {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || pid == root.Pid() {
				continue
			}
			f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
			if len(f) > 3 && f[3] == strconv.Itoa(root.Pid()) {
				others = append(others, pid)
			}
		}
		if len(others) != 1 {
			return false
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", others[0]))
		outsider = others[0]
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	t.Cleanup(func() { unix.Kill(outsider, unix.SIGKILL) })
	waitFor(t, readyTimeout, "the leader to exec sleep", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", root.Pid()))
		return strings.TrimSpace(string(b)) == "sleep"
	})
	res := tryDump(t, root.Pid(), filepath.Join(t.TempDir(), "images"))
	t.Logf("%s", res)
	assertOneErrorLine(t, res, fmt.Sprint(outsider), "not in its tree")
	for _, pid := range []int{root.Pid(), outsider} {
		if !pidAlive(pid) || procStatus(fmt.Sprintf("/proc/%d/status", pid))["TracerPid"] != "0" {
			t.Fatalf("process %d is not running untraced after the refused dump", pid)
		}
	}
}
