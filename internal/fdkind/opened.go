package fdkind

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"golang.org/x/sys/unix"
)

// Opened is a kind whose files restore opens one by one, each in the
// lowest common ancestor of its holders (or, on the tree's own mounts,
// once that process entered its namespaces), from a path or from an object
// restore already made: FIFOs, regular files, memfds. Restore plans where;
// the kind opens.
type Opened interface {
	Kind
	// Open makes file f in the restored process and puts it at its
	// place (Opener.Place).
	Open(m Opener, f *fdinfo.FileEntry) error
}

// Linked is a kind whose entries refer to other entries of files.img (a
// FIFO to the regular-file entry of its path). Loading an image checks
// every entry's references once all entries are read (CheckRefs).
type Linked interface {
	Kind
	// Refs checks f's references; file returns the entry of an id, nil
	// when there is none.
	Refs(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) error
}

// Keyed is a kind whose files the caller of a restore may give instead
// (CRIU's --inherit-fd fd[N]:KEY): a file the tree shared with the world
// outside it.
type Keyed interface {
	Kind
	// Keys are the names --inherit-fd may give f by; file returns the
	// entry of an id (checked by Refs).
	Keys(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) []string
}

// Opener is what restore offers an Opened kind to make one file in a
// restored process.
type Opener interface {
	// Process names the process in errors: "restore pid P".
	Process() string
	// Syscall injects one system call into the process.
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	// File returns entry id of files.img (checked at load), nil when
	// there is none.
	File(id uint32) *fdinfo.FileEntry
	// OpenChecked opens path in the process as the process the file is
	// restored for would (a root restore never opens a process's path as
	// root: internal/restore/owner.go), following no symbolic link and
	// never blocking, checks that what it got is the file want describes,
	// sets flags (but O_NONBLOCK is kept when flags have it) and returns
	// the descriptor.
	OpenChecked(path string, flags uint64, want Want) (uint64, error)
	// Place duplicates descriptor fd (which stays open) to the file's
	// place in the process and returns that descriptor (fd itself when it
	// is there already).
	Place(fd uint64) (uint64, error)
	// FifoQueue is the saved queue of FIFO pipeID (fifo-data.img), the
	// first time it is asked for; a nil entry after, or when none was
	// saved. The first end of a FIFO opened fills it.
	FifoQueue(pipeID uint32) (*pipedata.PipeDataEntry, []byte)
	// FdPath is the path by which cryo opens descriptor fd of the process
	// (/proc/PID/fd/N).
	FdPath(fd uint64) string
	// Shared is the descriptor, in the process, of the memfd restore made
	// for shared memory object (memfd inode) shmid, and whether there is
	// one.
	Shared(shmid uint64) (uint64, bool)
	// Ghost is where restore put back the deleted file being opened (made
	// once per inode, removed again once the tree holds it) and what
	// opening it must give; ok is false for a file that was not deleted.
	Ghost() (path string, want Want, ok bool, err error)
	// ShellJob tells whether the restore hands terminals over to its own
	// (-j, --shell-job).
	ShellJob() bool
}

// Want is what a file opened by path must be, from the images.
type Want struct {
	// Reg is the regular-file entry of the path: its type, permission
	// bits and size.
	Reg *regfile.RegFileEntry
	// Dev and Ino, when Ino is not 0: the very file (a ghost restore made).
	Dev, Ino uint64
	// Size: a regular file must have its saved size.
	Size bool
}

// CheckRefs checks the references of an entry of files.img to others,
// for a kind that has any (Linked).
func CheckRefs(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) error {
	if l, ok := Lookup(f.GetType()).(Linked); ok {
		return l.Refs(f, file)
	}
	return nil
}

// InheritKeys are the names --inherit-fd may give file f by (none for a
// kind that cannot be given).
func InheritKeys(f *fdinfo.FileEntry, file func(uint32) *fdinfo.FileEntry) []string {
	if k, ok := Lookup(f.GetType()).(Keyed); ok {
		return k.Keys(f, file)
	}
	return nil
}

// OpenedOf returns the kind of file type t when restore opens its files
// one by one (Opened), or nil.
func OpenedOf(t fdinfo.FdTypes) Opened {
	o, _ := Lookup(t).(Opened)
	return o
}

// placeAndClose puts fd, just made, at the file's place and closes it.
func placeAndClose(m Opener, fd uint64) (uint64, error) {
	at, err := m.Place(fd)
	if at != fd {
		m.Syscall(unix.SYS_CLOSE, fd)
	}
	return at, err
}

// reopenFlags are a file's saved flags for opening it again: without
// those that only mean something when the file is created.
func reopenFlags(saved uint32) uint64 {
	return uint64(saved) &^ (unix.O_CREAT | unix.O_TRUNC | unix.O_EXCL)
}
