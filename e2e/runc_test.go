package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runcScript is the container's process: a web server on its loopback
// serving a file from a tmpfs, and a count, one number a line, sent
// through a TCP connection inside the container to a netcat that prints
// it on the container's stdout. The count shows a gap or a restart, and
// stops if the connection is lost.
const runcScript = `mkdir -p /tmp/www && echo served-from-tmpfs > /tmp/www/index.html &&
httpd -p 127.0.0.1:8080 -h /tmp/www &&
{ sleep 1000000 | nc -l -p 9000 & } &&
while ! netstat -ltn | grep -q :9000; do usleep 10000; done &&
i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done | nc 127.0.0.1 9000`

// runcBundle makes an OCI bundle (runc spec, root or rootless) whose
// rootfs holds only a static busybox (Debian's busybox-static) with a
// tmpfs on /tmp, running runcScript, and returns its directory.
func runcBundle(t *testing.T, rootless bool, terminal bool) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox (package busybox-static, scripts/install-test-deps.sh): %v", err)
	}
	b := t.TempDir()
	os.Chmod(b, 0o755)
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(b, "rootfs", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "rootfs/bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep", "usleep", "nc", "httpd", "netstat", "grep", "mkdir", "wget", "cat", "echo"} {
		if err := os.Symlink("busybox", filepath.Join(b, "rootfs/bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"spec"}
	if rootless {
		args = append(args, "--rootless")
	}
	cmd := exec.Command("runc", args...)
	cmd.Dir = b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	editSpec(t, b, func(spec map[string]any) {
		process := spec["process"].(map[string]any)
		process["terminal"] = terminal
		process["args"] = []string{"sh", "-c", runcScript}
		spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
			"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777"}})
	})
	return b
}

// editSpec reads bundle b's config.json, lets edit change it, and writes
// it back.
func editSpec(t *testing.T, b string, edit func(spec map[string]any)) {
	t.Helper()
	path := filepath.Join(b, "config.json")
	var spec map[string]any
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	edit(spec)
	if data, err = json.MarshalIndent(spec, "", " "); err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is what a container wrote to its stdout pipe, read by a
// goroutine of the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// runcContainer is a container the test runs with runc, its stdout and
// stderr a pipe the test reads and keeps the write end of, to hand it
// again to runc restore (runc passes it to the engine with inherit_fd).
type runcContainer struct {
	t      *testing.T
	id     string
	bundle string
	global []string // runc's global flags
	out    *syncBuffer
	w      *os.File
	// prep, if set, adjusts each runc command before it starts (a
	// rootless container's runs as its user): args are runc's arguments
	// after the global flags.
	prep func(cmd *exec.Cmd, args []string)
}

// startRunc runs the bundle b with runc run -d under id.
func startRunc(t *testing.T, b, id string, global ...string) *runcContainer {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &runcContainer{t: t, id: id, bundle: b, global: global, out: &syncBuffer{}, w: w}
	go io.Copy(c.out, r)
	t.Cleanup(func() {
		exec.Command("runc", append(append([]string{}, global...), "delete", "-f", id)...).Run()
		w.Close()
		r.Close()
	})
	if out, err := c.runc(nil, "run", "-d", id); err != nil {
		t.Fatalf("runc run -d: %v\n%s\n%s", err, out, c.out.String())
	}
	return c
}

// runc runs runc ARGS in the bundle with env added, bounded by
// cryoTimeout; the container's stdio, if any, is its pipe.
func (c *runcContainer) runc(env []string, args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command("runc", append(append([]string{}, c.global...), args...)...)
	cmd.Dir, cmd.Env = c.bundle, append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if args[0] == "run" || args[0] == "restore" {
		cmd.Stdout, cmd.Stderr = c.w, c.w
	}
	if c.prep != nil {
		c.prep(cmd, args)
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(bound(c.t, cryoTimeout)):
		hung()
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("runc %s did not finish in time", strings.Join(args, " "))
	}
}

// state returns runc's status of the container and its init's pid.
func (c *runcContainer) state() (string, int) {
	c.t.Helper()
	out, err := c.runc(nil, "state", c.id)
	if err != nil {
		c.t.Fatalf("runc state: %v\n%s", err, out)
	}
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("runc state: %v\n%s", err, out)
	}
	return st.Status, st.Pid
}

