package e2e

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TestE2ETreePty: a pseudo-terminal pair the tree owns (tree_pty.c): the
// root holds the master (packet mode, a dup), S leads a session whose
// controlling terminal is the slave (raw mode with changed c_cc, window
// size, exclusive, a second open file with O_NONBLOCK), G is the
// foreground group. After restore the same index and name, every setting,
// tty_nr and tpgid in /proc/PID/stat, and bytes flowing both ways.
func TestE2ETreePty(t *testing.T) {
	forEachLink(t, "tree_pty", func(t *testing.T, bin string) {
		treeCR(t, bin)
	})
}

// TestE2ETreePtyQueued: bytes waiting in a pty of the tree. Written on the
// slave for the master (queued-out), they are taken into tty-data.img:
// after a restore, and after a dump with --leave-running (which puts them
// back), the master reads them first, then the new line. Written on the
// master for the slave (queued-in), they cannot be put back unchanged: the
// dump is refused in one line and the tree goes on untouched, the slave
// reading them where they waited.
func TestE2ETreePtyQueued(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "tree_pty", linkDynamic)
	t.Run("queued-in", func(t *testing.T) {
		tr := startTree(t, bin, "queued-in")
		tr.refusedDump("queued terminal input is not supported")
		tr.Finish()
	})
	t.Run("queued-out", func(t *testing.T) {
		treeCR(t, bin, "queued-out")
	})
	t.Run("queued-out-leave-running", func(t *testing.T) {
		tr := startTree(t, bin, "queued-out")
		tr.Checkpoint("--leave-running")
		tr.Finish()
	})
}

