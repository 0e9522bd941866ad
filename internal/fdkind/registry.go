package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
)

// Entry is one CRIU file type in the registry: its kind, or why cryo
// refuses it.
type Entry struct {
	Type fdinfo.FdTypes
	// Kind handles the type; nil when it is refused.
	Kind Kind
	// Refused says in a few words what the type is, for the one-line
	// refusal ("... is not supported yet"), when Kind is nil.
	Refused string
}

// Registry lists every CRIU file type, in the order of their numbers. It is
// built on each call (the kinds are empty values), so that nothing in the
// package can be changed by a caller.
func Registry() []Entry {
	return []Entry{
		{Type: fdinfo.FdTypes_UND, Refused: "a file of undefined type"},
		{Type: fdinfo.FdTypes_REG, Kind: Reg{}},
		{Type: fdinfo.FdTypes_PIPE, Kind: Pipe{}},
		{Type: fdinfo.FdTypes_FIFO, Kind: Fifo{}},
		{Type: fdinfo.FdTypes_INETSK, Kind: Inet{}},
		{Type: fdinfo.FdTypes_UNIXSK, Kind: Unix{}},
		{Type: fdinfo.FdTypes_EVENTFD, Kind: Eventfd{}},
		{Type: fdinfo.FdTypes_EVENTPOLL, Kind: Epoll{}},
		{Type: fdinfo.FdTypes_INOTIFY, Kind: Inotify{}},
		{Type: fdinfo.FdTypes_SIGNALFD, Kind: Signalfd{}},
		{Type: fdinfo.FdTypes_PACKETSK, Refused: "a packet socket"},
		{Type: fdinfo.FdTypes_TTY, Kind: Tty{}},
		{Type: fdinfo.FdTypes_FANOTIFY, Kind: Fanotify{}},
		{Type: fdinfo.FdTypes_NETLINKSK, Kind: Netlink{}},
		{Type: fdinfo.FdTypes_NS, Refused: "a namespace descriptor"},
		{Type: fdinfo.FdTypes_TUNF, Refused: "a tun/tap device"},
		{Type: fdinfo.FdTypes_EXT, Refused: "an external file"},
		{Type: fdinfo.FdTypes_TIMERFD, Kind: Timerfd{}},
		{Type: fdinfo.FdTypes_MEMFD, Kind: Memfd{}},
		{Type: fdinfo.FdTypes_BPFMAP, Refused: "a BPF map"},
		{Type: fdinfo.FdTypes_CTL_TTY, Refused: "a controlling terminal entry"},
		{Type: fdinfo.FdTypes_AUTOFS_PIPE, Refused: "an autofs pipe"},
	}
}

// Lookup returns the kind of file type t, or nil when cryo refuses it.
func Lookup(t fdinfo.FdTypes) Kind {
	for _, e := range Registry() {
		if e.Type == t {
			return e.Kind
		}
	}
	return nil
}

// Detect returns the simple kind whose descriptors /proc/PID/fd names
// target ("anon_inode:[eventfd]"), or nil.
func Detect(target string) Simple {
	for _, e := range Registry() {
		if s, ok := e.Kind.(Simple); ok && s.Target() == target {
			return s
		}
	}
	return nil
}

// FamilySocketOf returns the socket kind of family (AF_NETLINK), or nil.
func FamilySocketOf(family int) FamilySocket {
	for _, e := range Registry() {
		if s, ok := e.Kind.(FamilySocket); ok && s.Family() == family {
			return s
		}
	}
	return nil
}

// CreatorOf returns the kind that creates files of type t one at a time
// by injected calls (a simple kind or a family socket kind), or nil.
func CreatorOf(t fdinfo.FdTypes) interface {
	Create(m Maker, f *fdinfo.FileEntry) (uint64, error)
} {
	switch k := Lookup(t).(type) {
	case Simple:
		return k
	case FamilySocket:
		return k
	}
	return nil
}

// SimpleOf returns the simple kind of file type t, or nil.
func SimpleOf(t fdinfo.FdTypes) Simple {
	s, _ := Lookup(t).(Simple)
	return s
}

// CheckFile checks an untrusted file entry of files.img against its kind:
// a type cryo refuses, or an entry without its payload, is "not supported
// yet".
func CheckFile(f *fdinfo.FileEntry) error {
	k := Lookup(f.GetType())
	if k == nil {
		return fmt.Errorf("file %d of type %v is not supported yet", f.GetId(), f.GetType())
	}
	return k.Check(f)
}

// needPayload is the one refusal of an entry whose type's payload is
// missing, worded as for an unknown type.
func needPayload(f *fdinfo.FileEntry, ok bool) error {
	if !ok {
		return fmt.Errorf("file %d of type %v is not supported yet", f.GetId(), f.GetType())
	}
	return nil
}
