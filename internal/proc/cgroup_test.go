package proc

import (
	"os"
	"testing"
)

// TestCgroupSelf: the test's own cgroups resolve to directories that
// exist, and a headroom, if any, names one of them.
func TestCgroupSelf(t *testing.T) {
	pid := os.Getpid()
	for _, c := range []string{"", "memory", "freezer"} {
		if dir := CgroupDir(pid, c); dir != "" {
			if _, err := os.Stat(dir + "/cgroup.procs"); err != nil {
				t.Errorf("controller %q: %s has no cgroup.procs: %v", c, dir, err)
			}
		}
	}
	if FrozenCgroup(pid) != "" {
		t.Errorf("the test runs, yet its cgroup %s is said to be frozen", FrozenCgroup(pid))
	}
	if room, ok := MemcgHeadroom(pid); ok && room.Dir == "" {
		t.Errorf("a headroom of %d bytes with no cgroup", room.Bytes)
	}
}
