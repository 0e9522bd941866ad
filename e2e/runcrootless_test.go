package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runcRootlessScript is a rootless container's process: it shares the
// host's net namespace (runc spec --rootless has none of its own), so its
// web server listens on the host's loopback, on a port the kernel picks
// (the test finds it), serving a file of the container's /tmp tmpfs; and a
// count, one number a line, goes to its stdout, a pipe the test reads.
const runcRootlessScript = `mkdir -p /tmp/www && echo served-from-tmpfs > /tmp/www/index.html &&
httpd -p 127.0.0.1:0 -h /tmp/www &&
i=0; while :; do echo $i; i=$((i+1)); usleep 20000; done`

// rootlessRunc is what the test user needs to drive runc: its state
// directory (runc --root, under XDG_RUNTIME_DIR) and environment, and the
// unshare options runc restore runs under.
type rootlessRunc struct {
	state   string
	env     []string
	unshare []string
}

// The user and mount namespaces a user's runc restore runs in (unshare
// options): its own uid and gid kept (setgroups denied, as unshare
// must), or, for a container over subordinate ids, those ids mapped to
// themselves too (through newuidmap and newgidmap), where setgroups stays
// allowed as the container's namespace needs it.
var (
	restoreOwnIDs = []string{"--map-current-user", "--keep-caps", "--mount"}
	restoreSubIDs = []string{"--map-user=" + strconv.Itoa(testUID), "--map-group=" + strconv.Itoa(testGID),
		fmt.Sprintf("--map-users=%d,%d,%d", subIDFirst, subIDFirst, subIDCount),
		fmt.Sprintf("--map-groups=%d,%d,%d", subIDFirst, subIDFirst, subIDCount), "--keep-caps", "--mount"}
)

// newRootlessRunc makes the user's XDG_RUNTIME_DIR (0700, the user's)
// and returns runc's global flags under it.
func newRootlessRunc(t *testing.T, unshare []string) *rootlessRunc {
	xdg := usernsDir(t, 0o700)
	return &rootlessRunc{state: filepath.Join(xdg, "runc"), env: []string{"XDG_RUNTIME_DIR=" + xdg, "HOME=" + xdg}, unshare: unshare}
}

// prep makes cmd (runc ARGS) run as the test user; a restore runs in a
// user and mount namespace of the user's, where it has the capabilities
// to bind the rootfs as runc restore does (runc 1.1.5 mounts it itself,
// before it starts cryo, and a normal user may not mount).
func (r *rootlessRunc) prep(cmd *exec.Cmd, args []string) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testUserCred()}
	cmd.Env = append(cmd.Env, r.env...)
	if len(args) > 0 && args[0] == "restore" {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			unshare = "/usr/bin/unshare"
		}
		cmd.Path = unshare
		cmd.Args = append(append(append([]string{"unshare"}, r.unshare...), "runc"), cmd.Args[1:]...)
	}
}

// rootlessBundle makes runcBundle's busybox bundle with runc spec
// --rootless for the test user (its ids mapped to root in the container),
// running runcRootlessScript, owned by the user and reachable by it. With
// subIDs the container maps 1-65536 to the user's subordinate ids too,
// and its process runs as uid and gid 1000 there (host 100999).
func rootlessBundle(t *testing.T, subIDs bool) string {
	b := runcBundle(t, true, false)
	// t.TempDir's parent is 0700: the user must reach the bundle.
	if err := os.Chmod(filepath.Dir(b), 0o755); err != nil {
		t.Fatal(err)
	}
	editSpec(t, b, func(spec map[string]any) {
		spec["process"].(map[string]any)["args"] = []string{"sh", "-c", runcRootlessScript}
		linux := spec["linux"].(map[string]any)
		linux["uidMappings"] = []map[string]int{{"containerID": 0, "hostID": testUID, "size": 1}}
		linux["gidMappings"] = []map[string]int{{"containerID": 0, "hostID": testGID, "size": 1}}
		if subIDs {
			sub := map[string]int{"containerID": 1, "hostID": subIDFirst, "size": subIDCount}
			linux["uidMappings"] = append(linux["uidMappings"].([]map[string]int), sub)
			linux["gidMappings"] = append(linux["gidMappings"].([]map[string]int), sub)
			spec["process"].(map[string]any)["user"] = map[string]int{"uid": 1000, "gid": 1000}
		}
	})
	if subIDs {
		// runc gives a tmpfs the mode of the directory beneath it.
		if err := os.Chmod(filepath.Join(b, "rootfs/tmp"), os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(b, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, testUID, testGID)
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listenPort returns the port of the TCP socket listening on 127.0.0.1
// that a process of pid's pid namespace holds, 0 if none yet.
func listenPort(pid int) int {
	listening := map[string]int{} // socket inode -> port
	for _, line := range strings.Split(readString(fmt.Sprintf("/proc/%d/net/tcp", pid)), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !strings.HasPrefix(f[1], "0100007F:") {
			continue
		}
		port, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0100007F:"), 16, 16)
		if err == nil {
			listening[f[9]] = int(port)
		}
	}
	pidns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return 0
	}
	for _, q := range allPids() {
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", q)); ns != pidns {
			continue
		}
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", q))
		for _, e := range ents {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", q, e.Name()))
			ino := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
			if port, ok := listening[ino]; ok && strings.HasPrefix(target, "socket:[") {
				return port
			}
		}
	}
	return 0
}

// fetchHost asks the container's web server, on the host's loopback, for
// the file in its tmpfs.
func fetchHost(port int) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return string(bytes.TrimSpace(b)), err
}

