package e2e

// A desktop: TigerVNC's Xvnc (an X server that is also a VNC server) and an
// X client, xclock, started by the test user in user and IPC namespaces of
// its own by the real unshare(1):
//
//	setsid unshare -c -i sh -c 'Xvnc :N -localhost -SecurityTypes None & sleep 2; DISPLAY=:N xclock & wait'
//
// (and the same with -r). unshare without -f execs sh in place, so the
// process the test starts is the tree's root, sh, with Xvnc and xclock as
// its children. The tree is dumped and restored with `restore -d`; then the
// same processes must be back, the X server must answer (xdpyinfo), still
// hold xclock's window (xwininfo: the X connection between the two
// survived) and greet VNC clients on TCP 5900+N. Xvnc holds an epoll fd,
// a pipe, listening unix sockets (abstract and /tmp/.X11-unix/XN), TCP
// listening sockets (127.0.0.1 and ::1) and the unix connection to xclock.
//
// Needs the Debian packages tigervnc-standalone-server, x11-apps (xclock)
// and x11-utils (xdpyinfo, xwininfo). With CRYO_E2E_NO_CR=1 every step
// except dump and restore runs against the original tree.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// desktopBudget bounds one subtest (start, dump, restore, checks);
	// the cleanup adds a few seconds at most.
	desktopBudget = 24 * time.Second
	desktopUp     = 10 * time.Second // Xvnc answers and xclock's window shows
	desktopXTool  = 3 * time.Second  // one xdpyinfo / xwininfo run
	desktopStop   = 4 * time.Second  // the tree exits after SIGTERM to Xvnc
	// After the restore the tree must stay whole this long: xclock redraws
	// every second, so a broken X connection shows within it.
	desktopAlive = 1500 * time.Millisecond
	desktopPath  = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// The line of xwininfo -root -tree for xclock's top-level window.
const desktopXclockWin = `"xclock": ("xclock" "XClock")`

// desktop is one started tree.
type desktop struct {
	t        *testing.T
	deadline time.Time
	display  int
	dir      string // the tree's cwd, owned by the test user
	log      string // stdout+stderr of the tree: Xvnc's log
	launcher *bgProc
	root     int
	before   []dtProc // at the checkpoint, pre-order
	pids     []int    // PIDs of the tree now (for the cleanup)
	exes     map[int]string
	imgDir   string
	restored bool       // the root is a restored process, not launcher
	fds      []string   // dtFds at the checkpoint
	ns       nsTreeView // nsView at the checkpoint
}

// dtProc is one process of the tree as /proc shows it.
type dtProc struct {
	Pid, Inner int // Inner: pid in its own pid namespace (last of NSpid)
	Comm, Exe  string
	PPid       int // raw (the root's is outside the tree)
	Parent     int // index in the tree; -1 for the root
	Pgid, Sid  int // index in the tree, or -1 if outside it
	Tids       []int
	State      string // /proc/PID/status State
	Problem    string // traced, stopped, cryo mapped, ...
}

func (p dtProc) String() string {
	return fmt.Sprintf("%s pid=%d (inner %d) ppid=%d exe=%s tids=%v state=%q", p.Comm, p.Pid, p.Inner, p.PPid, p.Exe, p.Tids, p.State)
}

// left returns how long a wait of nominal length d may last: bounded by
// the suite (bound) and by the subtest's budget.
func (d *desktop) left(nominal time.Duration) time.Duration {
	t := d.t
	t.Helper()
	nominal = bound(t, nominal)
	if rem := time.Until(d.deadline); rem < nominal {
		nominal = rem
	}
	if nominal <= 0 {
		d.logAll()
		t.Fatalf("desktop: the subtest's time budget (%v) is exhausted", desktopBudget)
	}
	return nominal
}

// dtRequireTools fails the test if a program it runs is missing.
func dtRequireTools(t *testing.T) {
	t.Helper()
	for _, p := range []struct{ prog, pkg string }{
		{"Xvnc", "tigervnc-standalone-server"}, {"xclock", "x11-apps"}, {"xdpyinfo", "x11-utils"},
		{"xwininfo", "x11-utils"}, {"unshare", "util-linux"}, {"setsid", "util-linux"},
	} {
		if _, err := exec.LookPath(p.prog); err != nil {
			t.Fatalf("%s is needed (Debian package %s; scripts/install-test-deps.sh): %v", p.prog, p.pkg, err)
		}
	}
}

