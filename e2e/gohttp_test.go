package e2e

// The done-when program of issue 11: a Go net/http server (its listener
// MPTCP, Go's default) with a keep-alive client in another process of the
// tree (testdata/gohttp), dumped and restored while serving.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildGoProgram builds e2e/testdata/NAME with the go command running the
// tests, into a temporary directory.
func buildGoProgram(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./e2e/testdata/"+name)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

var goReadyRe = regexp.MustCompile(`(?m)^READY pid=(\d+)$`)

// startGoHTTP starts gohttp ARGS in a session of its own, its output in a
// file, and waits until it printed READY; it returns the process, the
// output file and the tree's PIDs (the server first).
func startGoHTTP(t *testing.T, bin string, args ...string) (*bgProc, string, []int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "output.txt")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p, err := startBg(t, "gohttp", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for pid := range descendants(p.Pid()) {
			unix.Kill(pid, unix.SIGKILL)
		}
	})
	deadline := time.Now().Add(bound(t, readyTimeout))
	for !goReadyRe.MatchString(readString(out)) {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("gohttp did not print READY (exited %v); output:\n%s", p.Exited(), clip(readString(out), 4000))
		}
		time.Sleep(pollInterval)
	}
	m := goReadyRe.FindStringSubmatch(readString(out))
	if pid, _ := strconv.Atoi(m[1]); pid != p.Pid() {
		t.Fatalf("gohttp says pid %d, it is %d", pid, p.Pid())
	}
	pids := []int{p.Pid()}
	for pid := range descendants(p.Pid()) {
		if pid != p.Pid() {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("gohttp's tree is %v, want the server and its client", pids)
	}
	return p, out, pids
}

// finishGoHTTP sends SIGTERM to the server, waits for the tree to end
// and wants PASS and no FAIL line.
func finishGoHTTP(t *testing.T, pid int, out string, pids []int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to %d: %v", pid, err)
	}
	for _, p := range pids {
		if err := waitPidFree(p, bound(t, finishTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	text := readString(out)
	if !strings.Contains(text, "\nPASS\n") || strings.Contains(text, "FAIL") {
		t.Fatalf("gohttp did not pass; output:\n%s", clip(text, 4000))
	}
}

// TestE2EGoHTTP: dumped with --tcp-established while the client's
// requests keep coming, the tree comes back: the client's keep-alive
// connection carries on (no error, no new connection), the listener is
// still MPTCP (protocol 262), and the accepted connection, which a Go
// client dials as plain TCP, is a plain TCP socket (6) before and after.
// A client that dials MPTCP too makes an established MPTCP connection,
// which the kernel cannot repair: the dump is refused in one line saying
// so, and the tree serves on.
func TestE2EGoHTTP(t *testing.T) {
	requireCryo(t)
	bin := buildGoProgram(t, "gohttp")
	t.Run("tcp-client", func(t *testing.T) {
		p, out, pids := startGoHTTP(t, bin)
		if text := readString(out); !strings.Contains(text, "LISTENER proto=262") || !strings.Contains(text, "ACCEPTED proto=6") {
			t.Fatalf("want an MPTCP listener and a plain TCP accepted connection; output:\n%s", text)
		}
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		dump(t, p.Pid(), dir, "--tcp-established")
		if !p.Wait(bound(t, killTimeout)) {
			t.Fatal("the dumped server did not die")
		}
		for _, pid := range pids {
			if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
				t.Fatal(err)
			}
		}
		res := runCryo(t, "restore", "-D", dir, "-d", "--tcp-established", "-v", "4", "-o", "restore.log")
		if res.ExitCode != 0 {
			t.Fatalf("cryo restore: %s\n%s", res, readString(filepath.Join(dir, "restore.log")))
		}
		finishGoHTTP(t, pids[0], out, pids)
	})
	t.Run("mptcp-client", func(t *testing.T) {
		p, out, pids := startGoHTTP(t, bin, "mptcp")
		if text := readString(out); !strings.Contains(text, "ACCEPTED proto=262") {
			t.Fatalf("want an MPTCP accepted connection; output:\n%s", text)
		}
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		res := tryDump(t, p.Pid(), dir, "--tcp-established")
		assertOneErrorLine(t, res, "established MPTCP connection", "cannot repair")
		finishGoHTTP(t, pids[0], out, pids)
	})
}
