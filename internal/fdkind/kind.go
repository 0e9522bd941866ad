// Package fdkind is the one home of each kind of descriptor: how it is
// recognised and described at dump, how its image entry is checked, and how
// restore creates it again, side by side in one file per kind, behind the
// small interfaces below. Both dump and restore dispatch through the
// registry (Lookup, Detect) instead of if-chains of their own.
//
// A kind sees only what dump or restore offer it (Dumped, Maker), never
// their internals, so that package dump and package restore stay
// independent: restore imports this package, not dump.
package fdkind

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/cryo-cr/cryo/internal/proc"
)

// Kind is one kind of descriptor, as CRIU's files.img types them. Every
// entry of the registry has one: loading an image checks each file entry
// with it before anything is used.
type Kind interface {
	// Type is the kind's CRIU file type.
	Type() fdinfo.FdTypes
	// Check validates an untrusted file entry of this type: its payload is
	// there, its sizes are bounded, its values are ones restore can use.
	// Cross references between entries are checked by the plan.
	Check(f *fdinfo.FileEntry) error
}

// Simple is a kind whose open file is described from one descriptor's
// /proc link and fdinfo alone, refers to no other file, and is created at
// restore by injected calls in one process (the lowest common ancestor of
// its holders, which the others inherit it from). eventfd, signalfd,
// timerfd, inotify and fanotify are simple.
type Simple interface {
	Kind
	// Target is the /proc/PID/fd link that names the kind.
	Target() string
	// Dump describes the descriptor as file entry id. Errors name it
	// (d.Where()).
	Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error)
	// Create makes the file in the restored process and returns the
	// descriptor it got there (restore moves it to its number).
	Create(m Maker, f *fdinfo.FileEntry) (uint64, error)
}

// Dumped is what dump offers a kind about one descriptor of a seized
// process.
type Dumped interface {
	// Pid is the process holding the descriptor.
	Pid() int
	// Where names the descriptor in errors: "process P fd N (target)".
	Where() string
	// Info is its /proc/PID/fdinfo/N.
	Info() *proc.FdInfo
}

// Maker is what restore offers a kind to create one file in a restored
// process (a stopped stub driven by injected system calls).
type Maker interface {
	// Where names the file in errors: "restore pid P TYPE ID".
	Where() string
	// Syscall injects one system call into the process.
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	// Put copies b into the process's scratch area and returns its
	// address there; each call reuses the area.
	Put(b []byte) (uint64, error)
	// PutString is Put of a NUL-terminated s.
	PutString(s string) (uint64, error)
	// AsOwner runs fn, which makes calls in the process, with the
	// file-system identity of the process the file is restored for, so
	// that paths are reached with that process's rights (never root's).
	AsOwner(fn func() error) error
}

// Preparer is a kind that must act in the seized process before its
// descriptors' fdinfo is read: the kernel updates some of what fdinfo shows
// only when asked (a timerfd's expirations).
type Preparer interface {
	// Prepare acts on descriptor fd of the process through in. Errors
	// need not name the descriptor: dump does.
	Prepare(in Injector, fd int) error
}

// Injector is what dump offers a Preparer: calls injected into the seized
// process, which is stopped and restored as it was afterwards.
type Injector interface {
	// Syscall injects one system call into the process.
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	// Scratch is the address of a scratch area in the process that an
	// injected call may write into.
	Scratch() uint64
}

// Group is files of one kind that restore makes together, by one call, in
// one process (the lowest common ancestor of all their holders): both ends
// of a pipe. Each file of a group is then moved to its own number, as
// every file is.
type Group struct {
	// Key is what the group is to its kind (a pipe's id), for its errors.
	Key uint32
	// IDs are its files, in the order Plan was given them.
	IDs []uint32
}

// Planner is a kind whose files are not made one by one but in groups
// that refer to each other (pipe ends made together). Planning is a pure
// function of the image, so unit tests check it without root.
type Planner interface {
	Kind
	// Plan sorts the kind's checked file entries, given in the order of
	// their ids, into the groups made together, in the order of their
	// first file; it refuses in one line a group restore cannot make.
	Plan(files []*fdinfo.FileEntry) ([]Group, error)
	// CreateGroup makes group g, whose entries are files (in g.IDs'
	// order), in the restored process, and puts each file at its place
	// (GroupMaker.Place).
	CreateGroup(m GroupMaker, g Group, files []*fdinfo.FileEntry) error
}

// GroupMaker is what restore offers a Planner to create one group in a
// restored process.
type GroupMaker interface {
	// Process names the process in errors: "restore pid P".
	Process() string
	// Syscall injects one system call into the process.
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	// Put copies b into the process's scratch area and returns its
	// address there; each call reuses the area.
	Put(b []byte) (uint64, error)
	// Read copies len(b) bytes at addr of the process into b.
	Read(addr uint64, b []byte) error
	// Spare is the lowest descriptor number above every one restore
	// plans: a kind moves descriptors it holds while it works there, out
	// of the way of the places still to fill.
	Spare() uint64
	// Place duplicates descriptor fd (which stays open) to file id's
	// place in the process and returns that descriptor.
	Place(id uint32, fd uint64) (uint64, error)
	// Queue is the saved queue of pipe pipeID (pipes-data.img): its entry
	// and bytes, a nil entry when none was saved.
	Queue(pipeID uint32) (*pipedata.PipeDataEntry, []byte)
	// FdPath is the path by which cryo opens descriptor fd of the process
	// (/proc/PID/fd/N).
	FdPath(fd uint64) string
}

// FamilySocket is a kind of socket found by its family. /proc names every
// socket "socket:[INO]", so dump finds such a socket's kind by its family
// (SO_DOMAIN), read from a copy of it, not by its name. Restore creates it
// as a simple kind is created, by injected calls in one process, which is
// in the socket's net namespace when it is made. Netlink sockets are of
// this kind; inet sockets, which restore makes with more of its help, are
// a Socket.
type FamilySocket interface {
	Kind
	// Family is the socket family (AF_NETLINK) the kind handles.
	Family() int
	// DumpSocket describes the socket as file entry id. Errors name it
	// (d.Where()).
	DumpSocket(d SocketDumped, id uint32) (*fdinfo.FileEntry, error)
	// Create makes the socket in the restored process and returns the
	// descriptor it got there (restore moves it to its number).
	Create(m Maker, f *fdinfo.FileEntry) (uint64, error)
}

// SocketDumped is what dump offers a socket kind about one socket of a
// seized process.
type SocketDumped interface {
	Dumped
	// Socket is cryo's copy of the socket (pidfd_getfd), open while the
	// kind describes it.
	Socket() int
	// Ino is the socket's inode number.
	Ino() uint32
	// NetNs is the id of the tree's net namespace the socket lives in, 0
	// for cryo's; a socket of a namespace outside the tree is refused.
	NetNs() (uint32, error)
}