// dtPickDisplay returns a display number in 40-99 that nobody uses: no
// /tmp/.X11-unix/XN, no /tmp/.XN-lock, no abstract socket of that name,
// TCP port 5900+N free on 127.0.0.1. The files the X server makes for it
// are removed at the end of the test.
func dtPickDisplay(t *testing.T) int {
	t.Helper()
	unixNet := readString("/proc/net/unix")
	start := rand.IntN(60)
	for i := range 60 {
		n := 40 + (start+i)%60
		sock, lock := fmt.Sprintf("/tmp/.X11-unix/X%d", n), fmt.Sprintf("/tmp/.X%d-lock", n)
		if _, err := os.Lstat(sock); err == nil {
			continue
		}
		if _, err := os.Lstat(lock); err == nil {
			continue
		}
		if strings.Contains(unixNet, "@"+sock+"\n") {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 5900+n))
		if err != nil {
			continue
		}
		l.Close()
		t.Cleanup(func() {
			// Only what the test user's X server made (it did not exist
			// before).
			for _, f := range []string{sock, lock} {
				var st unix.Stat_t
				if unix.Lstat(f, &st) == nil && st.Uid == testUID {
					os.Remove(f)
				}
			}
		})
		return n
	}
	t.Fatalf("no free X display number in 40-99")
	return 0
}

// startDesktop starts the tree as the test user (unshareFlag "-c" or "-r")
// and waits until xdpyinfo works, xclock's window exists and the tree is
// settled (Xvnc has no connection but xclock's).
func startDesktop(t *testing.T, unshareFlag string) *desktop {
	t.Helper()
	requireRoot(t)
	dtRequireTools(t)
	ensureTestUser(t)
	d := &desktop{t: t, deadline: time.Now().Add(desktopBudget), exes: map[int]string{}}
	d.display = dtPickDisplay(t)
	d.dir = usernsDir(t, 0o755)
	d.log = filepath.Join(filepath.Dir(d.dir), "xvnc.log")
	setsid, _ := exec.LookPath("setsid")
	unsharePath, _ := exec.LookPath("unshare")
	script := fmt.Sprintf("Xvnc :%d -localhost -SecurityTypes None & sleep 2; DISPLAY=:%d xclock & wait", d.display, d.display)
	cmd := userCommand(t, d.dir, d.log, setsid, unsharePath, unshareFlag, "-i", "sh", "-c", script)
	cmd.Env = []string{"PATH=" + desktopPath, "HOME=" + d.dir}
	// setsid(1) calls setsid() itself (the child is no group leader, so it
	// does not fork): the PID stays the same through setsid, unshare, sh.
	cmd.SysProcAttr.Setsid = false
	// Registered before startBg's cleanup, so it runs after it (LIFO).
	t.Cleanup(d.cleanup)
	var err error
	d.launcher, err = startBg(t, "desktop sh", cmd)
	if err != nil {
		t.Fatalf("cannot start %v: %v", cmd.Args, err)
	}
	d.root = d.launcher.Pid()
	d.pids = []int{d.root}
	t.Logf("display :%d; %s", d.display, strings.Join(cmd.Args, " "))

	up := time.Now().Add(d.left(desktopUp))
	step := "the root to become sh, leading its session"
	ready := func() bool {
		comm := strings.TrimSpace(readString(fmt.Sprintf("/proc/%d/comm", d.root)))
		st, err := readProcState(d.root)
		return err == nil && comm == "sh" && st.Sid == d.root
	}
	for !ready() {
		d.waitTick(up, step)
	}
	d.exes[d.root], _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", d.root))
	step = "xdpyinfo -display :N to succeed"
	for {
		if _, err := d.xTool("xdpyinfo"); err == nil {
			break
		}
		d.waitTick(up, step)
	}
	step = "xwininfo -root -tree to list xclock's window"
	for {
		if out, err := d.xTool("xwininfo", "-root", "-tree"); err == nil && strings.Contains(out, desktopXclockWin) {
			break
		}
		d.waitTick(up, step)
	}
	// The tree is sh with Xvnc and xclock (sleep is gone by now), and the
	// X connections of xdpyinfo and xwininfo are closed in Xvnc too: a
	// dump must not catch a half-closed connection. Twice in a row.
	step = "the tree to be sh, Xvnc, xclock, with no X connection but xclock's"
	why, stable := "", 0
	for stable < 2 {
		d.before, why = d.settled()
		if why == "" {
			stable++
		} else {
			stable = 0
		}
		if stable < 2 {
			d.waitTick(up, step+" ("+why+")")
		}
	}
	d.pids = d.pids[:0]
	var lines []string
	for _, p := range d.before {
		d.pids = append(d.pids, p.Pid)
		d.exes[p.Pid] = p.Exe
		lines = append(lines, p.String())
	}
	t.Logf("tree of %d processes:\n  %s", len(d.before), strings.Join(lines, "\n  "))
	d.fds = dtFds(d.pids)
	d.ns = d.nsView()
	t.Logf("descriptors (#i: the process's index in the tree; pipes and sockets by inode):\n  %s",
		strings.Join(d.rawFds(), "\n  "))
	return d
}

