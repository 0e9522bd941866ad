package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testCgroup is a cgroup a test made for its workload, removed at cleanup
// (its processes moved back to the parent first).
type testCgroup struct {
	t   *testing.T
	Dir string
}

// cgroup2Root returns a cgroup v2 hierarchy's root directory: one the
// machine has mounted, or one the test mounts (cgroup2 can be mounted any
// number of times), unmounted at cleanup. It skips the test only if the
// kernel has no cgroup v2.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(m, " - ")
		mf, pf := strings.Fields(pre), strings.Fields(post)
		if ok && len(mf) >= 5 && len(pf) >= 1 && pf[0] == "cgroup2" && mf[3] == "/" {
			if _, err := os.Stat(filepath.Join(mf[4], "cgroup.procs")); err == nil {
				return mf[4]
			}
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		t.Skipf("no cgroup v2 here: mount cgroup2: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// newCgroup makes a child cgroup of root for this test.
func newCgroup(t *testing.T, root string) *testCgroup {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("cryo-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		// A container may see its cgroups read-only: a hierarchy of
		// the test's own, if it may mount one, else nothing to test on.
		own := t.TempDir()
		fs, opts := "cgroup2", ""
		if _, err := os.Stat(filepath.Join(root, "memory.limit_in_bytes")); err == nil {
			fs, opts = "cgroup", "memory"
		}
		if merr := unix.Mount("none", own, fs, 0, opts); merr != nil {
			t.Skipf("no cgroup can be made here: %v; mount %s: %v", err, fs, merr)
		}
		t.Cleanup(func() { unix.Unmount(own, unix.MNT_DETACH) })
		dir = filepath.Join(own, filepath.Base(dir))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("no cgroup can be made here: %v", err)
		}
	}
	cg := &testCgroup{t: t, Dir: dir}
	t.Cleanup(cg.remove)
	return cg
}

// write writes value to a control file of the cgroup.
func (cg *testCgroup) write(file, value string) error {
	return os.WriteFile(filepath.Join(cg.Dir, file), []byte(value), 0o644)
}

// read reads a control file.
func (cg *testCgroup) read(file string) string {
	b, _ := os.ReadFile(filepath.Join(cg.Dir, file))
	return string(b)
}

// add moves process pid (all its threads) into the cgroup.
func (cg *testCgroup) add(pid int) {
	cg.t.Helper()
	if err := cg.write("cgroup.procs", strconv.Itoa(pid)); err != nil {
		cg.t.Fatalf("move %d into %s: %v", pid, cg.Dir, err)
	}
}

// freeze freezes (or thaws) the cgroup and waits until the kernel says it
// is (cgroup.events).
func (cg *testCgroup) freeze(on bool) {
	cg.t.Helper()
	v := map[bool]string{true: "1", false: "0"}[on]
	if err := cg.write("cgroup.freeze", v); err != nil {
		cg.t.Skipf("this kernel's cgroup v2 has no freezer: %v", err)
	}
	deadline := time.Now().Add(bound(cg.t, readyTimeout))
	for !strings.Contains(cg.read("cgroup.events"), "frozen "+v) {
		if time.Now().After(deadline) {
			cg.t.Fatalf("%s: cgroup.events does not say frozen %s:\n%s", cg.Dir, v, cg.read("cgroup.events"))
		}
		time.Sleep(pollInterval)
	}
}

// remove thaws the cgroup, moves what is left in it to the parent and
// removes it.
func (cg *testCgroup) remove() {
	_ = cg.write("cgroup.freeze", "0")
	parent := filepath.Join(filepath.Dir(cg.Dir), "cgroup.procs")
	for _, pid := range strings.Fields(cg.read("cgroup.procs")) {
		_ = os.WriteFile(parent, []byte(pid), 0o644)
	}
	deadline := time.Now().Add(killTimeout)
	for {
		err := os.Remove(cg.Dir)
		if err == nil || os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			cg.t.Errorf("cleanup: remove cgroup %s: %v", cg.Dir, err)
			return
		}
		time.Sleep(pollInterval)
	}
}
