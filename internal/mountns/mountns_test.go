package mountns

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

const sampleMountinfo = `24 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 24 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
65 24 0:41 / /tmp/a\040b/tmpfs rw,nosuid,nodev,relatime - tmpfs cryo-tmpfs rw,size=1024k,mode=750,uid=4242,gid=4242
66 24 254:0 /tmp/src /tmp/bind ro,relatime master:3 - ext4 /dev/vda rw
`

func TestParse(t *testing.T) {
	ms, err := Parse([]byte(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("%d mounts", len(ms))
	}
	tm := ms[2]
	if tm.ID != 65 || tm.Parent != 24 || tm.Dev != 41 || tm.Point != "/tmp/a b/tmpfs" || tm.FSType != "tmpfs" ||
		tm.Source != "cryo-tmpfs" || tm.SuperOpts != "rw,size=1024k,mode=750,uid=4242,gid=4242" || tm.Shared != 0 {
		t.Errorf("tmpfs line: %+v", tm)
	}
	if ms[0].Shared != 1 || ms[3].Master != 3 || ms[3].Dev != 254<<20 || ms[3].Root != "/tmp/src" {
		t.Errorf("propagation or dev: %+v %+v", ms[0], ms[3])
	}
	if got := Flags(ms[3].Opts); got != unix.MS_RDONLY|unix.MS_RELATIME {
		t.Errorf("flags %#x", got)
	}
	for _, bad := range []string{"1 2 3", "x 1 0:1 / / rw - ext4 a rw", "1 1 0:1 / / rw shared:1 ext4 a rw"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func entry(id, parent, dev uint32, fstype uint32, fsname, root, point string, ext bool) *mnt.MntEntry {
	return &mnt.MntEntry{MntId: proto.Uint32(id), ParentMntId: proto.Uint32(parent), RootDev: proto.Uint32(dev),
		Fstype: proto.Uint32(fstype), Fsname: proto.String(fsname), Root: proto.String(root),
		Mountpoint: proto.String(point), ExtMount: proto.Bool(ext)}
}

func TestPlan(t *testing.T) {
	base := []*mnt.MntEntry{
		entry(1, 0, 100, FstypeOther, "ext4", "/", "/", true),
		entry(2, 1, 200, FstypeOther, "tmpfs", "/", "/tmp", true),
		entry(3, 2, 300, FstypeTmpfs, "tmpfs", "/", "/tmp/t", false),
		entry(4, 2, 200, FstypeTmpfs, "tmpfs", "/src", "/tmp/bind", false), // /tmp/src via the host's /tmp
		entry(5, 2, 300, FstypeTmpfs, "tmpfs", "/sub", "/tmp/sub", false),  // a bind of the new tmpfs
		entry(6, 1, 400, FstypeProc, "proc", "/", "/proc", false),
	}
	steps, err := Plan(base)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind Kind
		from string
	}{{Inherited, ""}, {Inherited, ""}, {NewTmpfs, ""}, {Bind, "/tmp/src"}, {Bind, "/tmp/t/sub"}, {NewProc, ""}}
	for i, s := range steps {
		if s.Kind != want[i].kind || s.From != want[i].from {
			t.Errorf("step %d: kind %d from %q, want %d %q", i, s.Kind, s.From, want[i].kind, want[i].from)
		}
	}
	refused := map[string][]*mnt.MntEntry{
		"only tmpfs, proc, sysfs": {base[0], entry(7, 1, 500, FstypeOther, "ext4", "/", "/data", false)},
		"propagation": {base[0], func() *mnt.MntEntry {
			e := entry(7, 1, 500, FstypeTmpfs, "tmpfs", "/", "/t", false)
			e.SharedId = proto.Uint32(4)
			return e
		}()},
		"parent mount":    {base[0], entry(7, 9, 500, FstypeTmpfs, "tmpfs", "/", "/t", false)},
		"bad mount point": {base[0], entry(7, 1, 500, FstypeTmpfs, "tmpfs", "/", "/t/../etc", false)},
		"covered":         {base[0], entry(7, 1, 500, FstypeTmpfs, "tmpfs", "/", "/t", false), entry(8, 1, 600, FstypeTmpfs, "tmpfs", "/", "/t", false)},
		// a bind of a path hidden by a later mount has no source
		"overmounted": {base[0], base[1], entry(7, 2, 100, FstypeOther, "ext4", "/tmp/x", "/mnt", false)},
	}
	for why, es := range refused {
		if _, err := Plan(es); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(why)) {
			t.Errorf("%s: got %v", why, err)
		}
	}
}

func TestArchiveExtract(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "data"), bytes.Repeat([]byte("cryo"), 5000), 0o600))
	must(os.Mkdir(filepath.Join(src, "sub"), 0o700))
	must(os.Mkdir(filepath.Join(src, "empty"), 0o755))
	must(os.WriteFile(filepath.Join(src, "sub", "x"), []byte("x"), 0o755))
	must(os.Chown(filepath.Join(src, "sub", "x"), 4242, 4243))
	must(os.Chmod(filepath.Join(src, "sub", "x"), os.ModeSetuid|0o755))
	must(os.Symlink("../data", filepath.Join(src, "sub", "link")))
	must(os.Link(filepath.Join(src, "data"), filepath.Join(src, "hard")))
	must(os.Chmod(src, 0o750))
	var buf bytes.Buffer
	must(Archive(&buf, src))

	dst := t.TempDir()
	owners, err := Extract(bytes.NewReader(buf.Bytes()), dst)
	must(err)
	if len(owners) != 0 {
		t.Fatalf("owners left to the caller: %v", owners)
	}
	check := func(name string, mode os.FileMode, uid uint32) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Error(err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid {
			t.Errorf("%s: mode %v uid %d, want %v %d", name, fi.Mode(), st.Uid, mode, uid)
		}
	}
	check(".", os.ModeDir|0o750, 0)
	check("sub", os.ModeDir|0o700, 0)
	check("empty", os.ModeDir|0o755, 0)
	check("sub/x", os.ModeSetuid|0o755, 4242)
	check("sub/link", os.ModeSymlink|0o777, 0)
	if b, _ := os.ReadFile(filepath.Join(dst, "data")); !bytes.Equal(b, bytes.Repeat([]byte("cryo"), 5000)) {
		t.Error("data differs")
	}
	var a, b syscall.Stat_t
	syscall.Stat(filepath.Join(dst, "data"), &a)
	syscall.Stat(filepath.Join(dst, "hard"), &b)
	if a.Ino != b.Ino {
		t.Error("hard link lost")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "sub", "link")); l != "../data" {
		t.Errorf("link -> %q", l)
	}

	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err == nil {
		if err := Archive(&bytes.Buffer{}, src); err == nil || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("a FIFO archived: %v", err)
		}
	}
}