// waitTick sleeps one poll interval, or fails the test if the launcher
// exited or the deadline for step passed.
func (d *desktop) waitTick(deadline time.Time, step string) {
	t := d.t
	t.Helper()
	if d.launcher.Exited() {
		d.logAll()
		t.Fatalf("the tree's root sh (pid %d) exited (status %d) while waiting for %s", d.root, d.launcher.ExitCode(), step)
	}
	if time.Now().After(deadline) {
		hung()
		d.logAll()
		t.Fatalf("waited in vain for %s", step)
	}
	time.Sleep(50 * time.Millisecond)
}

// settled snapshots the tree and says why it is not yet as wanted ("" if
// it is): sh with the children Xvnc and xclock, nothing else, Xvnc holding
// exactly one connected socket (xclock's).
func (d *desktop) settled() ([]dtProc, string) {
	procs, err := dtSnapshot(d.root)
	if err != nil {
		return nil, err.Error()
	}
	var comms []string
	for _, p := range procs {
		comms = append(comms, p.Comm)
	}
	if len(procs) != 3 || procs[0].Comm != "sh" || procs[1].Parent != 0 || procs[2].Parent != 0 ||
		!slices.Contains(comms, "Xvnc") || !slices.Contains(comms, "xclock") {
		return nil, fmt.Sprintf("tree %v", comms)
	}
	for _, p := range procs {
		if p.Problem != "" {
			return nil, p.Problem
		}
	}
	for _, p := range procs {
		if p.Comm == "Xvnc" {
			if n := len(dtConnectedSockets(p.Pid)); n != 1 {
				return nil, fmt.Sprintf("Xvnc holds %d connected sockets, want 1 (xclock's)", n)
			}
		}
	}
	return procs, ""
}

// xTool runs an X client as root against the display (bounded) and
// returns its output.
func (d *desktop) xTool(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), desktopXTool)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append([]string{"-display", fmt.Sprintf(":%d", d.display)}, args...)...)
	cmd.Env = []string{"PATH=" + desktopPath, "HOME=/nonexistent"}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v", name, desktopXTool)
	}
	return string(out), err
}

// rfbGreeting connects to the VNC port and returns the first 12 bytes.
func (d *desktop) rfbGreeting() (string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", 5900+d.display)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 12)
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

// checkServing: xdpyinfo succeeds, xclock's window is there, a VNC client
// gets the RFB 3.8 greeting. xdpyinfo may need a few tries right after a
// restore (bounded).
func (d *desktop) checkServing(when string) {
	t := d.t
	t.Helper()
	deadline := time.Now().Add(d.left(5 * time.Second))
	var out string
	var err error
	for {
		if out, err = d.xTool("xdpyinfo"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		d.logAll()
		t.Fatalf("%s: xdpyinfo -display :%d: %v\n%s", when, d.display, err, clip(out, 2000))
	}
	out, err = d.xTool("xwininfo", "-root", "-tree")
	if err != nil || !strings.Contains(out, desktopXclockWin) {
		d.logAll()
		t.Fatalf("%s: xwininfo -root -tree does not list xclock's window (%v):\n%s", when, err, clip(out, 4000))
	}
	greeting, err := d.rfbGreeting()
	if !strings.HasPrefix(greeting, "RFB 003.008") {
		d.logAll()
		t.Fatalf("%s: VNC port %d: greeting %q (%v), want \"RFB 003.008\\n\"", when, 5900+d.display, greeting, err)
	}
}

// checkpoint dumps the tree (as root, or as cred), waits until every
// process of it is gone and its PID free. It returns the dump's result;
// the caller handles a failure.
func (d *desktop) checkpoint(cred *syscall.Credential) cryoResult {
	t := d.t
	t.Helper()
	if cred == nil {
		d.imgDir = filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(d.imgDir, 0o700); err != nil {
			t.Fatal(err)
		}
	} else {
		d.imgDir = usernsDir(t, 0o700)
	}
	res := d.cryo(cred, "dump", "-t", strconv.Itoa(d.root), "-D", d.imgDir, "-v", "4", "-o", "dump.log")
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		return res
	}
	if !d.launcher.Wait(d.left(killTimeout)) {
		d.logAll()
		t.Fatalf("the root sh %d still runs after cryo dump exited (dump must kill the tree)", d.root)
	}
	if ws, ok := d.launcher.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the root sh %d ended with %v, want killed by SIGKILL", d.root, d.launcher.state)
	}
	// Xvnc and xclock, orphaned, are the test process's (a subreaper):
	// waitPidFree reaps them.
	for _, p := range d.before {
		if err := waitPidFree(p.Pid, d.left(pidFreeTimeout)); err != nil {
			d.logAll()
			t.Fatalf("after the dump: %s: %v", p.Comm, err)
		}
	}
	return res
}

