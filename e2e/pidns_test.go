package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// checkRootIdsBySetTid checks, for a tree restored by root whose root is
// the init of its own pid namespace, that the restore chose both of the
// root's ids with clone3's set_tid (its log says so): not through
// ns_last_pid, where any process forking on the machine at that moment
// could take the outer PID first.
func checkRootIdsBySetTid(t *testing.T, imgDir string, pid int) {
	t.Helper()
	ns := strings.Fields(procStatus(fmt.Sprintf("/proc/%d/status", pid))["NSpid"])
	if len(ns) < 2 {
		return
	}
	log, err := os.ReadFile(filepath.Join(imgDir, "restore.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("restore pid %d: clone3 with set_tid {1, %d}: both ids chosen", pid, pid)
	if !strings.Contains(string(log), want) {
		t.Errorf("the restore log has no %q: the root's outer PID was not chosen by set_tid", want)
	}
}

func init() {
	// A pid namespace nested below the tree's root, with threads and a
	// grandchild inside (testdata/nestedpid.c).
	usernsScenarios["nestedpid"] = usernsScenario{bin: "nestedpid", unshare: []string{"-c", "-i"}, procs: 5, initPidNS: true}
	// The same two levels below cryo's: in an unshare -Urpf tree.
	usernsScenarios["nestedpid-Urpf"] = usernsScenario{bin: "nestedpid", unshare: []string{"-U", "-r", "-p", "-f", "--mount-proc"}, pidns: true, procs: 5}
}

// TestE2EPidnsNested: the root of a tree under `unshare -c -i` forks a
// helper, which clones a child into a new user and pid namespace (as a
// sandbox does); that child (pid 1 there, with a thread) forks a child
// with a thread, which forks one more. Dumped and restored by root, every
// process and thread is back at its ids at both levels (the test compares
// NSpid; the processes check getpid, gettid and getppid themselves), and
// the namespace layout (maps, owners, which processes share which
// namespace) is the same.
func TestE2EPidnsNested(t *testing.T) { usernsRunAsRoot(t, "nestedpid") }

// TestE2EPidnsNestedRootless: the same tree dumped and restored by the
// test user, who owns every user namespace of it: it comes back in a new
// pid namespace with its old PIDs inside, and the nested one below it
// with its ids there.
func TestE2EPidnsNestedRootless(t *testing.T) { usernsRunRootless(t, "nestedpid") }

// TestE2EPidnsNestedTwoLevelsRefused: the nested tree of TestE2EPidnsNested
// inside an `unshare -Urpf` tree puts its sandbox two pid namespaces below
// cryo's, which the restore cannot make: the dump refuses it in one line
// naming the depth, and the tree runs on untouched (it still passes its
// own checks).
func TestE2EPidnsNestedTwoLevelsRefused(t *testing.T) {
	r := startUserns(t, usernsScenarios["nestedpid-Urpf"])
	if noCR {
		r.Finish()
		return
	}
	r.ImgDir = filepath.Join(t.TempDir(), "images")
	res := tryDump(t, r.Pid, r.ImgDir)
	assertOneErrorLine(t, res, "nested 2 deep", "one level below cryo's")
	after := r.view(t, "after the refused dump")
	nsCompareViews(t, r.before, after, false)
	r.Finish()
}

// TestE2EPidnsNestedZombieInitRefused: the init of a nested pid namespace
// that exited and that its parent has not reaped cannot be made again
// (restore clones a nested pid namespace's init alive): the dump refuses it
// in one line, and the tree runs on untouched.
func TestE2EPidnsNestedZombieInitRefused(t *testing.T) {
	ensureTestUser(t)
	bin, err := filepath.EvalSymlinks(workloadBin(t, "nestedpid", linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	requireUserCanExec(t, bin)
	dir := usernsDir(t, 0o755)
	out := filepath.Join(filepath.Dir(dir), "output.txt")
	cmd := userCommand(t, dir, out, "unshare", "-c", "-i", bin, "zombie-init")
	p, err := startBg(t, "nestedpid zombie-init", cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill(t)
	deadline := time.Now().Add(bound(t, readyTimeout))
	for !readyRe.MatchString(readString(out)) {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("nestedpid zombie-init did not print READY (exited %v); output:\n%s", p.Exited(), readString(out))
		}
		time.Sleep(pollInterval)
	}
	if noCR {
		return
	}
	res := tryDump(t, p.Pid(), filepath.Join(t.TempDir(), "images"))
	assertOneErrorLine(t, res, "a zombie", "pid namespace below the tree's root")
	// The tree runs on: the root and the helper are not traced, and the
	// helper reaps the zombie once told to stop.
	if err := unix.Kill(p.Pid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(bound(t, finishTimeout)) {
		t.Fatalf("the tree did not finish after SIGTERM; output:\n%s", readString(out))
	}
	if text := readString(out); !strings.Contains(text, "PASS") {
		t.Errorf("after the refused dump the tree failed:\n%s", text)
	}
}