func TestExtractStaysBelow(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "escaped")
	for name, entries := range map[string][]tar.Header{
		"through a symlink to /": {
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "up" + outside, Typeflag: tar.TypeReg, Mode: 0o644},
		},
		"dot-dot": {
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "../../../../../../.." + outside, Typeflag: tar.TypeReg, Mode: 0o644},
		},
		"no root first": {
			{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644},
		},
		"a device other than a container's standard ones": {
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "sda", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 8, Devminor: 0},
		},
		"a block device": {
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "null", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 1, Devminor: 3},
		},
	} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			h := h
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
		}
		tw.Close()
		zw.Close()
		if _, err := Extract(bytes.NewReader(buf.Bytes()), t.TempDir()); err == nil {
			t.Errorf("%s: extracted", name)
		}
		if _, err := os.Stat(outside); err == nil {
			t.Fatalf("%s: a file was written outside the root", name)
		}
	}
	if _, err := Extract(bytes.NewReader([]byte("garbage")), t.TempDir()); err == nil {
		t.Error("garbage extracted")
	}
}

// TestPlanContainer: a container's namespace (its root not cryo's) is
// planned from its own root: external mounts by key, sysfs, devpts,
// mqueue and cgroup2 mounted afresh, masked paths as binds of a file of
// its /dev tmpfs; a mount of cryo's in it, or part of a cgroup v1
// hierarchy not given as external, is refused.
func TestPlanContainer(t *testing.T) {
	ext := entry(9, 8, 700, FstypeCgroup, "cgroup", "/ct", "/sys/fs/cgroup/cpu", false)
	ext.ExtKey = proto.String("/sys/fs/cgroup/cpu")
	es := []*mnt.MntEntry{
		entry(1, 0, 100, FstypeOther, "ext4", "/b/rootfs", "/", false),
		entry(2, 1, 200, FstypeProc, "proc", "/", "/proc", false),
		entry(3, 1, 300, FstypeTmpfs, "tmpfs", "/", "/dev", false),
		entry(4, 3, 400, FstypeDevpts, "devpts", "/", "/dev/pts", false),
		entry(5, 3, 500, FstypeMqueue, "mqueue", "/", "/dev/mqueue", false),
		entry(6, 1, 600, FstypeSysfs, "sysfs", "/", "/sys", false),
		entry(7, 2, 300, FstypeTmpfs, "tmpfs", "/null", "/proc/kcore", false),
		entry(8, 6, 800, FstypeTmpfs, "tmpfs", "/", "/sys/fs/cgroup", false),
		ext,
		entry(10, 1, 900, FstypeCgroup2, "cgroup2", "/", "/mnt", false),
	}
	if !IsContainer(es) || IsContainer(es[1:]) {
		t.Fatal("IsContainer")
	}
	steps, err := Plan(es)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{Root, NewProc, NewTmpfs, NewFS, NewFS, NewFS, Bind, NewTmpfs, External, NewFS}
	for i, s := range steps {
		if s.Kind != want[i] {
			t.Errorf("step %d (%s): kind %d, want %d", i, s.Entry.GetMountpoint(), s.Kind, want[i])
		}
	}
	if steps[6].From != "/dev/null" {
		t.Errorf("the masked path binds %q, want /dev/null", steps[6].From)
	}
	for why, bad := range map[string]*mnt.MntEntry{
		"a mount of cryo's in a container's namespace, not beneath": entry(11, 1, 990, FstypeOther, "ext4", "/", "/host", true),
		"part /ct of a cgroup v1 hierarchy":                         entry(11, 8, 991, FstypeCgroup, "cgroup", "/ct", "/sys/fs/cgroup/pids", false),
	} {
		if _, err := Plan(append(es[:len(es):len(es)], bad)); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: got %v", why, err)
		}
	}
}
