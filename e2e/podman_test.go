package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podman runs podman ARGS with env added, bounded by cryoTimeout, and
// returns its stdout (stderr too on failure).
func podman(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String() + errOut.String(), err
		}
		return out.String(), nil
	case <-time.After(bound(t, cryoTimeout)):
		hung()
		cmd.Process.Kill()
		<-done
		return out.String() + errOut.String(), fmt.Errorf("podman %s did not finish in time", strings.Join(args, " "))
	}
}

// podmanCounts returns the numbers container name logged, in order.
func podmanCounts(t *testing.T, name string) []int {
	out, _ := podman(t, nil, "logs", name)
	var nums []int
	for _, l := range strings.Split(out, "\n") {
		if n, err := strconv.Atoi(l); err == nil {
			nums = append(nums, n)
		}
	}
	return nums
}

// waitPodmanCount waits until container name logged a number above n and
// returns its numbers.
func waitPodmanCount(t *testing.T, name string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(bound(t, restoreReadyTimeout))
	for {
		nums := podmanCounts(t, name)
		if len(nums) > 0 && nums[len(nums)-1] > n {
			return nums
		}
		if time.Now().After(deadline) {
			hung()
			out, _ := podman(t, nil, "logs", name)
			t.Fatalf("container %s's count did not pass %d; its log ends:\n%s", name, n, clip(out, 400))
		}
		time.Sleep(5 * pollInterval) // each look runs podman
	}
}

// TestE2EPodmanRoundTrip: podman, with runc as its runtime and cryo as the
// `criu` on PATH, checkpoints a busybox container (an image imported from
// a tarball, no pull) with --export, --keep, --print-stats and
// --tcp-established, and restores it with --import under another name.
// The restored container's count, sent through a TCP connection inside
// it, goes on with no gap in its log (podman refuses --tcp-established
// with --name on restore; the connections come back without it); its web
// server answers with the file in its tmpfs; it is in podman's cgroup for
// the new container, its seccomp filter (podman's default profile) is
// back; and the statistics podman prints are cryo's.
func TestE2EPodmanRoundTrip(t *testing.T) {
	requireCryo(t)
	for _, bin := range []string{"podman", "runc", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s (scripts/install-test-deps.sh): %v", bin, err)
		}
	}
	env := criuOnPath(t)
	tag := podmanBusybox(t, fmt.Sprintf("localhost/cryo-e2e-busybox:%d", os.Getpid()))
	name := fmt.Sprintf("cryo-e2e-%d", os.Getpid())
	name2 := name + "-imported"
	t.Cleanup(func() {
		exec.Command("podman", "rm", "-f", "-t", "0", name, name2).Run()
		exec.Command("podman", "rmi", "-f", tag).Run()
	})
	// Root here lacks CAP_SYS_RESOURCE: podman's default limits (the
	// maxima) make runc fail, lower ones work. podman's default seccomp
	// profile stays on.
	if out, err := podman(t, env, "run", "-d", "--name", name, "--runtime", "runc", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		"--tmpfs", "/tmp", tag, "sh", "-c", runcScript); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	waitPodmanCount(t, name, 0)
	archive := filepath.Join(t.TempDir(), "ct.tar")
	out, err := podman(t, env, "container", "checkpoint", "--export", archive, "--keep", "--print-stats", "--tcp-established", name)
	if err != nil {
		t.Fatalf("podman container checkpoint: %v\n%s", err, out)
	}
	var stats struct {
		Containers []struct {
			Criu map[string]int64 `json:"criu_statistics"`
		} `json:"container_statistics"`
	}
	if err := json.Unmarshal([]byte(out), &stats); err != nil || len(stats.Containers) != 1 || stats.Containers[0].Criu["frozen_time"] <= 0 {
		t.Errorf("podman --print-stats does not show cryo's dump statistics (%v):\n%s", err, out)
	}
	// --keep: cryo's log stays in the container's directory.
	if dir, err := podman(t, nil, "inspect", "-f", "{{.StaticDir}}", name); err != nil {
		t.Errorf("podman inspect: %v\n%s", err, dir)
	} else if log := readString(filepath.Join(strings.TrimSpace(dir), "dump.log")); !strings.Contains(log, "notify post-dump") {
		t.Errorf("with --keep, dump.log in %s does not hold cryo's log:\n%s", dir, clip(log, 400))
	}
	before := podmanCounts(t, name)
	n := before[len(before)-1]
	out, err = podman(t, env, "container", "restore", "--import", archive, "--name", name2, "--print-stats")
	if err != nil {
		t.Fatalf("podman container restore --import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "restore_time") {
		t.Errorf("podman --print-stats does not show cryo's restore statistics:\n%s", out)
	}
	nums := waitPodmanCount(t, name2, n+10)
	for i, got := range nums {
		if got != i {
			t.Fatalf("the restored container's count broke at line %d: %d", i, got)
		}
	}
	if out, err := podman(t, env, "exec", name2, "wget", "-qO-", "http://127.0.0.1:8080/index.html"); err != nil || strings.TrimSpace(out) != "served-from-tmpfs" {
		t.Errorf("the restored container's web server: %v: %q", err, out)
	}
	out, err = podman(t, nil, "inspect", "-f", "{{.State.Pid}} {{.Id}}", name2)
	pid, id, _ := strings.Cut(strings.TrimSpace(out), " ")
	if err != nil || id == "" {
		t.Fatalf("podman inspect: %v\n%s", err, out)
	}
	if cg := readString("/proc/" + pid + "/cgroup"); !strings.Contains(cg, "libpod-"+id) {
		t.Errorf("the restored container is not in podman's cgroup for it (libpod-%s):\n%s", id, cg)
	}
	if st := procStatus("/proc/" + pid + "/status"); st["Seccomp"] != "2" || st["Seccomp_filters"] == "0" {
		t.Errorf("the restored container lost podman's seccomp profile: Seccomp %q, filters %q", st["Seccomp"], st["Seccomp_filters"])
	}
}

// podmanBusybox imports the busybox-static rootfs of a runc bundle as
// podman image tag (nothing is pulled) and returns tag.
func podmanBusybox(t *testing.T, tag string) string {
	t.Helper()
	b := runcBundle(t, false, false)
	imp := exec.Command("podman", "import", "-", tag)
	tar := exec.Command("tar", "-C", filepath.Join(b, "rootfs"), "-c", ".")
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	tar.Wait()
	return tag
}