// TestE2ETreePtyRefusedRestore: restores of a tree_pty image that cannot
// be done are refused in one line naming the cause, and leave no process
// behind: the pty index taken by another process since the dump, and
// damaged images (tty-info.img missing, an absurd index, a terminal file
// pointing at no terminal, a slave file no process holds). The untouched image then restores and passes.
func TestE2ETreePtyRefusedRestore(t *testing.T) {
	requireCryo(t)
	tr := startTree(t, workloadBin(t, "tree_pty", linkDynamic))
	name, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/10", tr.Role("S")))
	index, perr := strconv.Atoi(strings.TrimPrefix(name, "/dev/pts/"))
	if err != nil || perr != nil {
		t.Fatalf("the slave of S: %q %v %v", name, err, perr)
	}
	tr.Checkpoint()
	ttyInfo := func(dir string) string { return filepath.Join(dir, "tty-info.img") }
	cases := []struct {
		name, want string
		damage     func(t *testing.T, dir string)
	}{
		{"index-taken", fmt.Sprintf("pty index %d is taken", index), func(t *testing.T, dir string) {
			holdPty(t, index) // released at the end of the subtest
		}},
		{"tty-info-missing", "unknown terminal", func(t *testing.T, dir string) {
			if err := os.Remove(ttyInfo(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{"absurd-index", "is not supported", func(t *testing.T, dir string) {
			editImage(t, ttyInfo(dir), func(m proto.Message) {
				m.(*tty.TtyInfoEntry).Pty.Index = proto.Uint32(math.MaxUint32)
			})
		}},
		{"file-of-no-terminal", "unknown terminal", func(t *testing.T, dir string) {
			editImage(t, filepath.Join(dir, "files.img"), func(m proto.Message) {
				if f := m.(*fdinfo.FileEntry).GetTty(); f != nil {
					f.TtyInfoId = proto.Uint32(12345)
				}
			})
		}},
		{"file-held-by-nobody", "is held by no process", addUnheldSlaveFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			copyDir(t, tr.w.ImgDir, dir)
			c.damage(t, dir)
			res := runCryo(t, "restore", "-D", dir, "-v", "4", "-o", "restore.log")
			t.Logf("%s", res)
			if res.ExitCode == 0 {
				logFile(t, filepath.Join(dir, "restore.log"))
			}
			assertOneErrorLine(t, res, c.want)
			checkNoStrayCryo(t, "after the failed restore")
			for _, pid := range tr.Pids {
				deadline := time.Now().Add(2 * time.Second)
				for pidAlive(pid) && time.Now().Before(deadline) {
					reapZombieChildren()
					time.Sleep(pollInterval)
				}
				if pidAlive(pid) {
					t.Errorf("after the failed restore: %s (pid %d) exists", tr.Want[pid].Role, pid)
				}
			}
		})
	}
	tr.Restore()
	tr.Finish()
}

// addUnheldSlaveFile adds to files.img a second open file of a pty's
// slave that no process holds (no fdinfo entry names it).
func addUnheldSlaveFile(t *testing.T, dir string) {
	path := filepath.Join(dir, "files.img")
	img, err := decodeImage(path)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var slave *fdinfo.FileEntry
	maxID := uint32(0)
	for _, e := range img.Entries {
		f := e.Message.(*fdinfo.FileEntry)
		maxID = max(maxID, f.GetId())
		if tf := f.GetTty(); tf != nil && tf.GetTtyInfoId()&1 == 0 && tf.RegfId == nil {
			slave = f
		}
	}
	if slave == nil {
		t.Fatal("files.img has no file of a pty slave")
	}
	extra := proto.Clone(slave).(*fdinfo.FileEntry)
	extra.Id, extra.Tty.Id = proto.Uint32(maxID+1), proto.Uint32(maxID+1)
	img.Entries = append(img.Entries, &crit.CriuEntry{Message: extra})
	writeImage(t, path, img)
}

// holdPty opens pty masters until the kernel hands out index (the lowest
// free one comes first) and keeps that one open until release (or the end
// of the test).
func holdPty(t *testing.T, index int) (release func()) {
	t.Helper()
	var extra []int
	defer func() {
		for _, fd := range extra {
			unix.Close(fd)
		}
	}()
	for range index + 1 {
		fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open /dev/ptmx: %v", err)
		}
		got, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		if err != nil {
			t.Fatalf("TIOCGPTN: %v", err)
		}
		if int(got) == index {
			var once sync.Once
			release = func() { once.Do(func() { unix.Close(fd) }) }
			t.Cleanup(release)
			return release
		}
		extra = append(extra, fd)
	}
	t.Fatalf("could not take pty index %d (in use elsewhere?)", index)
	return nil
}

// scriptRun is script(1) from util-linux running a shell command on a pty
// of its own: script keeps the master, sh leads a session on the slave;
// script copies its stdin (a FIFO the test writes through keeper) to the
// master and the master to its stdout (the file out).
type scriptRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	pid    int
	tree   []int // script and sh, once started
	keeper *os.File
	out    string
}

// startScript runs script with shCmd as the command of sh, script's one
// child: script hands its command to $SHELL -c, and dash neither execs a
// command given that way nor is what every caller's $SHELL names, so the
// test sets SHELL itself.
func startScript(t *testing.T, shCmd string) *scriptRun {
	t.Helper()
	requireCryo(t)
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux (package bsdutils) is needed: %v", err)
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "in")
	s := &scriptRun{t: t, out: filepath.Join(dir, "out")}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The test's end of the FIFO, read-write so that neither open blocks.
	if s.keeper, err = os.OpenFile(fifo, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.keeper.Close() })
	in, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(s.out)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(scriptBin, "-qfc", shCmd, "/dev/null")
	s.cmd.Dir, s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = dir, in, out, out
	s.cmd.Env = append(os.Environ(), "SHELL=/bin/sh")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = s.cmd.Start()
	in.Close()
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.pid = s.cmd.Process.Pid
	t.Cleanup(func() {
		for _, p := range append([]int{s.pid}, s.tree...) {
			unix.Kill(p, unix.SIGKILL)
		}
		s.cmd.Wait()
	})
	return s
}

// waitOutput waits until script wrote something that ok accepts.
func (s *scriptRun) waitOutput(what string, ok func(out string) bool) {
	s.t.Helper()
	deadline := time.Now().Add(bound(s.t, 10*time.Second))
	for !ok(readString(s.out)) {
		if time.Now().After(deadline) {
			s.t.Fatalf("script did not write %s; it wrote:\n%s", what, clip(readString(s.out), 4000))
		}
		time.Sleep(pollInterval)
	}
}

