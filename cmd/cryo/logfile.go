package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openLog opens the -o log for writing, from its start. It never follows
// a symbolic link at its name nor writes through a second hard link: the
// images directory may be a place the dumped user can write, and a link
// planted there must not make cryo (root) overwrite the file it names.
// An existing log (a regular file with one link) is truncated once that
// is checked; O_NONBLOCK keeps a FIFO
// planted there from blocking the open.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%s is not a regular file", path)
	case st.Nlink != 1:
		err = fmt.Errorf("%s has %d hard links", path, st.Nlink)
	}
	if err == nil {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
