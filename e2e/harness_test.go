package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of every wait: a hang fails the test instead of blocking the suite.
// Each is further clamped by bound().
const (
	readyTimeout        = 10 * time.Second // workload prints READY
	cryoTimeout         = 30 * time.Second // one dump, check, show, failing restore
	restoreReadyTimeout = 20 * time.Second // restored process is running
	finishTimeout       = 20 * time.Second // exit after SIGTERM
	pidFreeTimeout      = 10 * time.Second // /proc/PID disappears
	killTimeout         = 5 * time.Second  // exit after SIGKILL
	pollInterval        = 10 * time.Millisecond

	// After this many timeouts the implementation is taken to hang: every
	// later wait is cut to hangBound so the suite still ends in time.
	maxHangs  = 3
	hangBound = 3 * time.Second
	// Time kept before the -timeout deadline to fail cleanly (and kill the
	// processes) instead of letting the test binary panic.
	deadlineMargin = 30 * time.Second
)

var hangs atomic.Int32

// bound returns how long a wait of nominal length d may last: shorter once
// the implementation was seen hanging, and never past the suite's deadline
// (minus a margin). If no time is left the test fails now.
func bound(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	if hangs.Load() >= maxHangs && d > hangBound {
		d = hangBound
	}
	if dl, ok := t.Deadline(); ok {
		if rem := time.Until(dl) - deadlineMargin; rem < d {
			d = rem
		}
	}
	if d <= 0 {
		t.Fatalf("the suite's time budget (-timeout) is exhausted")
	}
	return d
}

// hung records a timeout.
func hung() { hangs.Add(1) }

// ---------------------------------------------------------------------------
// Background processes

// bgProc is a process started by the test whose Wait runs in a goroutine,
// so that waiting for it can be bounded.
type bgProc struct {
	Cmd   *exec.Cmd
	Name  string
	done  chan struct{}
	err   error
	state *os.ProcessState
}

var (
	trackedMu   sync.Mutex
	trackedPids = map[int]bool{} // pids whose Wait belongs to a bgProc
)

func startBg(t *testing.T, name string, cmd *exec.Cmd) (*bgProc, error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &bgProc{Cmd: cmd, Name: name, done: make(chan struct{})}
	pid := cmd.Process.Pid
	trackedMu.Lock()
	trackedPids[pid] = true
	trackedMu.Unlock()
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		trackedMu.Lock()
		delete(trackedPids, pid)
		trackedMu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })
	return p, nil
}

func (p *bgProc) Pid() int { return p.Cmd.Process.Pid }

