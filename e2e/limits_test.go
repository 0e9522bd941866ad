package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestE2ERobustLimitsSnapshot: a process at its RLIMIT_NOFILE, RLIMIT_AS
// or RLIMIT_NPROC (uid 47113's only process, limit 1: it cannot fork) is
// dumped with --leave-running, where cryo copies memory from a snapshot
// child that an injected clone makes: at RLIMIT_NPROC the clone fails, and
// the dump falls back to copying while frozen, as its log says. Each time
// the process runs on untouched; then it is dumped, restored, and passes
// its own checks (same limits, still at them, memory intact).
func TestE2ERobustLimitsSnapshot(t *testing.T) {
	requireCryo(t)
	for _, mode := range []string{"nofile", "as", "nproc"} {
		t.Run(mode, func(t *testing.T) {
			w := startWorkload(t, workloadBin(t, "limits", linkDynamic), mode)
			log := filepath.Join(t.TempDir(), "dump.log")
			dump(t, w.Pid, t.TempDir(), "--leave-running", "-v", "4", "-o", log)
			w.assertRunningUntouched("after dump --leave-running")
			if mode == "nproc" && !strings.Contains(readString(log), "no snapshot") {
				t.Errorf("at RLIMIT_NPROC the log does not say the dump copied without a snapshot:\n%s", clip(readString(log), 4000))
			}
			w.Checkpoint()
			w.Restore()
			w.Finish()
		})
	}
}

// TestE2ERobustLimitsRestoreNofile: cryo restore run with a hard
// RLIMIT_NOFILE of 32 restores a process that holds 64 descriptors. With
// CAP_SYS_RESOURCE cryo raises its limit for the restore and the process
// comes back whole; without it (some containers' root) the restore
// fails in one line naming RLIMIT_NOFILE, leaves nothing at the
// process's PID, and a restore with the usual limit then works.
func TestE2ERobustLimitsRestoreNofile(t *testing.T) {
	requireCryo(t)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed: %v", err)
	}
	w := startWorkload(t, workloadBin(t, "limits", linkDynamic), "nofile")
	w.Checkpoint()
	res := faultRun(t, prlimit, nil, -1, "--nofile=32:32", cryoBin, "restore", "-D", w.ImgDir, "-d")
	if hasCap(t, unix.CAP_SYS_RESOURCE) {
		if res.ExitCode != 0 {
			t.Fatalf("restore under a hard RLIMIT_NOFILE of 32, with CAP_SYS_RESOURCE: %s", res)
		}
		w.detach = true
		if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
			t.Fatal(err)
		}
	} else {
		assertOneErrorLine(t, res, "RLIMIT_NOFILE", "32")
		if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
			t.Fatalf("after the refused restore: %v", err)
		}
		w.Restore()
	}
	w.Finish()
}

// hasCap tells whether the test process has capability c in its
// effective set.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	eff, err := strconv.ParseUint(procStatus("/proc/self/status")["CapEff"], 16, 64)
	if err != nil {
		t.Fatalf("CapEff: %v", err)
	}
	return eff&(1<<uint(c)) != 0
}

// memcg is a memory cgroup a test made: cgroup v2 with the memory
// controller, or the v1 memory controller's hierarchy.
type memcg struct {
	*testCgroup
	v1 bool
}

