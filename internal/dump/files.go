package dump

import (
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/tcprepair"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// fileTable numbers the files of files.img: descriptors, cwd, root, the
// executable and mapped files.
type fileTable struct {
	entries []*fdinfo.FileEntry
	byKey   map[string]uint32
	// byTarget lists, per fd target ("/path", "pipe:[ino]"), the
	// descriptors already described anywhere in the tree, to find open
	// file descriptions shared between descriptors and processes.
	byTarget map[string][]seenFile
	pipes    map[uint64]*pipeData // by pipe inode
	pipeIDs  []uint64             // in the order first seen
	fifos    map[uint64]*pipeData // by FIFO inode
	unix     unixTable
	// nets: the namespaces, to find sockets in the tree's net namespaces.
	nets   *nsTable
	memfds map[uint64]*memfd.MemfdInodeEntry // by inode
	ghosts []ghostFile
	// ghostRemaps maps every file entry of a deleted file to its inode's
	// one ghost (ghostByInode).
	ghostRemaps  []ghostRemap
	ghostByInode map[inodeKey]uint32
	memfdOrder   []uint64
	fifoIDs      []uint64
	shmem        *shmemTable
	ptys         ptyTable
	tcp          []tcpStream
	repair       tcprepair.Set
	// held: cryo's own descriptors kept open until the dump ends (copies
	// of descriptors in flight, accepted server ends).
	held []int
	// inFlight: those of them that are copies of descriptors in flight.
	inFlight map[int]bool
	// origins: the file entries of simple kinds (internal/fdkind), each
	// with the descriptor it was read from, for what is done once every
	// descriptor has its id (resolveEpollTargets).
	origins []fileOrigin
	// emptyNet: the tree's net namespace is left out (Options.EmptyNetNS),
	// so its sockets cannot be described.
	emptyNet bool
	// locks: the file locks held through the tree's descriptors.
	locks lockTable
}

func newFileTable() *fileTable {
	return &fileTable{byKey: map[string]uint32{}, byTarget: map[string][]seenFile{}, pipes: map[uint64]*pipeData{},
		fifos: map[uint64]*pipeData{}, shmem: &shmemTable{objs: map[uint64]*shmemObj{}}}
}

func (ft *fileTable) add(e *fdinfo.FileEntry) uint32 {
	id := uint32(len(ft.entries) + 1)
	e.Id = proto.Uint32(id)
	ft.entries = append(ft.entries, e)
	return id
}

// addReg adds a regular-file entry (fdkind.DumpReg); entries with the same
// non-empty key (mapped files, directories) are shared.
func (ft *fileTable) addReg(e *fdinfo.FileEntry, key string) uint32 {
	if key != "" {
		if id, ok := ft.byKey[key]; ok {
			return id
		}
	}
	id := ft.add(e)
	fdkind.SetID(e, id)
	if key != "" {
		ft.byKey[key] = id
	}
	return id
}

func noOwner() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

// pathFile describes a file reached through a path, for the executable,
// mapped files, cwd and root. openFlags are the flags to reopen it with.
// The file is read through via (a /proc/PID/... link or path), which
// reaches it in the process's mount namespace and root: path is the name
// the process sees, which may not exist in cryo's.
func (ft *fileTable) pathFile(path, via string, openFlags uint32, checksum bool) (uint32, error) {
	// Every mapping of a library in every process comes here: the entry
	// is shared by key, so look it up before stating and checksumming the
	// file again (reading libc whole 35 times took most of a small dump).
	key := fmt.Sprintf("%s\x00%d", path, openFlags)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	st, err := proc.FileStat(via)
	if err != nil {
		return 0, fmt.Errorf("file %s: %w", path, err)
	}
	r := fdkind.DumpReg(path, openFlags, 0, uint64(st.Size), st.Mode)
	if checksum && st.Mode&unix.S_IFMT == unix.S_IFREG {
		sum, n, err := Checksum(via)
		if err != nil {
			return 0, fmt.Errorf("file %s: checksum: %w", path, err)
		}
		fdkind.SetChecksum(r, sum, n)
	}
	return ft.addReg(r, key), nil
}

// dumpFds describes every open descriptor. Kinds not handled yet are
// refused by name, before anything is written.
func (p *process) dumpFds(ft *fileTable) ([]*fdinfo.FdinfoEntry, error) {
	fds, err := proc.Fds(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: list descriptors: %w", p.pid, err)
	}
	var out []*fdinfo.FdinfoEntry
	for _, fd := range fds {
		e, err := p.dumpFd(ft, fd)
		if err != nil {
			return nil, err
		}
		if err := p.saveFileLocks(ft, fd, e.GetId()); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// dumpFd describes descriptor fd of p. Descriptors that share one open
// file description (dup, fork, or one in flight and one held) must come
// back sharing it: one file entry, several fdinfo entries.
func (p *process) dumpFd(ft *fileTable, fd int) (*fdinfo.FdinfoEntry, error) {
	target, err := proc.FdTarget(p.pid, fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.fdName(fd), err)
	}
	kind := fdkind.Detect(target)
	// Only a seized process (not cryo's own copy of a descriptor in
	// flight) can be prepared by injected calls.
	if pr, ok := kind.(fdkind.Preparer); ok && len(p.threads) > 0 {
		if err := pr.Prepare(injector{p}, fd); err != nil {
			return nil, fmt.Errorf("%s: %w", p.fdName(fd), err)
		}
	}
	info, err := proc.ReadFdInfo(p.pid, fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.fdName(fd), err)
	}
	var e *fdinfo.FdinfoEntry
	switch {
	case strings.HasPrefix(target, "pipe:["):
		e, err = p.dumpPipe(ft, fd, target, info)
	case strings.HasPrefix(target, "socket:["):
		e, err = p.dumpUnix(ft, fd, target, info)
	case kind != nil:
		e, err = p.dumpKind(ft, fd, target, kind, info)
	case !strings.HasPrefix(target, "/"):
		kind, _, _ := strings.Cut(target, ":")
		return nil, fmt.Errorf("%s: %s is not supported yet", p.fdName(fd), describeKind(kind, target))
	case isMemfd(target):
		e, err = p.dumpMemfd(ft, fd, target, info)
	default:
		e, err = p.dumpPath(ft, fd, target, info)
	}
	if err != nil {
		return nil, err
	}
	// FD_CLOEXEC is the descriptor's, not the file's: fdinfo shows it
	// as O_CLOEXEC in the file's flags.
	var fdFlags uint32
	if info.Flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.FD_CLOEXEC
	}
	e.Flags = proto.Uint32(fdFlags)
	return e, nil
}

