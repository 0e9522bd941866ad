package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EPodmanNetwork: a container on podman's default network (a bridge,
// its own net namespace, which podman makes and passes to criu as external
// net[INO]:extRootNetNS at checkpoint and with inherit_fd at restore) is
// checkpointed and restored in place: the tree joins the namespace podman
// made for the restore, with its address on eth0; the count goes on with
// no gap and the server on its loopback answers.
func TestE2EPodmanNetwork(t *testing.T) {
	requireCryo(t)
	for _, bin := range []string{"podman", "runc", "busybox", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s (scripts/install-test-deps.sh): %v", bin, err)
		}
	}
	env := criuOnPath(t)
	tag := podmanBusybox(t, fmt.Sprintf("localhost/cryo-e2e-busybox-net:%d", os.Getpid()))
	name := fmt.Sprintf("cryo-e2e-net-%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command("podman", "rm", "-f", "-t", "0", name).Run()
		exec.Command("podman", "rmi", "-f", tag).Run()
	})
	if out, err := podman(t, env, "run", "-d", "--name", name, "--runtime", "runc",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		"--tmpfs", "/tmp", tag, "sh", "-c", runcScript); err != nil {
		t.Fatalf("podman run (default network): %v\n%s", err, out)
	}
	waitPodmanCount(t, name, 0)
	if out, err := podman(t, env, "container", "checkpoint", "--keep", "--tcp-established", name); err != nil {
		t.Fatalf("podman container checkpoint: %v\n%s", err, out)
	}
	before := podmanCounts(t, name)
	n := before[len(before)-1]
	if out, err := podman(t, env, "container", "restore", "--keep", "--tcp-established", name); err != nil {
		t.Fatalf("podman container restore: %v\n%s", err, out)
	}
	nums := waitPodmanCount(t, name, n+10)
	for i, got := range nums {
		if got != i {
			t.Fatalf("the restored container's count broke at line %d: %d", i, got)
		}
	}
	if out, err := podman(t, env, "exec", name, "wget", "-qO-", "http://127.0.0.1:8080/index.html"); err != nil || strings.TrimSpace(out) != "served-from-tmpfs" {
		t.Errorf("the restored container's web server: %v: %q", err, out)
	}
	out, err := podman(t, nil, "inspect", "-f", "{{.State.Pid}} {{.NetworkSettings.IPAddress}} {{.StaticDir}}", name)
	f := strings.Fields(out)
	if err != nil || len(f) != 3 || f[1] == "" {
		t.Fatalf("podman inspect: %v\n%s", err, out)
	}
	addrs, err := exec.Command("nsenter", "-t", f[0], "-n", "ip", "-br", "addr").CombinedOutput()
	if err != nil || !strings.Contains(string(addrs), f[1]+"/") {
		t.Errorf("the restored container's net namespace lacks podman's address %s: %v\n%s", f[1], err, addrs)
	}
	if log := readString(filepath.Join(f[2], "restore.log")); !strings.Contains(log, "external net namespace extRootNetNS") {
		t.Errorf("the restore did not join the net namespace podman gave (extRootNetNS):\n%s", clip(log, 2000))
	}
}
