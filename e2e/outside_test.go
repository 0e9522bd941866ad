package e2e

// Descriptors shared with the world outside the tree (issue 11 item 15):
// each workload (testdata/outside.c) writes to something the test holds
// the other end of; after the restore it writes to what cryo's
// --inherit-fd gave it, and the test reads that.

import (
	"bufio"
	"fmt"
	"net"
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

// restoreInherit runs `cryo restore -d --inherit-fd fd[3]:KEY` with f as
// cryo's descriptor 3 and waits until the workload runs again.
func (w *Workload) restoreInherit(key string, f *os.File) {
	t := w.t
	t.Helper()
	args := []string{"restore", "-D", w.ImgDir, "-d", "-v", "4", "-o", "restore.log", "--inherit-fd", "fd[3]:" + key}
	cmd, stdout, stderr := cryoCommand(t, args...)
	cmd.ExtraFiles = []*os.File{f}
	p, err := startBg(t, "cryo restore", cmd)
	if err != nil {
		t.Fatal(err)
	}
	w.rst, w.detach = p, true
	if !p.Wait(bound(t, restoreReadyTimeout)) {
		hung()
		p.kill(t)
		t.Fatalf("cryo restore -d did not exit in time")
	}
	if p.ExitCode() != 0 {
		w.logAll()
		t.Fatalf("cryo %s: exit status %d\n%s%s", strings.Join(args, " "), p.ExitCode(), readString(stdout), readString(stderr))
	}
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
}

// readLine reads one line from r within the restore bound.
func readLine(t *testing.T, r *os.File) string {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(bound(t, restoreReadyTimeout)))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("reading %s: %q, %v", r.Name(), line, err)
	}
	return line
}

// inode is the inode number of f.
func inode(t *testing.T, f *os.File) uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestE2EInheritPipe: a process whose output goes to a pipe the test
// reads (a service's stdout to a logger). The dump leaves the line queued
// for the test where it is (the test reads it after the dump); the
// restore, given a new pipe with --inherit-fd fd[3]:pipe:[INO], writes
// the process's next line into it, and the test sees the end of that pipe
// once the process exits (cryo kept no copy).
func TestE2EInheritPipe(t *testing.T) {
	requireCryo(t)
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	defer w1.Close()
	w := startWorkload(t, workloadBin(t, "outside", linkDynamic), "pipe", fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), w1.Fd()))
	w.Checkpoint()
	if got := readLine(t, r1); got != "before\n" {
		t.Fatalf("the test's pipe holds %q after the dump, want the line written before it", got)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	w.restoreInherit(fmt.Sprintf("pipe:[%d]", inode(t, r1)), w2)
	w2.Close()
	w.Finish()
	if got, want := readLine(t, r2), fmt.Sprintf("after %d\n", w.Pid); got != want {
		t.Fatalf("the inherited pipe got %q, want %q", got, want)
	}
	r2.SetReadDeadline(time.Now().Add(bound(t, restoreReadyTimeout)))
	if n, err := r2.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Fatalf("after the process exited, the inherited pipe gives %d bytes, %v: want its end (a copy of its write end is left)", n, err)
	}
}

// TestE2EInheritUnixStream: a Unix stream connection to a listener of
// the test's (journald's stdout stream, say). The dump is refused in one
// line without --external unix[INO], the process running on; with it,
// the restore gives the process one end of a new socket pair with
// --inherit-fd fd[3]:socket:[INO], and the test reads the process's next
// line from the other end.
func TestE2EInheritUnixStream(t *testing.T) {
	requireCryo(t)
	path := filepath.Join(t.TempDir(), "peer.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := startWorkload(t, workloadBin(t, "outside", linkDynamic), "unix", path)
	l.SetDeadline(time.Now().Add(bound(t, restoreReadyTimeout)))
	peer, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", w.Pid))
	if err != nil {
		t.Fatal(err)
	}
	ino := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, w.Pid, dir)
	assertOneErrorLine(t, res, "outside the tree", "--external unix["+ino+"]")
	w.assertRunningUntouched("after the refused dump")
	w.Checkpoint("--external", "unix["+ino+"]")
	ours, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	w.restoreInherit("socket:["+ino+"]", theirs)
	theirs.Close()
	w.Finish()
	if got, want := readLine(t, ours), fmt.Sprintf("after %d\n", w.Pid); got != want {
		t.Fatalf("the inherited socket got %q, want %q", got, want)
	}
}

// socketPair returns the two ends of a new Unix stream socket pair.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs"), nil
}

// TestE2EInheritTerminal: a process writing to a terminal it does not own
// (the test holds the pty's master). The dump is refused in one line
// naming -j and --external tty[RDEV:DEV]; with the latter it works, and
// the restore gives the process the slave of a new pty of the test's with
// --inherit-fd fd[3]:/dev/pts/N: the test reads the next line from the
// new master.
func TestE2EInheritTerminal(t *testing.T) {
	requireCryo(t)
	_, s1 := openPty(t)
	slave := s1.Name()
	w := startWorkload(t, workloadBin(t, "outside", linkDynamic), "tty", slave)
	var st unix.Stat_t
	if err := unix.Stat(slave, &st); err != nil {
		t.Fatal(err)
	}
	ext := fmt.Sprintf("tty[%x:%x]", st.Rdev, st.Dev)
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, w.Pid, dir)
	assertOneErrorLine(t, res, slave, "--external "+ext)
	w.assertRunningUntouched("after the refused dump")
	w.Checkpoint("--external", ext)
	m2, s2 := openPty(t)
	w.restoreInherit(slave, s2)
	s2.Close()
	w.Finish()
	got := strings.ReplaceAll(readLine(t, m2), "\r", "")
	if want := fmt.Sprintf("after %d\n", w.Pid); got != want {
		t.Fatalf("the new terminal got %q, want %q", got, want)
	}
}

// TestE2ERootlessOutsidePipe: a rootless tree (the test user, in user and
// IPC namespaces of its own) writing to a pipe of root's that the test
// reads. The bytes queued for the test are not the tree's: the user's
// dump, which could not open root's pipe to read them, leaves them alone
// and succeeds, and the test still reads them.
func TestE2ERootlessOutsidePipe(t *testing.T) {
	requireCryo(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dir := usernsDir(t, 0o755)
	out := filepath.Join(dir, "output.txt")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Chown(out, testUID, testGID)
	cmd := exec.Command("unshare", "-r", "-i", workloadBin(t, "outside", linkDynamic), "pipe", "fd:3")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: testUserCred()}
	p, err := startBg(t, "outside", cmd)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(bound(t, readyTimeout))
	for !strings.Contains(readString(out), "READY") {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("outside did not print READY; output:\n%s", readString(out))
		}
		time.Sleep(pollInterval)
	}
	imgs := filepath.Join(dir, "images")
	if err := os.Mkdir(imgs, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(imgs, testUID, testGID)
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(p.Pid()), "-D", imgs, "-v", "4", "-o", "dump.log")
	if res.ExitCode != 0 {
		t.Fatalf("rootless dump: %s\n%s", res, readString(filepath.Join(imgs, "dump.log")))
	}
	if !p.Wait(bound(t, killTimeout)) {
		t.Fatal("the dumped process did not die")
	}
	if got := readLine(t, r); got != "before\n" {
		t.Fatalf("the test's pipe holds %q after the dump, want the line written before it", got)
	}
}
