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

import "testing"

// nestedKinds are the namespace kinds of the sandbox tests, and the
// processes each tree has.
var nestedKinds = []struct {
	kind  string
	procs int
}{
	{"ipc", 3}, {"uts", 3}, {"mnt", 3}, {"pid", 4},
}

func init() {
	for _, k := range nestedKinds {
		usernsScenarios["sandbox-"+k.kind] = usernsScenario{bin: "sandbox", mode: k.kind, unshare: []string{"-c", "-i"},
			procs: k.procs, initPidNS: true}
	}
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
