package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestE2ETreeShellJob: -j for a whole tree. `sh -c 'cat | cat'` runs on a
// terminal (echo off): sh and both cats hold it, the first cat reads it and
// the second writes to it. Dumped with -j and restored with -j on another
// terminal, the same three PIDs come back, and a line typed on the new
// terminal goes through both cats and appears on it.
func TestE2ETreeShellJob(t *testing.T) {
	requireCryo(t)
	master, slave := openPty(t)
	noEcho(t, slave)
	cmd := exec.Command("/bin/sh", "-c", "cat | cat")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { unix.Kill(-pid, unix.SIGKILL); cmd.Wait() })
	through(t, master, "one")
	tree := treePids(pid)
	if len(tree) != 3 {
		t.Fatalf("tree of sh is %v, want sh and two cats", tree)
	}

	images := filepath.Join(t.TempDir(), "images")
	dump(t, pid, images, "-j")
	cmd.Wait()
	for _, p := range tree {
		if err := waitPidFree(p, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}

	master2, slave2 := openPty(t)
	noEcho(t, slave2)
	rc, done := restoreOnTerminal(t, images, slave2)
	t.Cleanup(func() { unix.Kill(-pid, unix.SIGKILL); rc.Process.Kill(); <-done })
	deadline := time.Now().Add(bound(t, restoreReadyTimeout))
	for len(treePids(pid)) != 3 {
		if time.Now().After(deadline) {
			logFile(t, filepath.Join(images, "restore.log"))
			t.Fatalf("restored tree did not appear: %v", treePids(pid))
		}
		time.Sleep(pollInterval)
	}
	if got := treePids(pid); !slices.Equal(sortedCopy(got), sortedCopy(tree)) {
		t.Errorf("restored tree %v, was %v", got, tree)
	}
	through(t, master2, "two")
}

// through types a line on the terminal and waits until it comes back out
// of the pipeline.
func through(t *testing.T, master *os.File, line string) {
	t.Helper()
	if _, err := master.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	master.SetReadDeadline(time.Now().Add(bound(t, 5*time.Second)))
	for !strings.Contains(string(got), line) {
		n, err := master.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q on the terminal, got %q: %v", line, got, err)
		}
		got = append(got, buf[:n]...)
	}
}

func noEcho(t *testing.T, tty *os.File) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}

// treePids is pid and its descendants.
func treePids(pid int) []int {
	if !pidAlive(pid) {
		return nil
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for _, p := range allPids() {
			if procPPid(p) == out[i] {
				out = append(out, p)
			}
		}
	}
	return out
}
