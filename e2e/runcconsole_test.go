package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// consoleScript is the terminal container's process: a count printed on
// its terminal in the background, and an interactive shell in the
// foreground, the session leader, reading commands from the terminal.
const consoleScript = `(i=0; while :; do echo c$i; i=$((i+1)); usleep 50000; done) & exec sh -i`

// consoleSocket is a --console-socket receiver: it takes the pty master
// runc sends and keeps it, reading what the container writes.
type consoleSocket struct {
	t      *testing.T
	path   string
	master chan *os.File
}

// newConsoleSocket listens at a new socket path; each master runc sends
// goes to the master channel.
func newConsoleSocket(t *testing.T) *consoleSocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cs := &consoleSocket{t: t, path: path, master: make(chan *os.File, 1)}
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(make([]byte, 4096), oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		cs.master <- os.NewFile(uintptr(fds[0]), "console-master")
	}()
	return cs
}

// take waits for the master and starts copying what it reads into out.
func (cs *consoleSocket) take(out *syncBuffer) *os.File {
	cs.t.Helper()
	select {
	case m := <-cs.master:
		cs.t.Cleanup(func() { m.Close() })
		go func() {
			b := make([]byte, 4096)
			for {
				n, err := m.Read(b)
				if n > 0 {
					out.Write(b[:n])
				}
				if err != nil {
					return
				}
			}
		}()
		return m
	case <-time.After(bound(cs.t, readyTimeout)):
		hung()
		cs.t.Fatal("runc sent no pty master on the console socket")
		return nil
	}
}

// terminalCounts returns the last count the container printed on its
// terminal, -1 if none.
func terminalCount(out *syncBuffer) int {
	m := regexp.MustCompile(`c(\d+)\r\n`).FindAllStringSubmatch(out.String(), -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// waitTerminal waits until ok holds on what the terminal showed.
func waitTerminal(t *testing.T, out *syncBuffer, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(bound(t, restoreReadyTimeout))
	for !ok(out.String()) {
		if time.Now().After(deadline) {
			hung()
			t.Fatalf("the container's terminal did not show %s; it ends:\n%q", what, clip(out.String(), 600))
		}
		time.Sleep(pollInterval)
	}
}

// TestE2ERuncConsole: a runc container with a terminal (--console-socket):
// an interactive busybox shell, the session leader, and a count it runs in
// the background, both on the pty whose master the test holds. runc
// checkpoints it with cryo (orphan_pts_master) and restores it with a new
// console socket: the test gets the new master, the count goes on through
// it, and a command typed into it is run by the restored shell, which
// finds its terminal's window size as it was.
func TestE2ERuncConsole(t *testing.T) {
	requireCryo(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc (scripts/install-test-deps.sh): %v", err)
	}
	b := runcBundle(t, false, true)
	consoleBundle(t, b)

	id := fmt.Sprintf("cryo-e2e-console-%d", os.Getpid())
	c := &runcContainer{t: t, id: id, bundle: b, out: &syncBuffer{}}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.w = devnull
	t.Cleanup(func() {
		exec.Command("runc", "delete", "-f", id).Run()
		devnull.Close()
	})
	cs := newConsoleSocket(t)
	if out, err := c.runc(nil, "run", "-d", "--console-socket", cs.path, id); err != nil {
		t.Fatalf("runc run -d --console-socket: %v\n%s", err, out)
	}
	before := &syncBuffer{}
	master := cs.take(before)
	ws := &unix.Winsize{Row: 33, Col: 101}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, before, "a count", func(s string) bool { return terminalCount(before) > 2 })
	_, pid := c.state()

	img, work := t.TempDir(), t.TempDir()
	if out, err := c.runc(nil, "--criu", cryoBin, "checkpoint", "--image-path", img, "--work-path", work, id); err != nil {
		t.Fatalf("runc checkpoint: %v\n%s\n%s", err, out, readString(filepath.Join(work, "dump.log")))
	}
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	n := terminalCount(before)
	// A terminal of the host at the container's slave index (0 on a host
	// with no other terminal open): the restore sets the owner of the
	// container's slave, in the container's devpts, and must leave this
	// one's alone.
	hostPts := hostTerminal(t)
	cs2 := newConsoleSocket(t)
	if out, err := c.runc(nil, "--criu", cryoBin, "restore", "-d", "--console-socket", cs2.path,
		"--image-path", img, "--work-path", work, id); err != nil {
		t.Fatalf("runc restore -d --console-socket: %v\n%s\n%s", err, out, readString(filepath.Join(work, "restore.log")))
	}
	after := &syncBuffer{}
	m2 := cs2.take(after)
	waitTerminal(t, after, fmt.Sprintf("the count going on past %d", n+5), func(string) bool { return terminalCount(after) > n+5 })
	// The shell runs what is typed on its terminal: the product, not the
	// echo of the line, and the window size the dump saw.
	if _, err := m2.Write([]byte("echo $((6*7))-typed; stty size\n")); err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, after, "the typed command's output", func(s string) bool {
		return strings.Contains(s, "42-typed\r\n") && strings.Contains(s, "33 101\r\n")
	})
	if st, rpid := c.state(); st != "running" || rpid != pid {
		t.Fatalf("after the restore runc says %s, pid %d (dumped %d)", st, rpid, pid)
	}
	var st unix.Stat_t
	if err := unix.Stat(hostPts, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != hostPtsOwner || st.Gid != hostPtsOwner {
		t.Fatalf("the restore changed the owner of the host's %s to %d:%d", hostPts, st.Uid, st.Gid)
	}
}

// hostPtsOwner is the owner hostTerminal gives its slave.
const hostPtsOwner = 4242

// hostTerminal opens a pty of cryo's devpts for the rest of the test and
// gives its slave the owner hostPtsOwner; it returns the slave's path.
func hostTerminal(t *testing.T) string {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	index, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/dev/pts/%d", index)
	if err := os.Lchown(path, hostPtsOwner, hostPtsOwner); err != nil {
		t.Fatal(err)
	}
	return path
}

// consoleBundle makes bundle b's container run consoleScript on a
// terminal, with busybox's stty.
func consoleBundle(t *testing.T, b string) {
	t.Helper()
	if err := os.Symlink("busybox", filepath.Join(b, "rootfs/bin/stty")); err != nil {
		t.Fatal(err)
	}
	editSpec(t, b, func(spec map[string]any) {
		spec["process"].(map[string]any)["args"] = []string{"sh", "-c", consoleScript}
		spec["process"].(map[string]any)["terminal"] = true
	})
}
