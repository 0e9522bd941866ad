package e2e

// Nested namespaces as sandboxes make them (issue 14): the tree's root,
// started by the test user under `unshare -c -i`, forks a helper that
// clone()s a child into a new user namespace and one more namespace of
// each kind (testdata/sandbox.c), the way Firefox and Chromium put their
// content processes in sandboxes. Each kind is dumped and restored on its
// own, by root and by the user; the sandboxed process checks what only
// its namespace shows, the root that none of it leaks out, and the test
// compares the namespace layout (which processes share which namespace,
// maps, owners) before and after.

import (
	"path/filepath"
	"testing"
)

// nestedKinds are the namespace kinds of the sandbox tests, and the
// processes each tree has.
var nestedKinds = []struct {
	kind  string
	procs int
}{
	{"ipc", 3}, {"uts", 3}, {"mnt", 3},
}

func init() {
	for _, k := range nestedKinds {
		usernsScenarios["sandbox-"+k.kind] = usernsScenario{bin: "sandbox", mode: k.kind, unshare: []string{"-c", "-i"},
			procs: k.procs, initPidNS: true}
	}
	// pid 1 of a pid namespace owned by its own user namespace, with a
	// child, below the helper: not restorable yet
	usernsScenarios["sandbox-pid"] = usernsScenario{bin: "sandbox", mode: "pid", unshare: []string{"-c", "-i"}, procs: 4, initPidNS: true}
}

// TestE2ENestedNS: dumped and restored by root.
func TestE2ENestedNS(t *testing.T) {
	for _, k := range nestedKinds {
		t.Run(k.kind, func(t *testing.T) { usernsRunAsRoot(t, "sandbox-"+k.kind) })
	}
}

// TestE2ENestedNSRootless: dumped and restored by the test user; the tree
// comes back in a new pid namespace with its PIDs inside.
func TestE2ENestedNSRootless(t *testing.T) {
	for _, k := range nestedKinds {
		t.Run(k.kind, func(t *testing.T) { usernsRunRootless(t, "sandbox-"+k.kind) })
	}
}

// TestE2ENestedNSPidRefused: a pid namespace made below the tree's root
// (clone with CLONE_NEWUSER|CLONE_NEWPID, as bubblewrap and Chromium do)
// is refused by the dump in one line naming the process, and the tree runs
// on untouched: restore cannot make such a namespace yet, and a dump
// without --leave-running would otherwise have killed the tree for
// images no restore accepts.
func TestE2ENestedNSPidRefused(t *testing.T) {
	r := startUserns(t, usernsScenarios["sandbox-pid"])
	if noCR {
		r.Finish()
		return
	}
	r.ImgDir = filepath.Join(t.TempDir(), "images")
	res := tryDump(t, r.Pid, r.ImgDir)
	assertOneErrorLine(t, res, "nested pid namespaces", "not supported")
	after := r.view(t, "after the refused dump")
	nsCompareViews(t, r.before, after, false)
	r.Finish()
}