// Wait waits at most d; it reports whether the process exited.
func (p *bgProc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *bgProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the exit status as a shell reports it (128+signal if killed).
func (p *bgProc) ExitCode() int { return exitCode(p.state) }

func exitCode(st *os.ProcessState) int {
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

func (p *bgProc) kill(t *testing.T) {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	if !p.Wait(killTimeout) {
		t.Errorf("cleanup: %s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
	}
}

// ---------------------------------------------------------------------------
// Running cryo

type cryoResult struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
	TimedOut bool
	Err      error // start error
}

func (r cryoResult) String() string {
	return fmt.Sprintf("cryo %s: exit %d%s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.ExitCode,
		map[bool]string{true: " (TIMED OUT, killed)"}[r.TimedOut], clip(r.Stdout, 4000), clip(r.Stderr, 4000))
}

// cryoCommand prepares cryo ARGS with stdout/stderr going to regular files in
// a fresh temporary directory (no pipes: a stray child holding a pipe open
// must not block Wait).
func cryoCommand(t *testing.T, args ...string) (cmd *exec.Cmd, stdout, stderr string) {
	t.Helper()
	if cryoBin == "" {
		t.Fatalf("no cryo binary (%s=1?)", envNoCR)
	}
	dir := t.TempDir()
	stdout, stderr = filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	so, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	se, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { so.Close(); se.Close(); devnull.Close() })
	cmd = exec.Command(cryoBin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, so, se
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, stdout, stderr
}

// runCryo runs cryo to completion (bounded by cryoTimeout).
func runCryo(t *testing.T, args ...string) cryoResult {
	t.Helper()
	return runCryoAs(t, nil, bound(t, cryoTimeout), args...)
}

// runCryoAs runs cryo to completion as root (cred nil) or as cred, killing
// it after limit.
func runCryoAs(t *testing.T, cred *syscall.Credential, limit time.Duration, args ...string) cryoResult {
	t.Helper()
	return runCryoFiles(t, cred, limit, nil, args...)
}

// runCryoFiles is runCryoAs with files as cryo's descriptors 3 and up
// (for --inherit-fd).
func runCryoFiles(t *testing.T, cred *syscall.Credential, limit time.Duration, files []*os.File, args ...string) cryoResult {
	t.Helper()
	cmd, stdout, stderr := cryoCommand(t, args...)
	cmd.SysProcAttr.Credential = cred
	cmd.ExtraFiles = files
	res := cryoResult{Args: args}
	p, err := startBg(t, "cryo "+args[0], cmd)
	if err != nil {
		res.Err, res.ExitCode = err, -1
		return res
	}
	if !p.Wait(limit) {
		res.TimedOut = true
		hung()
		p.kill(t)
	}
	res.ExitCode = p.ExitCode()
	res.Stdout, res.Stderr = readString(stdout), readString(stderr)
	return res
}

// dump runs `cryo dump -t PID -D DIR -v 4 -o dump.log EXTRA...` and fails the
// test if it does not succeed.
func dump(t *testing.T, pid int, dir string, extra ...string) cryoResult {
	t.Helper()
	res := tryDump(t, pid, dir, extra...)
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Logf("%s", res)
		logFile(t, filepath.Join(dir, "dump.log"))
		t.Fatalf("cryo dump of pid %d failed (exit %d, err %v, timed out %v)", pid, res.ExitCode, res.Err, res.TimedOut)
	}
	return res
}

func tryDump(t *testing.T, pid int, dir string, extra ...string) cryoResult {
	t.Helper()
	args := append([]string{"dump", "-t", strconv.Itoa(pid), "-D", dir, "-v", "4", "-o", "dump.log"}, extra...)
	return runCryo(t, args...)
}

// restore starts `cryo restore -D DIR -v 4 -o restore.log EXTRA...` in the
// background and returns it; Wait on it gives cryo's (= the restored
// process's) exit status.
func restore(t *testing.T, dir string, extra ...string) (*bgProc, string, string) {
	t.Helper()
	args := append([]string{"restore", "-D", dir, "-v", "4", "-o", "restore.log"}, extra...)
	cmd, stdout, stderr := cryoCommand(t, args...)
	p, err := startBg(t, "cryo restore", cmd)
	if err != nil {
		t.Fatalf("cannot start cryo restore: %v", err)
	}
	return p, stdout, stderr
}

// ---------------------------------------------------------------------------
// Workloads

// Workload is one C workload process and what the test did to it.
type Workload struct {
	t      *testing.T
	Name   string
	Bin    string // absolute path, symlinks resolved
	Args   []string
	Dir    string // its cwd
	Out    string // its stdout+stderr, a regular file
	Pid    int
	Tids   []int
	ImgDir string // last dump directory
	orig   *bgProc
	rst    *bgProc // cryo restore without -d
	rstOut string  // cryo restore stdout/stderr files
	rstErr string
	detach bool // restored with -d: not cryo's child
}

var readyRe = regexp.MustCompile(`(?m)^READY pid=(\d+) tids=([\d,]+)$`)

// startWorkload starts BIN ARGS with stdin /dev/null, stdout+stderr to a
// file, in its own session, and waits until it printed READY. A workload that
// prints "SKIP: reason" skips the test.
func startWorkload(t *testing.T, bin string, args ...string) *Workload {
	t.Helper()
	requireRoot(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	w := &Workload{t: t, Name: filepath.Base(bin), Bin: real, Args: args, Dir: t.TempDir()}
	w.Out = filepath.Join(t.TempDir(), "output.txt")
	out, err := os.OpenFile(w.Out, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()

	cmd := exec.Command(w.Bin, args...)
	cmd.Dir = w.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, out
	cmd.Env = append(os.Environ(), "CRYO_E2E_MARKER=environ-of-"+w.Name)
	if corrupt {
		cmd.Env = append(cmd.Env, "WL_CORRUPT=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Registered before startBg's cleanup so it runs after it (LIFO): the
	// processes are dead by then.
	t.Cleanup(w.cleanup)
	w.orig, err = startBg(t, "workload "+w.Name, cmd)
	if err != nil {
		t.Fatalf("cannot start %s: %v", bin, err)
	}
	w.Pid = w.orig.Pid()

	deadline := time.Now().Add(bound(t, readyTimeout))
	for {
		text := readString(w.Out)
		if m := readyRe.FindStringSubmatch(text); m != nil {
			if pid, _ := strconv.Atoi(m[1]); pid != w.Pid {
				t.Fatalf("%s says pid %s, but it is %d", w.Name, m[1], w.Pid)
			}
			for _, s := range strings.Split(m[2], ",") {
				tid, _ := strconv.Atoi(s)
				w.Tids = append(w.Tids, tid)
			}
			break
		}
		if line := findLine(text, "SKIP: "); line != "" {
			w.orig.Wait(killTimeout)
			t.Skipf("%s: %s", w.Name, line)
		}
		if w.orig.Exited() {
			t.Fatalf("%s %v exited (status %d) before READY; output:\n%s", w.Name, args, w.orig.ExitCode(), clip(text, 8000))
		}
		if time.Now().After(deadline) {
			hung()
			t.Fatalf("%s %v did not print READY in time; output:\n%s", w.Name, args, clip(text, 8000))
		}
		time.Sleep(pollInterval)
	}
	t.Logf("%s %s: READY pid %d tids %v", w.Name, strings.Join(args, " "), w.Pid, w.Tids)
	return w
}

// Output is what the workload printed so far.
func (w *Workload) Output() string { return readString(w.Out) }

// Checkpoint dumps the workload into a new directory (or DIR if given via
// w.ImgDir beforehand) and, unless --leave-running is among extra, checks it
// was killed with SIGKILL, reaps it and waits until its PID is free. No-op in
// CRYO_E2E_NO_CR mode.
func (w *Workload) Checkpoint(extra ...string) {
	t := w.t
	t.Helper()
	if noCR {
		return
	}
	if w.ImgDir == "" {
		w.ImgDir = filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(w.ImgDir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dump(t, w.Pid, w.ImgDir, extra...)
	if slices.Contains(extra, "--leave-running") {
		w.assertRunningUntouched("after dump --leave-running")
		return
	}
	w.reapOriginal()
}

// reapOriginal waits for the original process, which dump must have killed
// with SIGKILL, and for its PID to be free.
func (w *Workload) reapOriginal() {
	t := w.t
	t.Helper()
	if !w.orig.Wait(bound(t, killTimeout)) {
		t.Fatalf("the original process %d still runs %v after cryo dump exited (dump must kill it); output:\n%s",
			w.Pid, killTimeout, clip(w.Output(), 4000))
	}
	if ws, ok := w.orig.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("original process %d ended with %v, want killed by SIGKILL", w.Pid, w.orig.state)
	}
	if out := w.Output(); findLine(out, "PASS") != "" || findLine(out, "FAIL") != "" {
		t.Errorf("the original process ran its checks before dump killed it; output:\n%s", clip(out, 4000))
	}
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
}

// killOriginal kills and reaps the original process (after a dump with
// --leave-running).
func (w *Workload) killOriginal() {
	t := w.t
	t.Helper()
	_ = w.orig.Cmd.Process.Signal(syscall.SIGKILL)
	if !w.orig.Wait(bound(t, killTimeout)) {
		t.Fatalf("original process %d did not die after SIGKILL", w.Pid)
	}
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
}

// Restore restores the workload from w.ImgDir. Without -d among extra, cryo
// runs in the background as the process's parent; with -d it must exit 0
// once the process runs. Either way Restore returns when the restored
// process is running (see waitRestored). No-op in CRYO_E2E_NO_CR mode.
func (w *Workload) Restore(extra ...string) {
	t := w.t
	t.Helper()
	if noCR {
		return
	}
	w.detach = slices.Contains(extra, "-d") || slices.Contains(extra, "--restore-detached")
	w.rst, w.rstOut, w.rstErr = restore(t, w.ImgDir, extra...)
	if w.detach {
		if d := bound(t, restoreReadyTimeout); !w.rst.Wait(d) {
			hung()
			w.logAll()
			t.Fatalf("cryo restore -d did not exit within %v", d)
		}
		if w.rst.ExitCode() != 0 {
			w.logAll()
			t.Fatalf("cryo restore -d failed: exit status %d", w.rst.ExitCode())
		}
	}
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	if !w.detach {
		if ppid := procPPid(w.Pid); ppid != w.rst.Pid() {
			t.Errorf("restored process %d has parent %d, want cryo restore (pid %d) without -d", w.Pid, ppid, w.rst.Pid())
		}
	}
}

// waitRestored polls until the restored process runs: /proc/PID/exe is the
// workload binary, the thread set equals the dumped TIDs, no thread is
// traced or stopped, and no mapping of the cryo binary is left. The test
// sends SIGTERM right after this point.
func (w *Workload) waitRestored(d time.Duration) error {
	deadline := time.Now().Add(d)
	why := ""
	stable := 0
	for time.Now().Before(deadline) {
		if !w.detach && w.rst.Exited() {
			return fmt.Errorf("cryo restore exited (status %d) before the restored process %d ran", w.rst.ExitCode(), w.Pid)
		}
		why = w.notRunningReason()
		if why == "" {
			stable++
			if stable >= 2 {
				return nil
			}
		} else {
			stable = 0
		}
		time.Sleep(pollInterval)
	}
	hung()
	return fmt.Errorf("restored process %d not running within %v: %s", w.Pid, d, why)
}

// notRunningReason returns why PID is not (yet) the running restored
// workload, or "".
func (w *Workload) notRunningReason() string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", w.Pid))
	if err != nil {
		return fmt.Sprintf("no process at pid %d (%v)", w.Pid, err)
	}
	if exe != w.Bin {
		return fmt.Sprintf("/proc/%d/exe is %s, want %s", w.Pid, exe, w.Bin)
	}
	tids := procTids(w.Pid)
	if !slices.Equal(tids, sortedCopy(w.Tids)) {
		return fmt.Sprintf("threads %v, want %v", tids, sortedCopy(w.Tids))
	}
	for _, tid := range tids {
		st := procStatus(fmt.Sprintf("/proc/%d/task/%d/status", w.Pid, tid))
		if st["TracerPid"] != "0" {
			return fmt.Sprintf("thread %d is traced by %s", tid, st["TracerPid"])
		}
		if s := st["State"]; strings.HasPrefix(s, "T") || strings.HasPrefix(s, "t") || strings.HasPrefix(s, "Z") || strings.HasPrefix(s, "X") {
			return fmt.Sprintf("thread %d is in state %q", tid, s)
		}
	}
	if cryoBin != "" {
		maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", w.Pid))
		if bytes.Contains(maps, []byte(cryoBin)) {
			return fmt.Sprintf("the cryo binary is still mapped in %d", w.Pid)
		}
	}
	return ""
}

// assertRunningUntouched checks that the original process still runs freely
// (after dump --leave-running or a failed dump/restore).
func (w *Workload) assertRunningUntouched(when string) {
	t := w.t
	t.Helper()
	if w.orig.Exited() {
		t.Fatalf("%s: the original process %d exited (status %d); output:\n%s", when, w.Pid, w.orig.ExitCode(), clip(w.Output(), 4000))
	}
	if why := w.notRunningReason(); why != "" {
		t.Fatalf("%s: the original process is not running untouched: %s", when, why)
	}
	if out := w.Output(); findLine(out, "PASS") != "" || findLine(out, "FAIL") != "" {
		t.Fatalf("%s: the original process finished its checks already; output:\n%s", when, clip(out, 4000))
	}
}

// Finish sends SIGTERM to the (restored or original) process, waits for it
// to exit and asserts exit status 0 and PASS (no FAIL) in its output. In
// CRYO_E2E_CORRUPT mode it asserts the opposite.
func (w *Workload) Finish() {
	t := w.t
	t.Helper()
	if err := unix.Kill(w.Pid, unix.SIGTERM); err != nil {
		w.logAll()
		t.Fatalf("SIGTERM to %d: %v", w.Pid, err)
	}
	status, known := w.awaitExit(" of SIGTERM")
	if w.rst != nil && !w.detach {
		if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
			t.Errorf("after cryo restore exited: %v", err)
		}
	}
	w.verdict(status, known)
}

// awaitExit waits (bounded by finishTimeout) for the workload to exit and
// returns its exit status, known false when it cannot be read (restored
// with -d by a cryo that is gone: not our child). after ends the message
// of a timeout.
func (w *Workload) awaitExit(after string) (status int, known bool) {
	t := w.t
	t.Helper()
	d := bound(t, finishTimeout)
	switch {
	case w.rst != nil && !w.detach:
		if !w.rst.Wait(d) {
			hung()
			w.logAll()
			t.Fatalf("restored process %d (cryo restore pid %d) did not exit within %v%s", w.Pid, w.rst.Pid(), d, after)
		}
		return w.rst.ExitCode(), true
	case w.rst != nil:
		ws, err := waitForeign(w.Pid, d)
		if err != nil {
			hung()
			w.logAll()
			t.Fatal(err)
		}
		if ws == nil {
			return -1, false
		}
		return waitStatusCode(*ws), true
	default:
		if !w.orig.Wait(d) {
			hung()
			w.logAll()
			t.Fatalf("process %d did not exit within %v%s", w.Pid, d, after)
		}
		return w.orig.ExitCode(), true
	}
}

// verdict judges the workload's own checks once it exited with status
// (known says whether it could be read): PASS, no FAIL line and status 0;
// with CRYO_E2E_CORRUPT=1, FAIL lines and status 1 instead.
func (w *Workload) verdict(status int, known bool) {
	t := w.t
	t.Helper()
	out := w.Output()
	pass := findLine(out, "PASS") != ""
	fails := findLines(out, "FAIL")
	if corrupt {
		if pass || len(fails) == 0 || (known && status != 1) {
			w.logAll()
			t.Fatalf("%s=1: want FAIL lines and exit status 1, got status %d (known %v), PASS %v", envCorrupt, status, known, pass)
		}
		t.Logf("%s=1: the workload detected the damage:\n%s", envCorrupt, strings.Join(fails, "\n"))
		return
	}
	if !pass || len(fails) > 0 || (known && status != 0) {
		w.logAll()
		t.Fatalf("workload %s failed: exit status %d (known %v), PASS printed %v, FAIL lines:\n%s",
			w.Name, status, known, pass, strings.Join(fails, "\n"))
	}
}

// logAll logs the dump and restore logs, cryo's output and the workload's.
func (w *Workload) logAll() {
	t := w.t
	t.Helper()
	if w.ImgDir != "" {
		logFile(t, filepath.Join(w.ImgDir, "dump.log"))
		logFile(t, filepath.Join(w.ImgDir, "restore.log"))
	}
	if w.rst != nil {
		logFile(t, w.rstOut)
		logFile(t, w.rstErr)
	}
	t.Logf("workload %s output:\n%s", w.Name, clip(w.Output(), 16000))
}

// cleanup kills whatever is left at the workload's PID (if it is the
// workload or a cryo stub), reaps our zombie children and reports stray cryo
// processes.
func (w *Workload) cleanup() {
	t := w.t
	if w.Pid > 0 {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", w.Pid)); err == nil &&
			(exe == w.Bin || (cryoBin != "" && strings.HasPrefix(exe, cryoBin))) {
			_ = unix.Kill(w.Pid, unix.SIGKILL)
			if _, err := waitForeign(w.Pid, killTimeout); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	// A restore that wrongly succeeded elsewhere (e.g. at another PID)
	// leaves a workload process behind: the binaries are ours alone.
	for _, pid := range allPids() {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == w.Bin {
			t.Errorf("cleanup: a process of %s is left at pid %d (killed now)", w.Name, pid)
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = waitForeign(pid, killTimeout)
		}
	}
	reapZombieChildren()
	checkNoStrayCryo(t, "at the end of the test")
}

// ---------------------------------------------------------------------------
// /proc helpers

// waitPidFree polls until /proc/PID is gone (bounded by d).
func waitPidFree(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if procPPid(pid) == os.Getpid() && !isTracked(pid) {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
		if time.Now().After(deadline) {
			st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
			return fmt.Errorf("pid %d still exists after %v (name %q, state %q, ppid %s)", pid, d, st["Name"], st["State"], st["PPid"])
		}
		time.Sleep(pollInterval)
	}
}

// waitForeign waits for a process that is not one of our exec.Cmds to exit.
// If it is our child (we are a subreaper) it is reaped and its status
// returned; otherwise the status is unknown (nil).
func waitForeign(pid int, d time.Duration) (*unix.WaitStatus, error) {
	deadline := time.Now().Add(d)
	for {
		if procPPid(pid) == os.Getpid() && !isTracked(pid) {
			var ws unix.WaitStatus
			if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
				return &ws, nil
			}
		} else if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return nil, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("process %d did not exit within %v", pid, d)
		}
		time.Sleep(pollInterval)
	}
}

func waitStatusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func isTracked(pid int) bool {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	return trackedPids[pid]
}

// reapZombieChildren reaps zombie children that no exec.Cmd waits for
// (processes reparented to us).
func reapZombieChildren() {
	self := os.Getpid()
	for _, pid := range allPids() {
		st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
		if st["PPid"] == strconv.Itoa(self) && strings.HasPrefix(st["State"], "Z") && !isTracked(pid) {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// cryoProcesses lists the processes running the cryo binary (cryo itself or
// its re-executed stubs).
func cryoProcesses() []int {
	if cryoBin == "" {
		return nil
	}
	var pids []int
	for _, pid := range allPids() {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && (exe == cryoBin || exe == cryoBin+" (deleted)") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// checkNoStrayCryo fails the test if processes of the cryo binary remain
// (after a 2 s grace period), and kills them.
func checkNoStrayCryo(t *testing.T, when string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	var pids []int
	for {
		reapZombieChildren()
		pids = cryoProcesses()
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	var desc []string
	for _, pid := range pids {
		st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		desc = append(desc, fmt.Sprintf("pid %d (state %s, ppid %s, cmdline %q)", pid, st["State"], st["PPid"],
			strings.ReplaceAll(string(cmdline), "\x00", " ")))
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	t.Errorf("stray cryo processes %s (killed now): %s", when, strings.Join(desc, "; "))
	time.Sleep(100 * time.Millisecond)
	reapZombieChildren()
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procStatus(path string) map[string]string {
	data, _ := os.ReadFile(path)
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// waitSleepingUntraced waits, within a bound, until pid is asleep (state S)
// with no tracer, as a process left alone by a refused dump must end up:
// right after the refusal it may still be running or just detached. It
// reports whether that happened, with the last status read.
func waitSleepingUntraced(t *testing.T, p *bgProc, pid int) (map[string]string, bool) {
	t.Helper()
	deadline := time.Now().Add(bound(t, readyTimeout))
	for {
		st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
		if p.Exited() {
			return st, false
		}
		if strings.HasPrefix(st["State"], "S") && st["TracerPid"] == "0" {
			return st, true
		}
		if time.Now().After(deadline) {
			hung()
			return st, false
		}
		time.Sleep(pollInterval)
	}
}

func procPPid(pid int) int {
	ppid, err := strconv.Atoi(procStatus(fmt.Sprintf("/proc/%d/status", pid))["PPid"])
	if err != nil {
		return -1
	}
	return ppid
}

func procTids(pid int) []int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids
}

// pidAlive reports whether a non-zombie process exists at pid.
func pidAlive(pid int) bool {
	st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
	s, ok := st["State"]
	return ok && !strings.HasPrefix(s, "Z") && !strings.HasPrefix(s, "X")
}

// ---------------------------------------------------------------------------
// small helpers

func sortedCopy(s []int) []int {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func readString(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func logFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s: %v", path, err)
		return
	}
	t.Logf("%s:\n%s", path, clip(string(data), 32000))
}

// clip keeps the end of long texts (logs end with the error).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes cut ...]\n%s", len(s)-n, s[len(s)-n:])
}

func findLine(text, prefix string) string {
	if l := findLines(text, prefix); len(l) > 0 {
		return l[0]
	}
	return ""
}

func findLines(text, prefix string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// assertOneErrorLine checks the contract for failures: exit status non-zero,
// exactly one line on stderr starting with "cryo:", containing every string
// of mustContain, and no Go panic or stack trace.
func assertOneErrorLine(t *testing.T, res cryoResult, mustContain ...string) {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("cannot run cryo: %v", res.Err)
	}
	if res.TimedOut {
		t.Errorf("cryo %s did not finish in time (killed)", strings.Join(res.Args, " "))
	}
	if res.ExitCode == 0 {
		t.Errorf("cryo %s: exit status 0, want non-zero", strings.Join(res.Args, " "))
	}
	stderr := strings.TrimRight(res.Stderr, "\n")
	lines := strings.Split(stderr, "\n")
	if stderr == "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "cryo: ") {
		t.Errorf("cryo %s: stderr must be exactly one line starting with \"cryo: \", got %d line(s):\n%s",
			strings.Join(res.Args, " "), len(lines), clip(res.Stderr, 4000))
	}
	for _, s := range mustContain {
		if !strings.Contains(stderr, s) {
			t.Errorf("cryo %s: the error line does not name %q: %s", strings.Join(res.Args, " "), s, firstLine(stderr))
		}
	}
	for _, bad := range []string{"panic", "goroutine ", "runtime error", "SIGSEGV"} {
		if strings.Contains(res.Stderr, bad) || strings.Contains(res.Stdout, bad) {
			t.Errorf("cryo %s: output contains %q (a crash?):\n%s%s", strings.Join(res.Args, " "), bad, clip(res.Stdout, 2000), clip(res.Stderr, 4000))
		}
	}
}