// restoreTree runs `cryo restore -D DIR -d` (as root, or as cred), which
// must exit 0.
func (d *desktop) restoreTree(cred *syscall.Credential) cryoResult {
	t := d.t
	t.Helper()
	res := d.cryo(cred, "restore", "-D", d.imgDir, "-d", "-v", "4", "-o", "restore.log")
	d.restored = true
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Logf("%s", res)
		d.logAll()
		t.Fatalf("cryo restore -d failed (exit %d, err %v, timed out %v)", res.ExitCode, res.Err, res.TimedOut)
	}
	return res
}

// cryo runs cryo to completion as root (cred nil) or as cred, bounded by
// the subtest's budget.
func (d *desktop) cryo(cred *syscall.Credential, args ...string) cryoResult {
	d.t.Helper()
	return runCryoAs(d.t, cred, d.left(cryoTimeout), args...)
}

// waitTree polls until the tree rooted at root matches d.before (twice in
// a row): same processes (PIDs, or with moved only the pids inside their
// pid namespace), comm, exe, parent, group, session, threads; nothing
// traced, stopped, zombie or with cryo mapped; nothing extra.
func (d *desktop) waitTree(when string, root int, moved bool) {
	t := d.t
	t.Helper()
	deadline := time.Now().Add(d.left(restoreReadyTimeout))
	var diff []string
	stable := 0
	for stable < 2 {
		after, err := dtSnapshot(root)
		if err != nil {
			diff = []string{err.Error()}
		} else {
			diff = dtCompare(d.before, after, moved)
		}
		if len(diff) == 0 {
			stable++
			d.pids = d.pids[:0]
			for _, p := range after {
				d.pids = append(d.pids, p.Pid)
				d.exes[p.Pid] = p.Exe
			}
		} else {
			stable = 0
		}
		if stable >= 2 {
			break
		}
		if time.Now().After(deadline) {
			hung()
			d.logAll()
			t.Fatalf("%s: the tree is not as at the checkpoint:\n  %s", when, strings.Join(diff, "\n  "))
		}
		time.Sleep(pollInterval)
	}
	d.root = root
}

// nsView is the outside view of the tree's processes now (maps, ids,
// which namespaces are not the test's, user namespace owners, sharing).
func (d *desktop) nsView() nsTreeView {
	var v nsTreeView
	for _, pid := range d.pids {
		v.Procs = append(v.Procs, nsProcViewOf(d.t, pid))
	}
	v.Share = dtShare(d.t, d.pids)
	return v
}

// checkNamespaces compares the outside view of the tree with the one at
// the checkpoint.
func (d *desktop) checkNamespaces(moved bool) {
	d.t.Helper()
	nsCompareViews(d.t, d.ns, d.nsView(), moved)
}

// dtShare: per namespace type, the index of the first process sharing
// each process's namespace.
func dtShare(t *testing.T, pids []int) map[string][]int {
	t.Helper()
	share := map[string][]int{}
	for _, ns := range nsTypes {
		first := map[uint64]int{}
		for i, pid := range pids {
			ino, err := nsInodeOf(strconv.Itoa(pid), ns)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := first[ino]; !ok {
				first[ino] = i
			}
			share[ns] = append(share[ns], first[ino])
		}
	}
	return share
}

