package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestE2ERemovedRoot (issue 11 item 3): a process chrooted into an empty
// directory that was then removed, whose executable, libraries, stdout
// and an open file lie outside that root, comes back in a removed root
// (checked by the process: an empty directory with no links; and from
// outside: /proc/PID/root ends in " (deleted)"), with its executable
// and its descriptors. As root, and as the test user (the process drops
// to its ids after the chroot), each restored by root.
func TestE2ERemovedRoot(t *testing.T) {
	requireCryo(t)
	// fsView checks from outside that pid's root is the removed rr-root
	// of dir and its executable is exe.
	fsView := func(t *testing.T, when string, pid int, dir, exe string) {
		t.Helper()
		want := filepath.Join(dir, "rr-root") + " (deleted)"
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err != nil || got != want {
			t.Errorf("%s: root of %d is %q (%v), want %q", when, pid, got, err, want)
		}
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || got != exe {
			t.Errorf("%s: exe of %d is %q (%v), want %s", when, pid, got, err, exe)
		}
	}
	t.Run("root", func(t *testing.T) {
		w := startWorkload(t, workloadBin(t, "removedroot", linkDynamic))
		fsView(t, "before the dump", w.Pid, w.Dir, w.Bin)
		w.Checkpoint()
		if noCR {
			return
		}
		w.Restore()
		fsView(t, "after the restore", w.Pid, w.Dir, w.Bin)
		w.Finish()
	})
	t.Run("user", func(t *testing.T) {
		ensureTestUser(t)
		dir := usernsDir(t, 0o755)
		bin, err := os.ReadFile(workloadBin(t, "removedroot", linkDynamic))
		if err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "w")
		if err := os.WriteFile(exe, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		s := &secTree{t: t, dir: dir, out: filepath.Join(dir, "out"), imgDir: t.TempDir()}
		cmd := userCommand(t, dir, s.out, exe, strconv.Itoa(testUID))
		cmd.SysProcAttr.Credential = nil // chroot needs root; the process then becomes the user
		p, err := startBg(t, "removedroot", cmd)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.kill(t) })
		waitForLine(t, s.out, "READY", p)
		s.pid = p.Pid()
		fsView(t, "before the dump", s.pid, dir, exe)
		dump(t, s.pid, s.imgDir)
		if !p.Wait(bound(t, 30*time.Second)) {
			t.Fatalf("the dumped process %d is still running", s.pid)
		}
		if res := s.restore("restore.log"); res.ExitCode != 0 {
			logFile(t, filepath.Join(s.imgDir, "restore.log"))
			t.Fatalf("restore: %s", res)
		}
		fsView(t, "after the restore", s.pid, dir, exe)
		s.finish()
	})
}