// counts returns the numbers the container printed, in order.
func (c *runcContainer) counts() []int {
	var nums []int
	text := c.out.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i] // the last line may be half written
	} else {
		text = ""
	}
	for _, l := range strings.Split(text, "\n") {
		if n, err := strconv.Atoi(l); err == nil {
			nums = append(nums, n)
		}
	}
	return nums
}

// lastCount returns the last number the container printed, -1 if none.
func (c *runcContainer) lastCount() int {
	nums := c.counts()
	if len(nums) == 0 {
		return -1
	}
	return nums[len(nums)-1]
}

// waitCount waits until the container printed a number above n.
func (c *runcContainer) waitCount(n int) int {
	c.t.Helper()
	deadline := time.Now().Add(bound(c.t, restoreReadyTimeout))
	for time.Now().Before(deadline) {
		if got := c.lastCount(); got > n {
			return got
		}
		time.Sleep(pollInterval)
	}
	hung()
	c.t.Fatalf("the container's count did not pass %d; its output ends:\n%s", n, clip(c.out.String(), 400))
	return 0
}

// checkNoGap fails unless the count ran 0, 1, 2... without a gap or a
// restart: every number once, in order.
func (c *runcContainer) checkNoGap() {
	c.t.Helper()
	for i, n := range c.counts() {
		if n != i {
			c.t.Fatalf("the container's count broke at line %d: %d; its output:\n%s", i, n, clip(c.out.String(), 600))
		}
	}
}

// fetch asks the web server in the container, on its loopback, for the
// file in its tmpfs, from inside (runc exec).
func (c *runcContainer) fetch() (string, error) {
	c.t.Helper()
	out, err := c.runc(nil, "exec", c.id, "wget", "-qO-", "http://127.0.0.1:8080/index.html")
	return strings.TrimSpace(out), err
}

// waitServer waits until the container's web server answers.
func (c *runcContainer) waitServer() {
	c.t.Helper()
	deadline := time.Now().Add(bound(c.t, readyTimeout))
	for {
		got, err := c.fetch()
		if err == nil && got == "served-from-tmpfs" {
			return
		}
		if time.Now().After(deadline) {
			hung()
			c.t.Fatalf("the container's web server does not answer on its loopback: %v: %s", err, got)
		}
		time.Sleep(pollInterval)
	}
}

// dumpLogError returns the error line cryo wrote to a runc log.
func dumpLogError(path string) string {
	var line string
	for _, l := range strings.Split(readString(path), "\n") {
		if _, after, ok := strings.Cut(l, "Error: "); ok {
			line = after
		}
	}
	return line
}

