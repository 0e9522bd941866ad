package dump

import (
	"fmt"
	"strconv"
	"strings"

	filelock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"google.golang.org/protobuf/proto"
)

// lockTable collects the file locks the tree holds, for filelocks.img.
// Locks are read from each descriptor's fdinfo "lock:" lines, which list
// only granted locks: a process blocked in F_SETLKW or flock() holds
// nothing yet, and its call restarts after the restore.
type lockTable struct {
	entries []*filelock.FileLockEntry
	// seen: the locks already saved. A flock or OFD lock belongs to the
	// open file description, so every descriptor sharing it (dup, fork)
	// shows it; a POSIX lock belongs to the process and shows on every
	// descriptor of its file description.
	seen map[string]bool
}

// heldLock is one "lock:" line of a fdinfo file, e.g.
// "1: POSIX  ADVISORY  WRITE 30092 fe:00:9977944 5 14".
type heldLock struct {
	flag  uint32 // image.LockPosix, LockFlock or LockOFD
	kind  string // as /proc prints it: POSIX, FLOCK, OFDLCK
	write bool
	dev   string
	ino   uint64
	start int64
	end   int64 // -1: to the end of the file (EOF)
}

// parseLockLine parses the value of a fdinfo "lock:" line.
func parseLockLine(s string) (heldLock, error) {
	f := strings.Fields(s)
	if len(f) < 8 {
		return heldLock{}, fmt.Errorf("lock line %q: too few fields", s)
	}
	l := heldLock{kind: f[1]}
	switch f[1] {
	case "POSIX":
		l.flag = image.LockPosix
	case "FLOCK":
		l.flag = image.LockFlock
	case "OFDLCK":
		l.flag = image.LockOFD
	default:
		// LEASE, DELEG, ACCESS: not file locks a process can take again
		// by itself.
		return l, fmt.Errorf("a %s lock is not supported", strings.ToLower(f[1]))
	}
	if f[2] != "ADVISORY" {
		return l, fmt.Errorf("a %s %s lock is not supported", strings.ToLower(f[2]), f[1])
	}
	switch f[3] {
	case "READ":
	case "WRITE":
		l.write = true
	default:
		return l, fmt.Errorf("a %s lock of type %s is not supported", f[1], f[3])
	}
	devIno := f[5]
	i := strings.LastIndexByte(devIno, ':')
	if i < 0 {
		return l, fmt.Errorf("lock line %q: bad device and inode", s)
	}
	var err error
	l.dev = devIno[:i]
	if l.ino, err = strconv.ParseUint(devIno[i+1:], 10, 64); err != nil {
		return l, fmt.Errorf("lock line %q: bad inode: %w", s, err)
	}
	if l.start, err = strconv.ParseInt(f[6], 10, 64); err != nil || l.start < 0 {
		return l, fmt.Errorf("lock line %q: bad start", s)
	}
	l.end = -1
	if f[7] != "EOF" {
		if l.end, err = strconv.ParseInt(f[7], 10, 64); err != nil || l.end < l.start {
			return l, fmt.Errorf("lock line %q: bad end", s)
		}
	}
	return l, nil
}

func (l heldLock) String() string {
	mode := "read"
	if l.write {
		mode = "write"
	}
	switch l.flag {
	case image.LockFlock:
		return "flock " + mode + " lock"
	case image.LockOFD:
		mode = "OFD " + mode
	default:
		mode = "POSIX " + mode
	}
	if l.end < 0 {
		return fmt.Sprintf("%s lock from byte %d to the end", mode, l.start)
	}
	return fmt.Sprintf("%s lock on bytes %d-%d", mode, l.start, l.end)
}

// saveFileLocks saves the locks held through descriptor fd of p, whose file
// has id in files.img. Without --file-locks a lock refuses the dump, as
// CRIU does: the tree's peers on the same file (outside it) could not be
// told that the lock was let go and taken again.
func (p *process) saveFileLocks(ft *fileTable, fd int, id uint32) error {
	info, err := proc.ReadFdInfo(p.pid, fd)
	if err != nil {
		return fmt.Errorf("%s: %w", p.fdName(fd), err)
	}
	for _, line := range info.Lines {
		v, ok := strings.CutPrefix(line, "lock:")
		if !ok {
			continue
		}
		what := func() string {
			target, _ := proc.FdTarget(p.pid, fd)
			return fmt.Sprintf("%s (%s)", p.fdName(fd), target)
		}
		l, err := parseLockLine(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %w", what(), err)
		}
		if !p.opts.FileLocks {
			return fmt.Errorf("%s: holds a %s: dump with --file-locks to save it", what(), l)
		}
		owner := fmt.Sprintf("file %d", id)
		if l.flag == image.LockPosix {
			owner = fmt.Sprintf("process %d", p.pid)
		}
		key := fmt.Sprintf("%s %d %s:%d %d %d %v", owner, l.flag, l.dev, l.ino, l.start, l.end, l.write)
		if ft.locks.seen[key] {
			continue
		}
		if ft.locks.seen == nil {
			ft.locks.seen = map[string]bool{}
		}
		ft.locks.seen[key] = true
		e := &filelock.FileLockEntry{
			Flag: proto.Uint32(l.flag), Type: proto.Uint32(0), Pid: proto.Int32(int32(p.pid)), Fd: proto.Int32(int32(fd)),
			Start: proto.Int64(l.start), Len: proto.Int64(0),
		}
		if l.write {
			e.Type = proto.Uint32(1) // F_WRLCK; F_RDLCK is 0
		}
		if l.end >= 0 {
			e.Len = proto.Int64(l.end - l.start + 1)
		}
		ft.locks.entries = append(ft.locks.entries, e)
		p.logf("process %d fd %d: %s saved", p.pid, fd, l)
	}
	return nil
}

// write writes filelocks.img when the tree holds locks.
func (lt *lockTable) write(dir *image.Dir) error {
	if len(lt.entries) == 0 {
		return nil
	}
	msgs := make([]proto.Message, len(lt.entries))
	for i, e := range lt.entries {
		msgs[i] = e
	}
	return dir.Write(image.FileLocksName, "FILE_LOCKS", msgs...)
}
