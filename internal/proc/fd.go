package proc

import (
	"os"
	"slices"
	"strconv"
)

// Fds returns the open file descriptor numbers of pid, sorted ascending.
func Fds(pid int) ([]int, error) {
	return readIntDir(pidPath(pid, "fd"))
}

// readIntDir lists the numeric entries of a /proc directory, sorted.
// Readdirnames is enough because only the names matter, and it skips
// building a DirEntry per fd for processes with very many descriptors.
func readIntDir(path string) ([]int, error) {
	d, err := Open(path, os.O_RDONLY)
	if err != nil {
		return nil, ioError(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			continue // not an fd or tid; procfs lists none, but be safe
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// FdInfo is /proc/PID/fdinfo/N. The four common lines are parsed; all other
// lines are file-type specific (eventfd-count, tfd for epoll, inotify wd,
// fanotify, timerfd, locks, ...) and kept raw for the file-type dumpers.
type FdInfo struct {
	Pos uint64
	// Flags are the open(2) flags, printed in octal. The kernel adds
	// O_CLOEXEC here when the descriptor has FD_CLOEXEC set, although that
	// is a per-descriptor, not a per-file, property.
	Flags uint32
	MntID int
	Ino   uint64
	// Extra maps the key of every other "key: value" line to its trimmed
	// value. Keys that repeat (one "tfd:" line per epoll target, one
	// "inotify wd:" line per watch) keep only the last value: use Lines.
	Extra map[string]string
	// Lines holds every line not parsed into Pos, Flags, MntID or Ino, in
	// file order and without the trailing newline.
	Lines []string
}

// ReadFdInfo reads /proc/PID/fdinfo/FD.
func ReadFdInfo(pid, fd int) (*FdInfo, error) {
	var fi *FdInfo
	err := withFile(pidPath(pid, "fdinfo/"+strconv.Itoa(fd)), func(b []byte) error {
		var err error
		fi, err = ParseFdInfo(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// ParseFdInfo parses the content of a /proc/PID/fdinfo/N file.
func ParseFdInfo(b []byte) (*FdInfo, error) {
	fi := &FdInfo{Extra: make(map[string]string)}
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		key, val, ok := cutKey(line)
		var err error
		switch {
		case ok && string(key) == "pos":
			fi.Pos, err = parseUint(val, 10)
		case ok && string(key) == "flags":
			fi.Flags, err = parseUint32(val, 8)
		case ok && string(key) == "mnt_id":
			fi.MntID, err = parseIntField(val)
		case ok && string(key) == "ino":
			fi.Ino, err = parseUint(val, 10)
		default:
			if ok {
				fi.Extra[string(key)] = string(val)
			}
			fi.Lines = append(fi.Lines, string(line))
		}
		if err != nil {
			return nil, &fieldError{string(key), err}
		}
	}
	return fi, nil
}

// fieldError names the line key whose value failed to parse.
type fieldError struct {
	key string
	err error
}

func (e *fieldError) Error() string { return e.key + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// FdTarget returns the symlink target of /proc/PID/fd/FD: a path (possibly
// with a " (deleted)" suffix) or a pseudo name such as "pipe:[123]",
// "socket:[456]" or "anon_inode:[eventfd]".
func FdTarget(pid, fd int) (string, error) {
	return readLink(pidPath(pid, "fd/"+strconv.Itoa(fd)))
}
