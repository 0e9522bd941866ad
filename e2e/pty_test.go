package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
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

// TestE2ETreePtyIndexTaken: when another process took the pty index of
// the image since the dump, restore refuses in one line naming the pty and
// leaves nothing behind; once the index is free again it restores.
func TestE2ETreePtyIndexTaken(t *testing.T) {
	requireCryo(t)
	tr := startTree(t, workloadBin(t, "tree_pty", linkDynamic))
	name, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/10", tr.Role("S")))
	index, perr := strconv.Atoi(strings.TrimPrefix(name, "/dev/pts/"))
	if err != nil || perr != nil {
		t.Fatalf("the slave of S: %q %v %v", name, err, perr)
	}
	tr.Checkpoint()
	release := holdPty(t, index)
	res := runCryo(t, "restore", "-D", tr.w.ImgDir, "-v", "4", "-o", "restore.log")
	t.Logf("%s", res)
	if res.ExitCode == 0 {
		logFile(t, filepath.Join(tr.w.ImgDir, "restore.log"))
	}
	assertOneErrorLine(t, res, fmt.Sprintf("pty index %d is taken", index))
	checkNoStrayCryo(t, "after the failed restore")
	for _, pid := range tr.Pids {
		if pidAlive(pid) {
			t.Errorf("after the failed restore: %s (pid %d) exists", tr.Want[pid].Role, pid)
		}
	}
	release()
	tr.Restore()
	tr.Finish()
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