// stayAlive waits until since+desktopAlive and checks again that the tree
// is whole and xclock's window still there.
func (d *desktop) stayAlive(since time.Time, moved bool) {
	t := d.t
	t.Helper()
	time.Sleep(time.Until(since.Add(desktopAlive)))
	after, err := dtSnapshot(d.root)
	if err != nil {
		d.logAll()
		t.Fatalf("%v after the restore: %v", desktopAlive, err)
	}
	if diff := dtCompare(d.before, after, moved); len(diff) > 0 {
		d.logAll()
		t.Fatalf("%v after the restore the tree fell apart:\n  %s", desktopAlive, strings.Join(diff, "\n  "))
	}
	if out, err := d.xTool("xwininfo", "-root", "-tree"); err != nil || !strings.Contains(out, desktopXclockWin) {
		d.logAll()
		t.Fatalf("%v after the restore xclock's window is gone (%v):\n%s", desktopAlive, err, clip(out, 4000))
	}
}

// stop sends SIGTERM to Xvnc: it exits, xclock loses its display and
// exits, sh's wait returns and sh exits 0. Every process must be gone
// within desktopStop.
func (d *desktop) stop() {
	t := d.t
	t.Helper()
	xvnc := -1
	for _, pid := range d.pids {
		if strings.TrimSpace(readString(fmt.Sprintf("/proc/%d/comm", pid))) == "Xvnc" {
			xvnc = pid
		}
	}
	if xvnc < 0 {
		d.logAll()
		t.Fatalf("no Xvnc among %v", d.pids)
	}
	if err := unix.Kill(xvnc, unix.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to Xvnc %d: %v", xvnc, err)
	}
	deadline := time.Now().Add(desktopStop)
	status, known := -1, false
	if !d.restored {
		if !d.launcher.Wait(time.Until(deadline)) {
			d.logAll()
			t.Fatalf("sh %d did not exit within %v of SIGTERM to Xvnc", d.root, desktopStop)
		}
		status, known = d.launcher.ExitCode(), true
	} else {
		ws, err := waitForeign(d.root, time.Until(deadline))
		if err != nil {
			d.logAll()
			t.Fatalf("after SIGTERM to Xvnc: %v", err)
		}
		if ws != nil {
			status, known = waitStatusCode(*ws), true
		}
	}
	for _, pid := range d.pids {
		if err := waitPidFree(pid, max(time.Until(deadline), 100*time.Millisecond)); err != nil {
			t.Errorf("after SIGTERM to Xvnc and sh's exit: %v", err)
		}
	}
	if known && status != 0 {
		d.logAll()
		t.Errorf("sh exited with status %d after SIGTERM to Xvnc, want 0", status)
	}
	d.pids = nil
}

// cleanup kills what is left of the tree: processes at its PIDs that
// still run the recorded executable as the test user, or cryo.
func (d *desktop) cleanup() {
	var killed []int
	for _, pid := range d.pids {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		uid := strings.Fields(procStatus(fmt.Sprintf("/proc/%d/status", pid))["Uid"])
		if (exe == d.exes[pid] && len(uid) > 0 && uid[0] == strconv.Itoa(testUID)) || (cryoBin != "" && strings.HasPrefix(exe, cryoBin)) {
			_ = unix.Kill(pid, unix.SIGKILL)
			killed = append(killed, pid)
		}
	}
	for _, pid := range killed {
		if pid != d.launcher.Pid() || d.restored {
			_, _ = waitForeign(pid, killTimeout)
		}
	}
	reapZombieChildren()
	checkNoStrayCryo(d.t, "at the end of the test")
}

// logAll logs the dump and restore logs and the tree's output (Xvnc's log).
func (d *desktop) logAll() {
	t := d.t
	t.Helper()
	if d.imgDir != "" {
		logFile(t, filepath.Join(d.imgDir, "dump.log"))
		logFile(t, filepath.Join(d.imgDir, "restore.log"))
	}
	t.Logf("output of the tree (Xvnc's log) %s:\n%s", d.log, clip(readString(d.log), 16000))
}

// ---------------------------------------------------------------------------
// /proc views

