package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
