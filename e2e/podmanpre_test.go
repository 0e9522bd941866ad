package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EPodmanPreCheckpoint: podman's incremental checkpoint with cryo as
// criu. `podman container checkpoint --pre-checkpoint` (runc checkpoint
// --pre-dump into the container's pre-checkpoint directory), then
// `--with-previous --keep` (runc checkpoint --parent-path ../pre-checkpoint),
// then `podman container restore`: the checkpoint links parent to the
// pre-checkpoint, cryo's log says the pages unchanged since were left in
// it, and the count goes on with no gap.
func TestE2EPodmanPreCheckpoint(t *testing.T) {
	requireCryo(t)
	for _, bin := range []string{"podman", "runc", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s (scripts/install-test-deps.sh): %v", bin, err)
		}
	}
	env := criuOnPath(t)
	tag := podmanBusybox(t, fmt.Sprintf("localhost/cryo-e2e-busybox-pre:%d", os.Getpid()))
	name := fmt.Sprintf("cryo-e2e-pre-%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command("podman", "rm", "-f", "-t", "0", name).Run()
		exec.Command("podman", "rmi", "-f", tag).Run()
	})
	if out, err := podman(t, env, "run", "-d", "--name", name, "--runtime", "runc", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", tag,
		"sh", "-c", `i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done`); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	waitPodmanCount(t, name, 0)
	if out, err := podman(t, env, "container", "checkpoint", "--pre-checkpoint", name); err != nil {
		t.Fatalf("podman container checkpoint --pre-checkpoint: %v\n%s", err, out)
	}
	// It runs on after the pre-checkpoint.
	nums := podmanCounts(t, name)
	waitPodmanCount(t, name, nums[len(nums)-1])
	if out, err := podman(t, env, "container", "checkpoint", "--with-previous", "--keep", name); err != nil {
		t.Fatalf("podman container checkpoint --with-previous: %v\n%s", err, out)
	}
	dir, err := podman(t, nil, "inspect", "-f", "{{.StaticDir}}", name)
	if err != nil {
		t.Fatalf("podman inspect: %v\n%s", err, dir)
	}
	dir = strings.TrimSpace(dir)
	if link, err := os.Readlink(filepath.Join(dir, "checkpoint", "parent")); err != nil || link != "../pre-checkpoint" {
		t.Errorf("checkpoint/parent: %q, %v; want ../pre-checkpoint", link, err)
	}
	if log := readString(filepath.Join(dir, "dump.log")); !strings.Contains(log, "unchanged since") || strings.Contains(log, "memory tracking lost") {
		t.Errorf("the checkpoint did not use the pre-checkpoint's tracking:\n%s", clip(log, 1500))
	}
	before := podmanCounts(t, name)
	n := before[len(before)-1]
	if out, err := podman(t, env, "container", "restore", name); err != nil {
		t.Fatalf("podman container restore: %v\n%s", err, out)
	}
	nums = waitPodmanCount(t, name, n+10)
	for i, got := range nums {
		if got != i {
			t.Fatalf("the restored container's count broke at line %d: %d", i, got)
		}
	}
}