// dtSnapshot reads the tree rooted at root in pre-order, children sorted
// by their pid inside their pid namespace.
func dtSnapshot(root int) ([]dtProc, error) {
	var procs []dtProc
	var walk func(pid, parent int) error
	walk = func(pid, parent int) error {
		if len(procs) >= 32 {
			return fmt.Errorf("more than 32 processes below %d", root)
		}
		st, err := readProcState(pid)
		if err != nil {
			return err
		}
		status := procStatus(fmt.Sprintf("/proc/%d/status", pid))
		p := dtProc{Pid: pid, Inner: nsInnerPid(pid), Comm: strings.TrimSpace(readString(fmt.Sprintf("/proc/%d/comm", pid))),
			Exe: st.Exe, PPid: st.PPid, Parent: parent, Pgid: st.Pgid, Sid: st.Sid, Tids: st.Tids, State: status["State"]}
		switch s := p.State; {
		case strings.HasPrefix(s, "Z") || strings.HasPrefix(s, "X"):
			p.Problem = fmt.Sprintf("%s (pid %d) is dead (state %q)", p.Comm, pid, s)
		case strings.HasPrefix(s, "T") || strings.HasPrefix(s, "t"):
			p.Problem = fmt.Sprintf("%s (pid %d) is stopped (state %q)", p.Comm, pid, s)
		}
		for _, tid := range p.Tids {
			ts := procStatus(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
			if tp := ts["TracerPid"]; tp != "0" && tp != "" {
				p.Problem = fmt.Sprintf("%s (pid %d): thread %d is traced by %s", p.Comm, pid, tid, tp)
			}
		}
		if cryoBin != "" && strings.Contains(readString(fmt.Sprintf("/proc/%d/maps", pid)), cryoBin) {
			p.Problem = fmt.Sprintf("%s (pid %d): the cryo binary is still mapped", p.Comm, pid)
		}
		me := len(procs)
		procs = append(procs, p)
		kids := nsChildren(pid)
		slices.SortFunc(kids, func(a, b int) int { return nsInnerPid(a) - nsInnerPid(b) })
		for _, k := range kids {
			if err := walk(k, me); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, -1); err != nil {
		return nil, err
	}
	idx := map[int]int{}
	for i, p := range procs {
		idx[p.Pid] = i
	}
	for i := range procs {
		for _, f := range []*int{&procs[i].Pgid, &procs[i].Sid} {
			if j, ok := idx[*f]; ok {
				*f = j
			} else {
				*f = -1
			}
		}
	}
	return procs, nil
}

// dtCompare lists how after differs from before. Unless moved, PIDs, the
// threads' TIDs and the root's parent (the test process: it was the
// launcher's parent, and is the restored root's as the subreaper that gets
// it when cryo restore -d exits) must be the same; with moved the pids
// inside the pid namespace and the number of threads.
func dtCompare(before, after []dtProc, moved bool) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(after) != len(before) {
		var a []string
		for _, p := range after {
			a = append(a, p.String())
		}
		add("%d processes, want %d: %s", len(after), len(before), strings.Join(a, "; "))
		return out
	}
	for i, b := range before {
		a := after[i]
		what := fmt.Sprintf("#%d %s (pid %d, was %d)", i, b.Comm, a.Pid, b.Pid)
		if a.Problem != "" {
			add("%s: %s", what, a.Problem)
		}
		if moved {
			if a.Inner != b.Inner {
				add("%s: pid inside %d, want %d", what, a.Inner, b.Inner)
			}
			if len(a.Tids) != len(b.Tids) {
				add("%s: %d threads, want %d", what, len(a.Tids), len(b.Tids))
			}
		} else {
			if a.Pid != b.Pid {
				add("%s: pid %d, want %d", what, a.Pid, b.Pid)
			}
			if !slices.Equal(a.Tids, b.Tids) {
				add("%s: threads %v, want %v", what, a.Tids, b.Tids)
			}
			if i == 0 && a.PPid != b.PPid {
				add("%s: parent %d, want %d (the test process)", what, a.PPid, b.PPid)
			}
		}
		if a.Comm != b.Comm {
			add("%s: comm %q, want %q", what, a.Comm, b.Comm)
		}
		if a.Exe != b.Exe {
			add("%s: exe %s, want %s", what, a.Exe, b.Exe)
		}
		if a.Parent != b.Parent {
			add("%s: parent is process #%d (pid %d), want #%d", what, a.Parent, a.PPid, b.Parent)
		}
		if a.Pgid != b.Pgid || a.Sid != b.Sid {
			add("%s: group/session are processes #%d/#%d, want #%d/#%d", what, a.Pgid, a.Sid, b.Pgid, b.Sid)
		}
	}
	return out
}

// dtConnectedSockets lists the sockets pid holds that are not listening
// (unix: not __SO_ACCEPTCON; TCP: not LISTEN), as "fd N inode I".
func dtConnectedSockets(pid int) []string {
	listening := map[string]bool{}
	for _, line := range strings.Split(readString("/proc/net/unix"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 7 {
			flags, _ := strconv.ParseUint(f[3], 16, 32)
			listening[f[6]] = flags&0x10000 != 0
		}
	}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, line := range strings.Split(readString(file), "\n")[1:] {
			if f := strings.Fields(line); len(f) >= 10 {
				listening[f[9]] = f[3] == "0A"
			}
		}
	}
	var out []string
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		ino := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
		if !listening[ino] {
			out = append(out, fmt.Sprintf("fd %s inode %s", e.Name(), ino))
		}
	}
	return out
}