// waitServerPort waits until a process of pid's container listens on the
// host's loopback and answers with the tmpfs file, and returns its port.
func waitServerPort(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(bound(t, readyTimeout))
	var got string
	var err error
	for {
		if port := listenPort(pid); port != 0 {
			if got, err = fetchHost(port); err == nil && got == "served-from-tmpfs" {
				return port
			}
		}
		if time.Now().After(deadline) {
			hung()
			t.Fatalf("the web server of container process %d does not answer on the host's loopback: %v: %q", pid, err, got)
		}
		time.Sleep(pollInterval)
	}
}

// TestE2ERuncRootless: the test user runs a busybox container with runc
// spec --rootless (its user namespace maps root to the user; it shares the
// host's net namespace; its /sys and device nodes are bind mounts of the
// host's), checkpoints it with runc checkpoint and cryo as its criu, and
// restores it with runc restore -d (in a user and mount namespace of its
// own, where runc may bind the rootfs). The image and work directories
// are made beforehand, 0700: runc 1.1.5 would make the image directory
// 0600, which its own user cannot enter. After the restore the count goes
// on with no gap through the same stdout pipe, the web server answers on
// the host's loopback at the same port with the file of the container's
// tmpfs, runc says running with cryo's pid for the init, pid 1 inside,
// and runc exec works in the restored container. own-ids: twice, the
// second checkpoint of the restored container. sub-ids: the container
// also maps the user's subordinate ids and runs as uid 1000 there, still
// its uid after the restore.
func TestE2ERuncRootless(t *testing.T) {
	requireCryo(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc (scripts/install-test-deps.sh): %v", err)
	}
	t.Run("own-ids", func(t *testing.T) { runcRootless(t, false, 2) })
	t.Run("sub-ids", func(t *testing.T) { runcRootless(t, true, 1) })
}

