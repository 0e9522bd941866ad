package restore

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// createPidFile creates the --pidfile before anything is restored, as
// CRIU does (O_EXCL|O_CREAT): a file, or a symbolic link, already at that
// path is never followed nor truncated (a link the dumped user planted
// could name a file of root's), and the restore is refused before it
// starts rather than leaving a tree whose PID could not be told.
func createPidFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return f, nil
}

// writePidFile writes pid into the pid file made by createPidFile.
func writePidFile(f *os.File, pid int) error {
	if _, err := f.WriteString(strconv.Itoa(pid) + "\n"); err != nil {
		return fmt.Errorf("write pid file %s: %w", f.Name(), err)
	}
	return nil
}

// dropPidFile removes the pid file of a failed restore, if the name still
// leads to the file cryo created (the directory's owner may have put
// something else there meanwhile, which stays).
func dropPidFile(f *os.File) {
	var made, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &made) == nil && unix.Lstat(f.Name(), &now) == nil &&
		made.Dev == now.Dev && made.Ino == now.Ino {
		os.Remove(f.Name())
	}
	f.Close()
}