// dumpRestore dumps the tree (script and sh) and restores it with -d.
func (s *scriptRun) dumpRestore() (images string) {
	t := s.t
	t.Helper()
	if s.tree = treePids(s.pid); len(s.tree) != 2 {
		t.Fatalf("the tree of script is %v, want script and sh", s.tree)
	}
	images = filepath.Join(t.TempDir(), "images")
	dump(t, s.pid, images)
	s.cmd.Wait()
	for _, p := range s.tree {
		if err := waitPidFree(p, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	// -d: cryo returns once the tree runs, restored whole.
	if res := runCryo(t, "restore", "-D", images, "-d", "-v", "4", "-o", "restore.log"); res.ExitCode != 0 {
		logFile(t, filepath.Join(images, "restore.log"))
		t.Fatalf("restore: %s", res)
	}
	if got := treePids(s.pid); !slices.Equal(got, s.tree) {
		t.Errorf("restored tree %v, was %v", got, s.tree)
	}
	return images
}

// TestE2EPtyScript: a real program on a pty of its own (scriptRun), sh
// reading and answering through /dev/tty. Dumped and restored mid-run: the
// same PIDs, sh's session, group, controlling terminal (tty_nr), foreground
// group (tpgid) and terminal names, and a line written after the restore
// goes through the terminal to sh and comes back out.
func TestE2EPtyScript(t *testing.T) {
	// sh talks through /dev/tty, its controlling terminal, at fd 3.
	s := startScript(t, "exec 3<>/dev/tty; while read l <&3; do echo got:$l >&3; done")
	say := func(line string) {
		t.Helper()
		if _, err := s.keeper.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		s.waitOutput("got:"+line, func(out string) bool { return strings.Contains(out, "got:"+line) })
	}
	say("before")
	sh := treePids(s.pid)[1:]
	if len(sh) != 1 {
		t.Fatalf("script's children: %v, want sh", sh)
	}
	before := ttyState(t, sh[0])
	t.Logf("sh (pid %d) before: %s", sh[0], before)
	s.dumpRestore()
	if after := ttyState(t, sh[0]); after != before {
		t.Errorf("sh after the restore: %s, was %s", after, before)
	}
	say("after")
}

// TestE2EPtyScriptOutput: sh writes 100000 numbered lines as fast as it
// can; script copies them from the master. Dumped mid-stream (the master
// then has bytes queued, saved in tty-data.img) and restored, the output
// has every line once, in order: nothing lost or doubled across the dump.
func TestE2EPtyScriptOutput(t *testing.T) {
	const lines = 100000
	s := startScript(t, fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo line $i; done; echo finished; read x", lines))
	s.waitOutput("line 1000", func(out string) bool { return strings.Contains(out, "line 1000\r") })
	images := s.dumpRestore()
	if _, err := os.Stat(filepath.Join(images, "tty-data.img")); err == nil {
		t.Logf("the dump saved bytes queued for the master (tty-data.img)")
	}
	s.waitOutput("finished", func(out string) bool { return strings.Contains(out, "finished\r") })
	out := strings.ReplaceAll(readString(s.out), "\r", "")
	next := 1
	for _, l := range strings.Split(strings.TrimSuffix(out, "finished\n"), "\n") {
		if l == "" {
			continue
		}
		if l != fmt.Sprintf("line %d", next) {
			t.Fatalf("after line %d comes %q: lines lost, doubled or torn across the dump", next-1, clip(l, 200))
		}
		next++
	}
	if next != lines+1 {
		t.Fatalf("%d lines, want %d", next-1, lines)
	}
}

// ttyState is what /proc tells of a process's terminal: its session,
// group, controlling terminal (tty_nr), foreground group (tpgid), and the
// names of its fds 0 and 3.
func ttyState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	link3, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid))
	return fmt.Sprintf("pgid=%s sid=%s tty_nr=%s tpgid=%s fd0=%s fd3=%s", f[2], f[3], f[4], f[5], link, link3)
}

// TestE2ETreePtyRootless: the tree_pty workload run, dumped and restored by
// the test user (runRootlessWorkload): the restore opens the files in a
// stub outside the tree's pid namespace, but /dev/tty must be opened by a
// process of the session the pair controls, or it would name cryo's own
// terminal (or none).
func TestE2ETreePtyRootless(t *testing.T) {
	runRootlessWorkload(t, rootlessOwnUID, "tree_pty", "shared")
}

// TestE2EPtyOtherDevpts: a process holding the master of a pty from
// another devpts instance than cryo's /dev/pts (mounted with newinstance)
// is refused in one line and left running: restore makes pairs again in
// cryo's devpts, and the dump would otherwise read the settings and queued
// output of one terminal and put them back into the same index of another.
func TestE2EPtyOtherDevpts(t *testing.T) {
	requireCryo(t)
	requireRoot(t)
	pts := filepath.Join(t.TempDir(), "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("devpts", pts, "devpts", 0, "newinstance,ptmxmode=0666"); err != nil {
		t.Fatalf("mount a devpts instance: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(pts, unix.MNT_DETACH) })
	master, err := os.OpenFile(filepath.Join(pts, "ptmx"), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	dir := t.TempDir()
	report := filepath.Join(dir, "report")
	pid := startTtyWorkload(t, workloadBin(t, "tty", linkDynamic), report, master).Process.Pid
	res := tryDump(t, pid, filepath.Join(dir, "images"))
	assertOneErrorLine(t, res, "another devpts instance")
	if !pidAlive(pid) {
		t.Fatal("the refused dump did not leave the process running")
	}
}
