package dump

import (
	"fmt"
	"regexp"

	"golang.org/x/sys/unix"
)

// procFdinfoDir is the path of a process's fdinfo directory.
var procFdinfoDir = regexp.MustCompile(`^/proc/[0-9]+/fdinfo$`)

// deadProcRoot tells whether process pid's root, which /proc names path,
// is the fdinfo directory of a process that is gone: a browser sandbox
// chroots its processes into that of a helper that exits right after
// (Firefox's SandboxFork, Chromium's setuid sandbox), so that no path
// leads anywhere. That directory cannot be opened again by its name:
// restore makes the process's root such a directory anew.
func deadProcRoot(pid int, path string) (bool, error) {
	if !procFdinfoDir.MatchString(path) {
		return false, nil
	}
	via := fmt.Sprintf("/proc/%d/root", pid)
	var fsst unix.Statfs_t
	if err := unix.Statfs(via, &fsst); err != nil {
		return false, fmt.Errorf("root %s: %w", path, err)
	}
	if fsst.Type != unix.PROC_SUPER_MAGIC {
		return false, nil
	}
	var root, now unix.Stat_t
	if err := unix.Stat(via, &root); err != nil {
		return false, fmt.Errorf("root %s: %w", path, err)
	}
	// The named directory, if there is one, is another process's.
	if err := unix.Stat(path, &now); err == nil && now.Dev == root.Dev && now.Ino == root.Ino {
		return false, nil
	}
	return true, nil
}