// dtFdTable describes pid's descriptors: number, target, flags, for sockets
// what /proc/net says (family, type, state, name, TCP local address), for
// epoll the watched fds and events. With names (the comparable form) the
// inode numbers of pipes and sockets are left out, a pipe's becomes
// "pipe#K" (K in order of first appearance in names, so that which
// descriptors share a pipe shows), and file positions are not shown.
func dtFdTable(pid int, names map[string]string) []string {
	sockets := map[string]string{}
	for _, line := range strings.Split(readString("/proc/net/unix"), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 7 {
			flags, _ := strconv.ParseUint(f[3], 16, 32)
			desc := "unix stream"
			if f[4] != "0001" {
				desc = "unix type " + f[4]
			}
			if flags&0x10000 != 0 {
				desc += " LISTEN"
			} else {
				desc += " st " + f[5]
			}
			if len(f) >= 8 {
				desc += " " + f[7]
			}
			sockets[f[6]] = desc
		}
	}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, line := range strings.Split(readString(file), "\n")[1:] {
			if f := strings.Fields(line); len(f) >= 10 {
				sockets[f[9]] = fmt.Sprintf("%s local %s state %s", filepath.Base(file), f[1], f[3])
			}
		}
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	slices.SortFunc(ents, func(a, b os.DirEntry) int {
		x, _ := strconv.Atoi(a.Name())
		y, _ := strconv.Atoi(b.Name())
		return x - y
	})
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		fdinfo := readString(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		info := procStatus(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		shown := target
		if names != nil {
			switch {
			case strings.HasPrefix(target, "pipe:["):
				if names[target] == "" {
					names[target] = fmt.Sprintf("pipe#%d", len(names))
				}
				shown = names[target]
			case strings.HasPrefix(target, "socket:["):
				shown = "socket"
			}
		}
		line := fmt.Sprintf("fd %s -> %s flags %s", e.Name(), shown, info["flags"])
		if strings.HasPrefix(target, "socket:[") {
			line += " (" + sockets[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] + ")"
		}
		if strings.Contains(target, "eventpoll") {
			var watched []string
			for _, l := range strings.Split(fdinfo, "\n") {
				if f := strings.Fields(l); len(f) >= 4 && f[0] == "tfd:" {
					watched = append(watched, f[1]+"/"+f[3])
				}
			}
			slices.SortFunc(watched, func(a, b string) int {
				x, _ := strconv.Atoi(strings.Split(a, "/")[0])
				y, _ := strconv.Atoi(strings.Split(b, "/")[0])
				return x - y
			})
			line += " watching fd/events " + strings.Join(watched, " ")
		}
		out = append(out, line)
	}
	return out
}

// dtFds is the comparable descriptor table of the processes (#i is the
// process's index in the tree).
func dtFds(pids []int) []string {
	names := map[string]string{}
	var out []string
	for i, pid := range pids {
		for _, l := range dtFdTable(pid, names) {
			out = append(out, fmt.Sprintf("#%d %s", i, l))
		}
	}
	return out
}

// rawFds lists the descriptors of the tree's processes with inode numbers.
func (d *desktop) rawFds() []string {
	var out []string
	for i, pid := range d.pids {
		for _, l := range dtFdTable(pid, nil) {
			out = append(out, fmt.Sprintf("#%d %s", i, l))
		}
	}
	return out
}

// checkFds compares the descriptors of the tree with those at the
// checkpoint: numbers, kinds, flags, which share a pipe, socket family,
// type, state and name (getsockname), TCP local addresses, the epoll
// interest list (fds and events). Inode numbers and file positions aside.
func (d *desktop) checkFds(when string) {
	t := d.t
	t.Helper()
	now := dtFds(d.pids)
	if slices.Equal(now, d.fds) {
		return
	}
	var missing, extra []string
	for _, l := range d.fds {
		if !slices.Contains(now, l) {
			missing = append(missing, l)
		}
	}
	for _, l := range now {
		if !slices.Contains(d.fds, l) {
			extra = append(extra, l)
		}
	}
	t.Errorf("%s: the descriptors differ from the checkpoint's (inode numbers aside; #i is the process's index in the tree)\n"+
		"  at the checkpoint, not now:\n    %s\n  now, not at the checkpoint:\n    %s",
		when, strings.Join(missing, "\n    "), strings.Join(extra, "\n    "))
}

// ---------------------------------------------------------------------------
// Tests

// TestE2EDesktop: the desktop tree of unshare -c -i and of unshare -r -i,
// dumped and restored (-d) by root: the same PIDs with the same comm,
// parents, group and session come back, the namespaces as before; the X
// server answers, still shows xclock's window (also 1.5 s later: xclock
// draws every second over its restored connection), greets VNC clients;
// after SIGTERM to Xvnc the whole tree exits, sh with status 0.
func TestE2EDesktop(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"c-i", "r-i"} {
		t.Run(mode, func(t *testing.T) {
			d := startDesktop(t, "-"+mode[:1])
			if noCR {
				t.Logf("%s=1: no dump/restore; checking the original tree", envNoCR)
			} else {
				if res := d.checkpoint(nil); res.ExitCode != 0 || res.TimedOut || res.Err != nil {
					t.Logf("%s", res)
					d.logAll()
					t.Fatalf("cryo dump of the desktop tree (root %d) failed (exit %d, err %v, timed out %v)",
						d.root, res.ExitCode, res.Err, res.TimedOut)
				}
				d.restoreTree(nil)
			}
			since := time.Now()
			d.waitTree("after restore", d.root, false)
			d.checkFds("after restore")
			d.checkNamespaces(false)
			d.checkServing("after restore")
			d.stayAlive(since, false)
			d.stop()
		})
	}
}

