package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runcForker makes orphans all the time: a subshell forks a usleep and
// exits at once, so the usleep is reparented to the container's init. A
// seize that walks the tree top down without the cgroup freezer can miss
// such a process (forked by one not yet seized, reparented to one already
// walked); with freeze_cgroup nothing forks while the tree is attached.
const runcForker = `{ while :; do (usleep 3000 &); usleep 5000; done & } && `

// setRuncArgs replaces the process args of bundle b's config.json.
func setRuncArgs(t *testing.T, b string, args ...string) {
	t.Helper()
	editSpec(t, b, func(spec map[string]any) { spec["process"].(map[string]any)["args"] = args })
}

// criuOnPath returns the environment that puts a `criu` link to cryo first
// on PATH. runc restore is run so, not with --criu: the test's runc helper
// gives the container's pipe to a command whose first argument is
// "restore", and restore hands runc's stdio to the restored container.
func criuOnPath(t *testing.T) []string {
	t.Helper()
	link := t.TempDir()
	if err := os.Symlink(cryoBin, filepath.Join(link, "criu")); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + link + ":" + os.Getenv("PATH")}
}

// requireRunc fails the test without runc (scripts/install-test-deps.sh).
func requireRunc(t *testing.T) {
	t.Helper()
	requireCryo(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc (scripts/install-test-deps.sh): %v", err)
	}
}

// TestE2ERuncPreDump: runc's incremental checkpoint with cryo as its
// criu. The container counts through a TCP connection inside it and forks
// orphans all the time. `runc checkpoint --pre-dump` (FEATURE_CHECK
// mem_track, then PRE_DUMP) leaves it running with its writes tracked by
// a keeper process; `runc checkpoint --parent-path ../pre` (DUMP with
// parent_img and track_mem, from another cryo process) saves only what
// was written since, and `runc restore` reads through the chain: the
// count goes on with no gap and runc says running with the dumped pid.
// Both dumps froze the container's cgroup (freeze_cgroup, which runc
// sends) while the tree was attached.
func TestE2ERuncPreDump(t *testing.T) {
	requireRunc(t)
	b := runcBundle(t, false, false)
	setRuncArgs(t, b, "sh", "-c", runcForker+runcScript)
	c := startRunc(t, b, fmt.Sprintf("cryo-e2e-pre-%d", os.Getpid()))
	n := c.waitCount(0)
	_, pid := c.state()

	chain := t.TempDir()
	pre, img := filepath.Join(chain, "pre"), filepath.Join(chain, "img")
	w1, w2 := t.TempDir(), t.TempDir()
	out, err := c.runc(nil, "--criu", cryoBin, "checkpoint", "--pre-dump", "--image-path", pre, "--work-path", w1, c.id)
	log1 := readString(filepath.Join(w1, "dump.log"))
	if err != nil {
		t.Fatalf("runc checkpoint --pre-dump: %v\n%s\n%s", err, out, log1)
	}
	for _, want := range []string{"threads attached while frozen", "memory tracking of", "pre-dump of"} {
		if !strings.Contains(log1, want) {
			t.Errorf("the pre-dump's log does not say %q:\n%s", want, clip(log1, 1500))
		}
	}
	if st, _ := c.state(); st != "running" {
		t.Fatalf("the container is %s after the pre-dump", st)
	}
	n = c.waitCount(n)

	out, err = c.runc(nil, "--criu", cryoBin, "checkpoint", "--tcp-established", "--parent-path", "../pre",
		"--image-path", img, "--work-path", w2, c.id)
	log2 := readString(filepath.Join(w2, "dump.log"))
	if err != nil {
		t.Fatalf("runc checkpoint --parent-path ../pre: %v\n%s\n%s", err, out, log2)
	}
	for _, want := range []string{"threads attached while frozen", "of its pages unchanged since " + pre} {
		if !strings.Contains(log2, want) {
			t.Errorf("the dump's log does not say %q:\n%s", want, clip(log2, 1500))
		}
	}
	if strings.Contains(log2, "memory tracking lost") {
		t.Errorf("the dump lost the pre-dump's tracking:\n%s", clip(log2, 1500))
	}
	if link, err := os.Readlink(filepath.Join(img, "parent")); err != nil || link != "../pre" {
		t.Errorf("img/parent: %q, %v; want ../pre", link, err)
	}
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	n = c.lastCount()
	out, err = c.runc(criuOnPath(t), "restore", "-d", "--tcp-established", "--image-path", img, "--work-path", w2, c.id)
	if err != nil {
		t.Fatalf("runc restore -d: %v\n%s\n%s", err, out, readString(filepath.Join(w2, "restore.log")))
	}
	c.waitCount(n + 10)
	c.checkNoGap()
	if st, rpid := c.state(); st != "running" || rpid != pid {
		t.Fatalf("after the restore runc says %s, pid %d (dumped %d)", st, rpid, pid)
	}
}

