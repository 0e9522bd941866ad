package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EFanotify: a fanotify group (FAN_CLASS_NOTIF|FAN_NONBLOCK, no
// FD_CLOEXEC) with an inode mark on a file (FAN_MODIFY|FAN_CLOSE_WRITE), a
// directory mark (FAN_MODIFY|FAN_EVENT_ON_CHILD), a mount mark
// (FAN_CLOSE_WRITE) and an ignored-mask-only mark comes back with the same
// flags and fdinfo mark lines, and each mark still reports its events (or
// silences them); see testdata/fanotify.c for every check.
func TestE2EFanotify(t *testing.T) {
	requireRoot(t)
	checkpointRestore(t, workloadBin(t, "fanotify", linkDynamic))
}

// TestE2EFanotifyFilesystemMark: a group with a filesystem mark
// (FAN_MARK_FILESYSTEM) is refused at dump in one line that says so, and
// the process goes on untouched: it passes its checks undumped.
func TestE2EFanotifyFilesystemMark(t *testing.T) {
	requireRoot(t)
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "fanotify", linkDynamic), "fs")
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, w.Pid, dir)
	t.Logf("%s", res)
	assertOneErrorLine(t, res)
	if line := firstLine(res.Stderr); !strings.Contains(line, "filesystem mark") {
		t.Errorf("the error line does not name the filesystem mark: %s", line)
	}
	checkNoStrayCryo(t, "after the failed dump")
	w.assertRunningUntouched("after the failed dump")
	w.Finish()
}