// TestE2EDesktopRootless: the same trees, dumped and restored by the test
// user itself. The tree is in the initial pid namespace, where only root
// may choose PIDs: the restore makes a new pid namespace (owned by the
// tree's user namespace, under cryo's init) where every process keeps its
// old pid, and says so in one "cryo:" line naming the pid namespace.
func TestE2EDesktopRootless(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"c-i", "r-i"} {
		t.Run(mode, func(t *testing.T) {
			d := startDesktop(t, "-"+mode[:1])
			if noCR {
				t.Logf("%s=1: no dump/restore; checking the original tree", envNoCR)
				d.waitTree("untouched", d.root, false)
				d.checkFds("untouched")
				d.checkServing("untouched")
				d.stop()
				return
			}
			requireUserCanExec(t, cryoBin)
			cred := testUserCred()
			res := d.checkpoint(cred)
			if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
				d.logAll()
				t.Fatalf("rootless dump failed: %s", firstLine(res.Stderr))
			}
			origRoot := d.root
			rres := d.restoreTree(cred)
			since := time.Now()
			root, moved := d.findRestoredRoot()
			d.waitTree("after the rootless restore", root, moved)
			d.checkFds("after the rootless restore")
			if !moved {
				t.Errorf("the rootless restore gave the root its PID %d in the initial pid namespace: only root can", root)
			} else {
				t.Logf("rootless restore: the root is pid %d outside (was %d), %d inside", root, origRoot, d.before[0].Inner)
				checkPidnsInit(t, root)
			}
			d.checkNamespaces(moved)
			d.checkServing("after the rootless restore")
			d.stayAlive(since, moved)
			d.stop()
			checkMovedNotice(t, rres.Stderr, moved, origRoot, root)
		})
	}
}

// findRestoredRoot returns the restored root: at its old PID, or (a
// rootless restore into a new pid namespace) the test user's sh whose pid
// inside is the old one (moved). Bounded; -1 if none shows.
func (d *desktop) findRestoredRoot() (int, bool) {
	old := d.before[0]
	deadline := time.Now().Add(d.left(restoreReadyTimeout))
	for {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", old.Pid)); exe == old.Exe && nsInnerPid(old.Pid) == old.Pid {
			return old.Pid, false
		}
		for _, pid := range allPids() {
			if pid == old.Pid {
				continue
			}
			uid := strings.Fields(procStatus(fmt.Sprintf("/proc/%d/status", pid))["Uid"])
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == old.Exe && len(uid) > 0 &&
				uid[0] == strconv.Itoa(testUID) && nsInnerPid(pid) == old.Pid {
				d.pids = append(d.pids, pid)
				d.exes[pid] = old.Exe
				return pid, true
			}
		}
		if time.Now().After(deadline) {
			return old.Pid, false // waitTree reports what is missing
		}
		time.Sleep(pollInterval)
	}
}
