package dump

import (
	"os"
	"strings"
	"testing"
)

// TestOpenFreezerRefuses: freeze_cgroup must name a cgroup directory with
// a freezer under /sys/fs/cgroup that holds the tree's root; anything else
// is refused before the tree is touched.
func TestOpenFreezerRefuses(t *testing.T) {
	for _, c := range []struct{ dir, want string }{
		{"/tmp", "not a cgroup directory under /sys/fs/cgroup"},
		{"relative/dir", "not a cgroup directory under /sys/fs/cgroup"},
		{"/sys/fs/cgroup/../../tmp", "not a cgroup directory under /sys/fs/cgroup"},
		{"/sys/fs/cgroup/no-such-cgroup-for-cryo", "not a cgroup directory"},
	} {
		if _, err := openFreezer(c.dir, os.Getpid()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("openFreezer(%q): %v, want %q", c.dir, err, c.want)
		}
	}
	// The freezer hierarchy's root holds every process; pid 0 is in none.
	for _, root := range []string{"/sys/fs/cgroup/freezer", "/sys/fs/cgroup"} {
		f, err := openFreezer(root, os.Getpid())
		if err != nil {
			continue // not a freezer here (v2's root has no cgroup.freeze)
		}
		if f.wasFrozen {
			t.Errorf("%s: the root cgroup reads frozen", root)
		}
		if _, err := openFreezer(root, 0); err == nil || !strings.Contains(err.Error(), "process 0 is not in it") {
			t.Errorf("openFreezer(%q, 0): %v", root, err)
		}
	}
}
