package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// An Opener opens a path under /proc that cryo's own credentials may not
// open, and hands back the open file. cryo run by a normal user needs one
// for processes of the user's that switched to subordinate ids inside
// their user namespace: their /proc/PID/fd, pagemap, personality and their
// files belong to those ids, and only a process with capabilities in that
// namespace (which the user may enter: it owns the namespace) passes the
// permission checks.
type Opener func(path string, flags int) (*os.File, error)

var fallback struct {
	sync.RWMutex
	open Opener
}

// SetFallback makes every open of this package, and of Open, FileStat,
// Readlink and ReadFile, of a path under /proc retry through open when
// cryo itself is refused (EACCES). It is process-wide, as cryo dumps one tree at a time; the
// returned function puts back the previous fallback.
func SetFallback(open Opener) (undo func()) {
	fallback.Lock()
	prev := fallback.open
	fallback.open = open
	fallback.Unlock()
	return func() {
		fallback.Lock()
		fallback.open = prev
		fallback.Unlock()
	}
}

// retry opens path through the fallback opener after cryo's own attempt
// failed with err. It returns err unchanged when there is no fallback or
// the failure was not a refusal.
func retry(path string, flags int, err error) (*os.File, error) {
	if !errors.Is(err, unix.EACCES) || !strings.HasPrefix(path, procRoot+"/") {
		return nil, err
	}
	fallback.RLock()
	open := fallback.open
	fallback.RUnlock()
	if open == nil {
		return nil, err
	}
	f, ferr := open(path, flags)
	if ferr != nil {
		return nil, fmt.Errorf("%w (and from inside its user namespace: %w)", err, ferr)
	}
	return f, nil
}

// Open opens path (usually under /proc/PID/) with flags, through the
// fallback opener if cryo is refused. The error is not wrapped.
func Open(path string, flags int) (*os.File, error) {
	f, err := os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return retry(path, flags, err)
	}
	return f, nil
}

// FileStat is stat(2) of path, following links, through the fallback opener
// if cryo is refused.
func FileStat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	return st, statVia(path, "stat", unix.Stat(path, &st), unix.O_PATH, &st)
}

// Lstat is lstat(2) of path, through the fallback opener if cryo is
// refused.
func Lstat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	return st, statVia(path, "lstat", unix.Lstat(path, &st), unix.O_PATH|unix.O_NOFOLLOW, &st)
}

// statVia is done when cryo's own stat of path gave err == nil; else it
// opens path with flags through the fallback opener and fstats it into st.
func statVia(path, op string, err error, flags int, st *unix.Stat_t) error {
	if err == nil {
		return nil
	}
	f, err := retry(path, flags, &os.PathError{Op: op, Path: path, Err: err})
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fstat(int(f.Fd()), st); err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

// Readlink reads a symbolic link (a /proc/PID/fd/N), through the fallback
// opener if cryo may not look it up: the opener opens the link itself
// (O_PATH|O_NOFOLLOW), and reading a /proc link checks only ptrace access,
// which cryo has.
func Readlink(path string) (string, error) {
	s, err := os.Readlink(path)
	if err == nil {
		return s, nil
	}
	f, err := retry(path, unix.O_PATH|unix.O_NOFOLLOW, err)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(f.Fd()), "", buf)
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: path, Err: err}
	}
	return string(buf[:n]), nil
}

// ReadFile reads a whole file, through the fallback opener if cryo is
// refused.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