// dumpPath describes a descriptor reached through a path: a regular file,
// directory or block device (a deleted one saved as a ghost), a terminal
// (a pty of the tree, or the caller's with -j), a FIFO.
func (p *process) dumpPath(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	st, err := proc.FileStat(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd))
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", p.fdName(fd), target, err)
	}
	ghost := false
	if strings.HasSuffix(target, " (deleted)") {
		if !isGhostDir(target, &st) && (st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > fdkind.MaxGhost) {
			return nil, fmt.Errorf("%s: %s was deleted while open: only regular files up to %d bytes and directories are saved", p.fdName(fd), strings.TrimSuffix(target, " (deleted)"), fdkind.MaxGhost)
		}
		ghost = true
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR, unix.S_IFBLK:
	case unix.S_IFCHR:
		if ft.ptys.isTreePty(p, st.Rdev) {
			return p.dumpPty(ft, fd, target, info, &st)
		}
		if fdkind.IsTerminal(st.Rdev) && !p.opts.ShellJob && !p.opts.ext.tty(&st) {
			return nil, fmt.Errorf("%s: %s is a terminal: dump with -j/--shell-job to hand it to the restoring terminal, or with %s and restore with --inherit-fd fd[N]:%s", p.fdName(fd), target, ttyHint(&st), target)
		}
	case unix.S_IFIFO:
		return p.dumpFifo(ft, fd, target, info, &st)
	default:
		return nil, fmt.Errorf("%s: %s: file type %#o is not supported yet", p.fdName(fd), target, st.Mode&unix.S_IFMT)
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Type: fdinfo.FdTypes_REG.Enum(), Fd: proto.Uint32(uint32(fd))}, nil
	}
	id := ft.addReg(fdkind.DumpReg(strings.TrimSuffix(target, " (deleted)"), info.Flags&^unix.O_CLOEXEC, info.Pos, uint64(st.Size), st.Mode), "")
	if ghost && st.Nlink > 0 && !p.opts.LinkRemap {
		return nil, fmt.Errorf("%s (%s): deleted file still linked under another name (%d links): dump with --link-remap to save a copy of it", p.fdName(fd), target, st.Nlink)
	}
	if ghost {
		if err := ft.addGhost(id, fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd), &st); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", p.fdName(fd), target, err)
		}
	}
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Type: fdinfo.FdTypes_REG.Enum(), Fd: proto.Uint32(uint32(fd))}, nil
}

// seenFile is a descriptor already described, and its file id.
type seenFile struct {
	pid, fd int
	id      uint32
}

// kcmpFile is KCMP_FILE: do two descriptors refer to one open file?
const kcmpFile = 0

// sameFile returns the file id of an earlier descriptor (with the same
// target path) that shares fd's open file description.
func (p *process) sameFile(candidates []seenFile, fd int) (uint32, bool) {
	for _, c := range candidates {
		r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(c.pid), uintptr(p.pid), kcmpFile, uintptr(c.fd), uintptr(fd), 0)
		if e == 0 && r == 0 {
			return c.id, true
		}
	}
	return 0, false
}

func describeKind(kind, target string) string {
	switch kind {
	case "pipe":
		return "pipe " + target
	case "socket":
		return "socket " + target
	case "anon_inode":
		return "anonymous inode " + strings.TrimPrefix(target, "anon_inode:")
	}
	return "descriptor " + target
}

var errNoVdso = errors.New("no [vdso] mapping")

// fdName names descriptor fd of p in errors.
func (p *process) fdName(fd int) string {
	if p.alias != "" {
		return p.alias
	}
	return fmt.Sprintf("process %d fd %d", p.pid, fd)
}

// Checksum returns the CRC32C of the first min(size, image.ChecksumLimit) bytes of
// the file and how many bytes that was. Restore computes the same to refuse
// a mapped file that changed since the dump.
func Checksum(path string) (sum uint32, n uint32, err error) {
	f, err := proc.Open(path, os.O_RDONLY)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return image.ChecksumOf(f)
}

// isMemfd tells whether /proc/PID/fd names a memfd with target.
func isMemfd(target string) bool {
	_, ok := fdkind.MemfdName(target)
	return ok
}
