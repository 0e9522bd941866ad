package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	filelock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// loadLocks reads filelocks.img (absent: the tree held no lock) and gives
// each lock to the process that takes it again. Entries are untrusted:
// each must name a live process of the tree and one of its descriptors.
func (s *snapshot) loadLocks(dir *image.Dir) error {
	entries, err := image.ReadEntries[*filelock.FileLockEntry](dir, image.FileLocksName, "FILE_LOCKS")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > image.MaxFileLocks {
		return fmt.Errorf("%s: %d locks (at most %d)", image.FileLocksName, len(entries), image.MaxFileLocks)
	}
	byPid := map[int]*checkpoint{}
	for _, c := range s.procs {
		if !c.zombie {
			byPid[c.pid] = c
		}
	}
	for i, e := range entries {
		where := fmt.Sprintf("%s: lock %d", image.FileLocksName, i)
		c := byPid[int(e.GetPid())]
		if c == nil {
			return fmt.Errorf("%s: process %d is not a live process of the tree", where, e.GetPid())
		}
		held := false
		for _, fd := range c.fds {
			if int32(fd.GetFd()) == e.GetFd() {
				held = true
			}
		}
		if !held {
			return fmt.Errorf("%s: process %d has no descriptor %d", where, e.GetPid(), e.GetFd())
		}
		switch e.GetFlag() {
		case image.LockPosix, image.LockFlock, image.LockOFD:
		default:
			return fmt.Errorf("%s: lock kind %d is not supported", where, e.GetFlag())
		}
		if e.GetType() != unix.F_RDLCK && e.GetType() != unix.F_WRLCK {
			return fmt.Errorf("%s: lock type %d is not supported", where, e.GetType())
		}
		if e.GetStart() < 0 || e.GetLen() < 0 {
			return fmt.Errorf("%s: bad range %d+%d", where, e.GetStart(), e.GetLen())
		}
		c.locks = append(c.locks, e)
	}
	return nil
}

// lockName describes a lock in errors and logs.
func lockName(e *filelock.FileLockEntry) string {
	mode := "read"
	if e.GetType() == unix.F_WRLCK {
		mode = "write"
	}
	kind := map[uint32]string{image.LockPosix: "POSIX", image.LockFlock: "flock", image.LockOFD: "OFD"}[e.GetFlag()]
	if e.GetFlag() == image.LockFlock {
		return fmt.Sprintf("%s %s lock", kind, mode)
	}
	if e.GetLen() == 0 {
		return fmt.Sprintf("%s %s lock from byte %d to the end", kind, mode, e.GetStart())
	}
	return fmt.Sprintf("%s %s lock on bytes %d-%d", kind, mode, e.GetStart(), e.GetStart()+e.GetLen()-1)
}

// restoreLocks takes p's file locks again, by calls injected into p on its
// restored descriptors: a POSIX lock must be taken by its owner, and a
// flock or OFD lock through its open file description. It runs once p's
// descriptors are final (closing any descriptor of a file drops the
// process's POSIX locks on it). The calls never wait: a conflicting lock
// means someone outside the tree took it since the dump, and the restore
// fails rather than hang.
func (p *process) restoreLocks() error {
	t := p.leader
	for _, e := range p.c.locks {
		fd := uint64(e.GetFd())
		var err error
		if e.GetFlag() == image.LockFlock {
			op := uint64(unix.LOCK_SH)
			if e.GetType() == unix.F_WRLCK {
				op = unix.LOCK_EX
			}
			_, err = t.Syscall(unix.SYS_FLOCK, fd, op|unix.LOCK_NB)
		} else {
			// struct flock: l_type, l_whence (short), l_start, l_len
			// (off_t), l_pid (int, 0 for an OFD lock).
			b := make([]byte, 32)
			binary.NativeEndian.PutUint16(b[0:], uint16(e.GetType()))
			binary.NativeEndian.PutUint16(b[2:], 0) // SEEK_SET
			binary.NativeEndian.PutUint64(b[8:], uint64(e.GetStart()))
			binary.NativeEndian.PutUint64(b[16:], uint64(e.GetLen()))
			addr, perr := p.put(b)
			if perr != nil {
				return perr
			}
			cmd := uint64(unix.F_SETLK)
			if e.GetFlag() == image.LockOFD {
				cmd = unix.F_OFD_SETLK
			}
			_, err = t.Syscall(unix.SYS_FCNTL, fd, cmd, addr)
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("restore pid %d fd %d: %s: a process outside the tree holds a conflicting lock since the dump", p.c.pid, fd, lockName(e))
		}
		if err != nil {
			return fmt.Errorf("restore pid %d fd %d: %s: %w", p.c.pid, fd, lockName(e), err)
		}
		p.r.logf("restore pid %d fd %d: %s taken again", p.c.pid, fd, lockName(e))
	}
	return nil
}