// TestE2ERuncFileLocks: a container holding a flock on a file of its
// tmpfs (testdata/ctflock.c) and counting. `runc checkpoint` without
// --file-locks is refused, naming the lock, the container running on;
// with --file-locks (file_locks over the RPC) it is checkpointed and
// restored: the count goes on with no gap and a new process in the
// container (runc exec) finds the file locked by another.
func TestE2ERuncFileLocks(t *testing.T) {
	requireRunc(t)
	b := runcBundle(t, false, false)
	data, err := os.ReadFile(workloadBin(t, "ctflock", linkStatic))
	if err == nil {
		err = os.WriteFile(filepath.Join(b, "rootfs/bin/ctflock"), data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	setRuncArgs(t, b, "sh", "-c", `{ ctflock hold /tmp/lockf >/dev/null & } &&
while ! { ctflock probe /tmp/lockf | grep -q locked-by-other; }; do usleep 10000; done &&
i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done`)
	c := startRunc(t, b, fmt.Sprintf("cryo-e2e-flock-%d", os.Getpid()))
	n := c.waitCount(0)
	_, pid := c.state()

	work := t.TempDir()
	out, err := c.runc(nil, "--criu", cryoBin, "checkpoint", "--image-path", t.TempDir(), "--work-path", work, c.id)
	if err == nil {
		t.Fatalf("a checkpoint of a container holding a lock succeeded without --file-locks:\n%s", out)
	}
	if line := dumpLogError(filepath.Join(work, "dump.log")); !strings.Contains(line, "--file-locks") {
		t.Errorf("the refusal in dump.log does not name --file-locks: %q", line)
	}
	if st, _ := c.state(); st != "running" {
		t.Fatalf("the container is %s after a refused checkpoint", st)
	}
	n = c.waitCount(n)

	img, work := t.TempDir(), t.TempDir()
	out, err = c.runc(nil, "--criu", cryoBin, "checkpoint", "--file-locks", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc checkpoint --file-locks: %v\n%s\n%s", err, out, readString(filepath.Join(work, "dump.log")))
	}
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	n = c.lastCount()
	out, err = c.runc(criuOnPath(t), "restore", "-d", "--file-locks", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc restore -d --file-locks: %v\n%s\n%s", err, out, readString(filepath.Join(work, "restore.log")))
	}
	c.waitCount(n + 5)
	c.checkNoGap()
	if got, err := c.runc(nil, "exec", c.id, "ctflock", "probe", "/tmp/lockf"); err != nil || strings.TrimSpace(got) != "locked-by-other" {
		t.Errorf("after the restore a probe of the lock says %q (%v), want locked-by-other", strings.TrimSpace(got), err)
	}
}

// setRuncMemoryLimit sets linux.resources.memory.limit in bundle b.
func setRuncMemoryLimit(t *testing.T, b string, limit int64) {
	t.Helper()
	editSpec(t, b, func(spec map[string]any) {
		linux := spec["linux"].(map[string]any)
		res, _ := linux["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			linux["resources"] = res
		}
		res["memory"] = map[string]any{"limit": limit}
	})
}

// memoryLimit reads the memory limit of process pid's cgroup: cgroup v1's
// memory.limit_in_bytes, or v2's memory.max on a v2-only machine.
func memoryLimit(t *testing.T, pid int) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(readString(fmt.Sprintf("/proc/%d/cgroup", pid))), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return strings.TrimSpace(readString(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")))
			}
		}
		if parts[1] == "" {
			if v := strings.TrimSpace(readString(filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"))); v != "" {
				return v
			}
		}
	}
	t.Fatalf("no memory cgroup for process %d", pid)
	return ""
}

// TestE2ERuncCgroupLimits: manage_cgroups mode full through runc. A
// container with a 64 MiB memory limit is checkpointed with
// --manage-cgroups-mode full: cryo saves its cgroups and their limits in
// cgroup.img (the memory limit among them, as cgroup v1 or v2 names it).
// runc 1.1.5 sends no mode with a restore (always the default, soft), so
// the restore sets nothing: the container comes back in the cgroups runc
// made, its count going on. Restores with full and strict are tested over
// the RPC (TestE2ESwrkCgroupLimits) and in-process (TestCgroupProps).
func TestE2ERuncCgroupLimits(t *testing.T) {
	requireRunc(t)
	b := runcBundle(t, false, false)
	setRuncArgs(t, b, "sh", "-c", `i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done`)
	setRuncMemoryLimit(t, b, 64<<20)
	c := startRunc(t, b, fmt.Sprintf("cryo-e2e-cg-%d", os.Getpid()))
	n := c.waitCount(0)
	_, pid := c.state()
	if got := memoryLimit(t, pid); got != fmt.Sprint(64<<20) {
		t.Fatalf("runc set the memory limit to %s, want %d", got, 64<<20)
	}
	img, work := t.TempDir(), t.TempDir()
	out, err := c.runc(nil, "--criu", cryoBin, "checkpoint", "--manage-cgroups-mode", "full", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc checkpoint --manage-cgroups-mode full: %v\n%s\n%s", err, out, readString(filepath.Join(work, "dump.log")))
	}
	if log := readString(filepath.Join(work, "dump.log")); !strings.Contains(log, "manage_cgroups mode full") {
		t.Errorf("dump.log does not say how manage_cgroups mode full was taken:\n%s", clip(log, 1500))
	}
	show := runCryo(t, "show", filepath.Join(img, "cgroup.img"))
	if show.ExitCode != 0 || !strings.Contains(show.Stdout, `"value": "67108864"`) {
		t.Errorf("cgroup.img does not hold the 64 MiB limit (%v):\n%s%s", show.Err, clip(show.Stdout, 1500), show.Stderr)
	}
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	n = c.lastCount()
	out, err = c.runc(criuOnPath(t), "restore", "-d", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc restore -d: %v\n%s\n%s", err, out, readString(filepath.Join(work, "restore.log")))
	}
	c.waitCount(n + 5)
	c.checkNoGap()
	if st, rpid := c.state(); st != "running" || rpid != pid {
		t.Fatalf("after the restore runc says %s, pid %d (dumped %d)", st, rpid, pid)
	}
}