// runcRootless runs TestE2ERuncRootless's container (over subordinate ids
// with subIDs) and checkpoints and restores it cycles times.
func runcRootless(t *testing.T, subIDs bool, cycles int) {
	unshare := restoreOwnIDs
	if subIDs {
		unshare = restoreSubIDs
	}
	u := newRootlessRunc(t, unshare)
	b := rootlessBundle(t, subIDs)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &runcContainer{t: t, id: fmt.Sprintf("cryo-rootless-%d", os.Getpid()), bundle: b,
		global: []string{"--root", u.state, "--criu", cryoBin}, out: &syncBuffer{}, w: w, prep: u.prep}
	go io.Copy(c.out, r)
	t.Cleanup(func() {
		cmd := exec.Command("runc", "--root", u.state, "delete", "-f", c.id)
		u.prep(cmd, nil)
		cmd.Run()
		w.Close()
		r.Close()
	})
	if out, err := c.runc(nil, "run", "-d", c.id); err != nil {
		t.Fatalf("runc run -d as %s: %v\n%s\n%s", testUserName, err, out, c.out.String())
	}
	n := c.waitCount(0)
	_, pid := c.state()
	port := waitServerPort(t, pid)

	// Twice: the second checkpoint is of the restored container, whose
	// user namespace hangs below the one runc restore ran in.
	for cycle := 1; cycle <= cycles; cycle++ {
		img, work := usernsDir(t, 0o700), usernsDir(t, 0o700)
		start := time.Now()
		out, err := c.runc(nil, "checkpoint", "--image-path", img, "--work-path", work, c.id)
		if err != nil {
			t.Fatalf("checkpoint %d: runc checkpoint as %s: %v\n%s\n%s", cycle, testUserName, err, out, readString(filepath.Join(work, "dump.log")))
		}
		dumped := time.Since(start)
		if log := readString(filepath.Join(work, "dump.log")); !strings.Contains(log, "empty_ns: the tree is in cryo's net namespace") {
			t.Errorf("checkpoint %d: dump.log does not say the container shares cryo's net namespace:\n%s", cycle, clip(log, 600))
		}
		if out, err := c.runc(nil, "state", c.id); err == nil {
			t.Fatalf("checkpoint %d: the container is still there:\n%s", cycle, out)
		}
		if got, err := fetchHost(port); err == nil {
			t.Fatalf("checkpoint %d: port %d still answers: %q", cycle, port, got)
		}
		n = c.lastCount()

		start = time.Now()
		out, err = c.runc(nil, "restore", "-d", "--image-path", img, "--work-path", work, c.id)
		if err != nil {
			t.Fatalf("restore %d: runc restore -d as %s: %v\n%s\n%s", cycle, testUserName, err, out, readString(filepath.Join(work, "restore.log")))
		}
		t.Logf("cycle %d: rootless runc checkpoint %v + runc restore %v (under the test's load)", cycle, dumped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		n = c.waitCount(n + 10)
		c.checkNoGap()
		st, rpid := c.state()
		if st != "running" || nsInnerPid(rpid) != 1 {
			t.Fatalf("restore %d: runc says %s, pid %d (pid %d in its namespace)", cycle, st, rpid, nsInnerPid(rpid))
		}
		if got, err := fetchHost(port); err != nil || got != "served-from-tmpfs" {
			t.Fatalf("restore %d: the web server does not answer on 127.0.0.1:%d with its tmpfs file: %v: %q", cycle, port, err, got)
		}
		if out, err := c.runc(nil, "exec", c.id, "cat", "/tmp/www/index.html"); err != nil || strings.TrimSpace(out) != "served-from-tmpfs" {
			t.Fatalf("restore %d: runc exec in the restored container: %v: %q", cycle, err, out)
		}
		wantUID := strconv.Itoa(testUID)
		if subIDs {
			wantUID = strconv.Itoa(subIDFirst + 999)
		}
		if got := strings.Fields(procStatus(fmt.Sprintf("/proc/%d/status", rpid))["Uid"]); len(got) == 0 || got[0] != wantUID {
			t.Fatalf("restore %d: the restored init runs as host uid %v, want %s", cycle, got, wantUID)
		}
	}
}

// userConsoleSocket is newConsoleSocket's receiver, reachable by the test
// user (its directories searchable, the socket writable).
func userConsoleSocket(t *testing.T) *consoleSocket {
	t.Helper()
	cs := newConsoleSocket(t)
	for _, p := range []string{filepath.Dir(filepath.Dir(cs.path)), filepath.Dir(cs.path)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(cs.path, 0o777); err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestE2ERuncRootlessConsole: TestE2ERuncConsole's terminal container
// (an interactive shell and a count on the pty whose master the test
// holds) run, checkpointed and restored by the test user as in
// TestE2ERuncRootless: the count goes on through the new master runc
// passes on, and the restored shell runs what is typed on it, with the
// window size it had.
func TestE2ERuncRootlessConsole(t *testing.T) {
	requireCryo(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc (scripts/install-test-deps.sh): %v", err)
	}
	u := newRootlessRunc(t, restoreOwnIDs)
	b := rootlessBundle(t, false)
	consoleBundle(t, b)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &runcContainer{t: t, id: fmt.Sprintf("cryo-rootless-console-%d", os.Getpid()), bundle: b,
		global: []string{"--root", u.state, "--criu", cryoBin}, out: &syncBuffer{}, w: devnull, prep: u.prep}
	t.Cleanup(func() {
		cmd := exec.Command("runc", "--root", u.state, "delete", "-f", c.id)
		u.prep(cmd, nil)
		cmd.Run()
		devnull.Close()
	})
	cs := userConsoleSocket(t)
	if out, err := c.runc(nil, "run", "-d", "--console-socket", cs.path, c.id); err != nil {
		t.Fatalf("runc run -d --console-socket as %s: %v\n%s", testUserName, err, out)
	}
	before := &syncBuffer{}
	master := cs.take(before)
	ws := &unix.Winsize{Row: 33, Col: 101}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, before, "a count", func(s string) bool { return terminalCount(before) > 2 })

	img, work := usernsDir(t, 0o700), usernsDir(t, 0o700)
	if out, err := c.runc(nil, "checkpoint", "--image-path", img, "--work-path", work, c.id); err != nil {
		t.Fatalf("runc checkpoint as %s: %v\n%s\n%s", testUserName, err, out, readString(filepath.Join(work, "dump.log")))
	}
	n := terminalCount(before)
	cs2 := userConsoleSocket(t)
	if out, err := c.runc(nil, "restore", "-d", "--console-socket", cs2.path, "--image-path", img, "--work-path", work, c.id); err != nil {
		t.Fatalf("runc restore -d --console-socket as %s: %v\n%s\n%s", testUserName, err, out, readString(filepath.Join(work, "restore.log")))
	}
	after := &syncBuffer{}
	m2 := cs2.take(after)
	waitTerminal(t, after, fmt.Sprintf("the count going on past %d", n+5), func(string) bool { return terminalCount(after) > n+5 })
	if _, err := m2.Write([]byte("echo $((6*7))-typed; stty size\n")); err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, after, "the typed command's output", func(s string) bool {
		return strings.Contains(s, "42-typed\r\n") && strings.Contains(s, "33 101\r\n")
	})
	if st, rpid := c.state(); st != "running" || nsInnerPid(rpid) != 1 {
		t.Fatalf("after the restore runc says %s, pid %d (pid %d in its namespace)", st, rpid, nsInnerPid(rpid))
	}
}