// newMemcg makes a memory cgroup: in a cgroup v2 hierarchy whose root
// offers the memory controller (enabled for its children if need be),
// otherwise in the v1 memory hierarchy the machine mounted, otherwise in
// one the test mounts.
func newMemcg(t *testing.T) *memcg {
	t.Helper()
	root := cgroup2Root(t)
	if strings.Contains(" "+readString(filepath.Join(root, "cgroup.controllers"))+" ", " memory") {
		sub := filepath.Join(root, "cgroup.subtree_control")
		if !strings.Contains(readString(sub), "memory") {
			if err := os.WriteFile(sub, []byte("+memory"), 0o644); err != nil {
				t.Fatalf("enable the memory controller in %s: %v", root, err)
			}
		}
		return &memcg{testCgroup: newCgroup(t, root)}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(m, " - ")
		mf, pf := strings.Fields(pre), strings.Fields(post)
		if ok && len(mf) >= 5 && len(pf) >= 3 && pf[0] == "cgroup" && mf[3] == "/" && strings.Contains(","+pf[2]+",", ",memory,") {
			return &memcg{testCgroup: newCgroup(t, mf[4]), v1: true}
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("cgroup", dir, "cgroup", 0, "memory"); err != nil {
		t.Skipf("no memory cgroup controller here (cgroup v2 without it, v1: %v)", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return &memcg{testCgroup: newCgroup(t, dir), v1: true}
}

// usage is the cgroup's memory usage in bytes.
func (m *memcg) usage() uint64 {
	f := map[bool]string{false: "memory.current", true: "memory.usage_in_bytes"}[m.v1]
	n, err := strconv.ParseUint(strings.TrimSpace(m.read(f)), 10, 64)
	if err != nil {
		m.t.Fatalf("%s/%s: %v", m.Dir, f, err)
	}
	return n
}

// limit sets the cgroup's memory limit.
func (m *memcg) limit(bytes uint64) {
	m.t.Helper()
	f := map[bool]string{false: "memory.max", true: "memory.limit_in_bytes"}[m.v1]
	if err := m.write(f, strconv.FormatUint(bytes, 10)); err != nil {
		m.t.Fatalf("%s/%s = %d: %v", m.Dir, f, bytes, err)
	}
}

// ooms is how many processes the kernel killed in the cgroup for lack of
// memory.
func (m *memcg) ooms() int {
	f := map[bool]string{false: "memory.events", true: "memory.oom_control"}[m.v1]
	for _, l := range strings.Split(m.read(f), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// TestE2ERobustMemcg: a process (limits memcg: 16 MiB of a pattern) in a
// memory cgroup whose limit is set just above its usage. Every page cryo
// makes the kernel charge there could make it kill the process.
//   - 128 KiB of room: dump --leave-running is refused in one line naming
//     the cgroup (the scratch memory does not fit); the process runs on.
//   - 4 MiB of room: the scratch fits, a snapshot (which may need up to
//     the 16 MiB again) does not: the dump falls back to copying while
//     frozen, as its log says, and succeeds.
//   - cryo restore run inside that cgroup (its memory is charged there)
//     is refused in one line before it makes anything: nothing at the
//     PID; restored outside, the process passes its own checks.
//
// The kernel never killed anything in the cgroup.
func TestE2ERobustMemcg(t *testing.T) {
	requireCryo(t)
	m := newMemcg(t)
	t.Setenv("CRYO_E2E_CGROUP_PROCS", filepath.Join(m.Dir, "cgroup.procs"))
	w := startWorkload(t, workloadBin(t, "limits", linkDynamic), "memcg")
	base := m.usage()
	if base < 16<<20 {
		t.Fatalf("the cgroup's usage is %d bytes, below the workload's 16 MiB: it is not charged there", base)
	}
	m.limit(base + 128<<10)
	res := tryDump(t, w.Pid, t.TempDir(), "--leave-running")
	assertOneErrorLine(t, res, "memory cgroup", m.Dir, "scratch")
	w.assertRunningUntouched("after the refused dump")

	m.limit(m.usage() + 4<<20)
	log := filepath.Join(t.TempDir(), "dump.log")
	dump(t, w.Pid, t.TempDir(), "--leave-running", "-v", "4", "-o", log)
	w.assertRunningUntouched("after dump --leave-running")
	if !strings.Contains(readString(log), "no snapshot") {
		t.Errorf("the log does not say the dump copied without a snapshot:\n%s", clip(readString(log), 4000))
	}

	w.Checkpoint()
	// cryo restore, from inside the cgroup: 14 MiB of room, for cryo
	// itself and the 16 MiB of the images.
	m.limit(m.usage() + 14<<20)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	script := `echo $$ > "$1" && exec "$2" restore -D "$3" -d`
	res = faultRun(t, sh, nil, -1, "-c", script, "sh", filepath.Join(m.Dir, "cgroup.procs"), cryoBin, w.ImgDir)
	assertOneErrorLine(t, res, "memory cgroup", m.Dir, "images hold")
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatalf("after the refused restore: %v", err)
	}
	if n := m.ooms(); n != 0 {
		t.Errorf("the kernel killed %d processes in %s for lack of memory", n, m.Dir)
	}
	w.Restore()
	w.Finish()
}
