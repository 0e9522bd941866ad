// Package runlock gives cryo processes machine-wide locks on small files
// under /run/cryo (for root; a directory of the user's own otherwise):
// flock(2) locks, which the kernel drops when their holder dies, even by
// SIGKILL, so a killed cryo never leaves a lock held.
package runlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy is returned by TryLock when another holder has the lock.
var ErrBusy = errors.New("held by another cryo")

// poll is how often Lock tries again.
const poll = 2 * time.Millisecond

// Dir is the directory of the lock files, made (0700) if needed: /run/cryo
// for root, $XDG_RUNTIME_DIR/cryo or a cryo-UID directory under the
// temporary directory otherwise (locks only serialise cryos of one user).
func Dir() (string, error) {
	dir := "/run/cryo"
	if os.Geteuid() != 0 {
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
			dir = filepath.Join(x, "cryo")
		} else {
			dir = filepath.Join(os.TempDir(), "cryo-"+strconv.Itoa(os.Geteuid()))
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("lock directory %s: %w", dir, err)
	}
	// In a shared temporary directory, a directory or symbolic link made
	// by someone else must not be used.
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("lock directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return "", fmt.Errorf("lock directory %s: not a directory of uid %d writable only by it", dir, os.Geteuid())
	}
	return dir, nil
}

// Lock is one held lock.
type Lock struct {
	f      *os.File
	path   string
	remove bool
}

// TryLock takes the exclusive lock on path (created if needed) or fails
// at once with ErrBusy. remove says whether Unlock deletes the file (for
// locks named after objects that go away).
func TryLock(path string, remove bool) (*Lock, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, ErrBusy
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// A holder that removed the file while we opened it: the lock
		// taken is on a name nobody else will open; take the new file.
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(path, &named) == nil &&
			held.Ino == named.Ino && held.Dev == named.Dev {
			return &Lock{f: f, path: path, remove: remove}, nil
		}
		f.Close()
	}
}

// Take waits for the lock on path, at most limit: a cryo that holds it
// longer is taken to be stuck, and the caller fails instead of hanging.
func Take(path string, limit time.Duration) (*Lock, error) {
	deadline := time.Now().Add(limit)
	for {
		l, err := TryLock(path, false)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: another cryo has held it for more than %v", path, limit)
		}
		time.Sleep(poll)
	}
}

// Held reports whether another process holds the lock on path now (false
// if the file does not exist).
func Held(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Unlock releases the lock (removing its file first if asked); safe on nil.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	if l.remove {
		os.Remove(l.path)
	}
	l.f.Close()
	l.f = nil
}
