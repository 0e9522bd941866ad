package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty returns a new pseudo-terminal's master and slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// startTtyWorkload starts the tty workload in a session of its own with
// term as its standard descriptors, and waits until it reports READY.
func startTtyWorkload(t *testing.T, bin, report string, term *os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, report)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL); cmd.Wait() })
	deadline := time.Now().Add(bound(t, readyTimeout))
	for !strings.Contains(readString(report), "READY") {
		if time.Now().After(deadline) {
			t.Fatalf("tty workload not ready: %s", readString(report))
		}
		time.Sleep(pollInterval)
	}
	return cmd
}

// TestE2EShellJob: a process whose standard descriptors are a terminal is
// refused without -j (one line, left running); with -j it is dumped, and
// `restore -j` hands it the restoring cryo's terminal, as CRIU does. One of
// its threads is blocked in read() on the terminal at dump time and must
// get the line typed on the new terminal.
func TestE2EShellJob(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "tty", linkDynamic)
	dir := t.TempDir()
	report := filepath.Join(dir, "report")
	_, slave := openPty(t)
	cmd := startTtyWorkload(t, bin, report, slave)
	pid := cmd.Process.Pid

	images := filepath.Join(dir, "images")
	res := tryDump(t, pid, images)
	if res.ExitCode == 0 {
		t.Fatal("dump of a process holding a terminal succeeded without -j")
	}
	assertOneErrorLine(t, res)
	if !strings.Contains(res.Stderr, "shell-job") {
		t.Errorf("the refusal does not point at -j: %s", res.Stderr)
	}
	if !pidAlive(pid) {
		t.Fatal("the refused dump did not leave the process running")
	}

	dump(t, pid, images, "-j")
	cmd.Wait()
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}

	master2, slave2 := openPty(t)
	rc, done := restoreOnTerminal(t, images, slave2)
	deadline := time.Now().Add(bound(t, restoreReadyTimeout))
	for !pidAlive(pid) || !strings.HasSuffix(mustReadlink(fmt.Sprintf("/proc/%d/exe", pid)), "tty.dyn") {
		if time.Now().After(deadline) {
			logFile(t, filepath.Join(images, "restore.log"))
			t.Fatal("restored tty workload did not appear")
		}
		time.Sleep(pollInterval)
	}
	// restore -j returns only when the workload exits: wait until cryo let
	// its threads go (a signal sent while the restore still holds them is
	// not for the workload yet).
	for !restoredAndReleased(pid, 2) {
		if time.Now().After(deadline) {
			logFile(t, filepath.Join(images, "restore.log"))
			t.Fatal("the restored tty workload's two threads were not let go")
		}
		time.Sleep(pollInterval)
	}
	// The thread that was blocked in read() on the old terminal reads this:
	// wait until the slave's input queue is empty again, so that the line
	// was read before SIGTERM asks the workload for its report.
	if _, err := master2.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	readDeadline := time.Now().Add(bound(t, restoreReadyTimeout))
	for {
		n, err := unix.IoctlGetInt(int(slave2.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatalf("TIOCINQ of the restoring terminal: %v", err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(readDeadline) {
			hung()
			t.Fatalf("the restored workload did not read the line typed on its new terminal (%d bytes left)", n)
		}
		time.Sleep(pollInterval)
	}
	unix.Kill(pid, unix.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			logFile(t, filepath.Join(images, "restore.log"))
			t.Fatalf("cryo restore -j: %v; report:\n%s", err, readString(report))
		}
	case <-time.After(bound(t, finishTimeout)):
		rc.Process.Kill()
		t.Fatalf("restored workload did not exit; report:\n%s", readString(report))
	}
	if out := readString(report); !strings.Contains(out, "PASS") {
		t.Fatalf("workload report:\n%s", out)
	}
	// What it wrote to its terminal arrived on the restoring terminal
	// (after the echo of "ping", which a read may return alone).
	master2.SetReadDeadline(time.Now().Add(bound(t, 2*time.Second)))
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "tty-workload-after-restore") {
		n, err := master2.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("the restoring terminal got %q (%v)", got, err)
		}
	}
}

// restoreOnTerminal starts `cryo restore -j` of images with tty as its
// stdin, stdout and stderr (the restoring terminal); done gets its exit.
func restoreOnTerminal(t *testing.T, images string, tty *os.File) (rc *exec.Cmd, done <-chan error) {
	t.Helper()
	rc = exec.Command(cryoBin, "restore", "-D", images, "-j", "-v", "4", "-o", "restore.log")
	rc.Stdin, rc.Stdout, rc.Stderr = tty, tty, tty
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- rc.Wait() }()
	return rc, ch
}

func mustReadlink(p string) string {
	s, _ := os.Readlink(p)
	return s
}

// restoredAndReleased reports whether pid has the given number of threads,
// none of them traced any more.
func restoredAndReleased(pid, threads int) bool {
	tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tids) != threads {
		return false
	}
	for _, tid := range tids {
		if tp := procStatus(fmt.Sprintf("/proc/%d/task/%s/status", pid, tid.Name()))["TracerPid"]; tp != "0" {
			return false
		}
	}
	return true
}
