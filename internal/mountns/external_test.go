package mountns

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"google.golang.org/protobuf/proto"
)

// The host's mounts under /sys and /dev, as cryo sees them.
const hostMountinfo = `24 1 254:0 / / rw,relatime - ext4 /dev/vda rw
21 24 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
27 21 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
28 27 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
29 27 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
5 24 0:6 / /dev rw,nosuid,relatime - devtmpfs udev rw,mode=755
`

// A rootless runc container's, as runc 1.1.5 makes it: /sys an rbind of
// the host's (bringing the cgroup tmpfs and hierarchies along), runc's own
// tmpfs over /sys/fs/cgroup with binds of the hierarchies, /sys/firmware
// masked, device nodes bind-mounted from the host's /dev.
const rootlessMountinfo = `66 44 254:0 /b/rootfs / ro,relatime - ext4 /dev/vda rw
67 66 0:40 / /proc rw,relatime - proc proc rw
68 66 0:41 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755,uid=4242,gid=4242
72 66 0:21 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw
73 72 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
74 73 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
77 73 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
84 73 0:44 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755,uid=4242,gid=4242
85 84 0:28 / /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
88 84 0:29 /ct /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
95 68 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw,mode=755
52 72 0:47 / /sys/firmware ro,relatime - tmpfs tmpfs ro,uid=4242,gid=4242
`

func TestCameWithExternal(t *testing.T) {
	own, err := Parse([]byte(hostMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := Parse([]byte(rootlessMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"/sys": "/sys", "/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu",
		"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory", "/dev/null": "/dev/null"}
	with := CameWithExternal(theirs, own, ext)
	for id, want := range map[uint32]bool{73: true, 74: true, 77: true, 72: false, 84: false, 85: false, 88: false, 95: false, 52: false} {
		if with[id] != want {
			t.Errorf("mount %d came with an external mount: %v, want %v", id, with[id], want)
		}
	}
	// Without /sys given as external, nothing came with anything.
	delete(ext, "/sys")
	if with := CameWithExternal(theirs, own, ext); len(with) != 0 {
		t.Errorf("without /sys external: %v", with)
	}
}

func TestPlanRootlessContainer(t *testing.T) {
	sys := entry(72, 66, 21, FstypeSysfs, "sysfs", "/", "/sys", false)
	sys.ExtKey = proto.String("/sys")
	cpu := entry(85, 84, 28, FstypeCgroup, "cgroup", "/", "/sys/fs/cgroup/cpu", false)
	cpu.ExtKey = proto.String("/sys/fs/cgroup/cpu")
	null := entry(95, 68, 6, FstypeOther, "devtmpfs", "/null", "/dev/null", false)
	null.ExtKey = proto.String("/dev/null")
	es := []*mnt.MntEntry{
		entry(66, 44, 100, FstypeOther, "ext4", "/b/rootfs", "/", false),
		entry(68, 66, 41, FstypeTmpfs, "tmpfs", "/", "/dev", false),
		sys,
		entry(73, 72, 27, FstypeTmpfs, "tmpfs", "/", "/sys/fs/cgroup", true),
		entry(74, 73, 28, FstypeCgroup, "cgroup", "/", "/sys/fs/cgroup/cpu", true),
		entry(84, 73, 44, FstypeTmpfs, "tmpfs", "/", "/sys/fs/cgroup", false),
		cpu,
		null,
		entry(52, 72, 47, FstypeTmpfs, "tmpfs", "/", "/sys/firmware", false),
	}
	steps, err := Plan(es)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{Root, NewTmpfs, External, WithExternal, WithExternal, NewTmpfs, External, External, NewTmpfs}
	for i, s := range steps {
		if s.Kind != want[i] {
			t.Errorf("step %d (%s): kind %d, want %d", i, s.Entry.GetMountpoint(), s.Kind, want[i])
		}
	}
	if !steps[2].Recursive || steps[6].Recursive || steps[7].Recursive {
		t.Errorf("recursive binds: /sys %v, cgroup cpu %v, /dev/null %v; want only /sys", steps[2].Recursive, steps[6].Recursive, steps[7].Recursive)
	}
	// A mount of the host's is accepted only beneath an external mount;
	// a mount id met twice (the images are untrusted) is refused.
	for why, bad := range map[string]*mnt.MntEntry{
		"not beneath an external mount":  entry(99, 68, 6, FstypeOther, "devtmpfs", "/", "/dev/x", true),
		"not beneath an external mount ": entry(99, 95, 6, FstypeOther, "devtmpfs", "/", "/elsewhere", true),
		"twice":                          entry(73, 74, 28, FstypeCgroup, "cgroup", "/", "/sys/fs/cgroup/cpu/x", true),
	} {
		if _, err := Plan(append(es[:len(es):len(es)], bad)); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(why)) {
			t.Errorf("%s: got %v", why, err)
		}
	}
}

// FuzzPlan feeds Plan arbitrary mount tables (from an image: untrusted),
// each mount marked the host's or external by the bits of flags. It must
// plan or refuse, never panic.
func FuzzPlan(f *testing.F) {
	f.Add([]byte(rootlessMountinfo), []byte{0, 0, 0, 2, 1, 1, 0, 0, 2, 2, 0})
	f.Add([]byte(hostMountinfo), []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, info, flags []byte) {
		ms, err := Parse(info)
		if err != nil || len(ms) > 64 {
			return
		}
		es := make([]*mnt.MntEntry, len(ms))
		for i, m := range ms {
			var bits byte
			if i < len(flags) {
				bits = flags[i]
			}
			es[i] = entry(m.ID, m.Parent, m.Dev, Fstype(m.FSType), m.FSType, m.Root, m.Point, bits&1 != 0)
			if bits&2 != 0 {
				es[i].ExtKey = proto.String(m.Point)
			}
		}
		Plan(es)
	})
}