// TestE2ERuncRoundTrip: runc drives cryo as its criu on a busybox
// container with a web server on its loopback, a file in a tmpfs and a
// count sent through a TCP connection inside it. A checkpoint cryo must
// refuse (auto_dedup) fails in one line in runc's log, the
// container running on; --leave-running checkpoints it and it runs on;
// then it is checkpointed with --tcp-established through a `criu` link on
// PATH and restored with runc restore -d; its connections are locked in
// its own net namespace, none in the host's. After that the count goes on
// with no gap (through the same TCP connection), the server answers with
// the tmpfs file, and the container is in the same cgroups.
func TestE2ERuncRoundTrip(t *testing.T) {
	requireCryo(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc (scripts/install-test-deps.sh): %v", err)
	}
	c := startRunc(t, runcBundle(t, false, false), fmt.Sprintf("cryo-e2e-%d", os.Getpid()))
	n := c.waitCount(0)
	c.waitServer()
	_, pid := c.state()
	cgroups := readString(fmt.Sprintf("/proc/%d/cgroup", pid))

	// Refused: the container runs on, the reason in runc's log.
	work := t.TempDir()
	out, err := c.runc(nil, "--criu", cryoBin, "checkpoint", "--auto-dedup", "--tcp-established",
		"--image-path", t.TempDir(), "--work-path", work, c.id)
	if err == nil {
		t.Fatalf("a checkpoint with auto_dedup succeeded:\n%s", out)
	}
	if line := dumpLogError(filepath.Join(work, "dump.log")); !strings.Contains(line, "cryo: options cryo cannot honour: auto_dedup") {
		t.Errorf("the refusal in dump.log does not name auto_dedup: %q\n%s", line, out)
	}
	if st, _ := c.state(); st != "running" {
		t.Fatalf("the container is %s after a refused checkpoint", st)
	}
	n = c.waitCount(n)

	// --leave-running: it runs on.
	work = t.TempDir()
	out, err = c.runc(nil, "--criu", cryoBin, "checkpoint", "--leave-running", "--tcp-established",
		"--image-path", t.TempDir(), "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc checkpoint --leave-running: %v\n%s\n%s", err, out, readString(filepath.Join(work, "dump.log")))
	}
	if st, _ := c.state(); st != "running" {
		t.Fatalf("the container is %s after checkpoint --leave-running", st)
	}
	n = c.waitCount(n)

	// The round trip, with criu found on PATH.
	link := t.TempDir()
	if err := os.Symlink(cryoBin, filepath.Join(link, "criu")); err != nil {
		t.Fatal(err)
	}
	path := []string{"PATH=" + link + ":" + os.Getenv("PATH")}
	img, work := t.TempDir(), t.TempDir()
	start := time.Now()
	out, err = c.runc(path, "checkpoint", "--tcp-established", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc checkpoint: %v\n%s\n%s", err, out, readString(filepath.Join(work, "dump.log")))
	}
	dumped := time.Since(start)
	// The connections inside the container were locked in its own net
	// namespace, which went with it: nothing is left in the host's.
	if log := readString(filepath.Join(work, "dump.log")); !strings.Contains(log, "TCP connections in the tree's net namespace") {
		t.Errorf("dump.log does not say the connections were locked in the container's namespace:\n%s", clip(log, 600))
	}
	if out, err := exec.Command("nft", "list", "table", "inet", fmt.Sprintf("cryo-%d", pid)).CombinedOutput(); err == nil {
		t.Errorf("a network lock table was left in the host's namespace:\n%s", out)
	}
	if out, err := c.runc(nil, "state", c.id); err == nil {
		t.Fatalf("the container is still there after its checkpoint:\n%s", out)
	}
	// The test is the subreaper of the container's init (runc run -d left
	// it): the dumped init is reaped, as a shim would, freeing its pid.
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	n = c.lastCount()
	start = time.Now()
	out, err = c.runc(path, "restore", "-d", "--tcp-established", "--image-path", img, "--work-path", work, c.id)
	if err != nil {
		t.Fatalf("runc restore -d: %v\n%s\n%s", err, out, readString(filepath.Join(work, "restore.log")))
	}
	t.Logf("runc checkpoint %v + runc restore %v (under the test's load)", dumped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	c.waitCount(n + 10)
	c.checkNoGap()
	c.waitServer()
	st, rpid := c.state()
	if st != "running" || rpid != pid {
		t.Fatalf("after the restore runc says %s, pid %d (dumped %d)", st, rpid, pid)
	}
	if got := readString(fmt.Sprintf("/proc/%d/cgroup", pid)); got != cgroups {
		t.Errorf("the restored container's cgroups differ from runc's:\n%s\nwant\n%s", got, cgroups)
	}
}
