package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
)

// Unix is a Unix socket. Only its registry entry, its --inherit-fd key and
// its net namespace live here so far: its dump (dump/unixsk.go,
// dump/backlog.go) and its restore (restore/unixsk.go, unixbind.go,
// unixlink.go, unixlate.go, unixshut.go) are still the tree's, planned
// with the pairs, one-way connections, queues and descriptors in flight
// that tie sockets of several processes together.
type Unix struct{}

// Type is UNIXSK.
func (Unix) Type() fdinfo.FdTypes { return fdinfo.FdTypes_UNIXSK }

// Check refuses an entry without its payload.
func (Unix) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetUsk() != nil) }

// Keys are CRIU's name of the socket, socket:[INO].
func (Unix) Keys(f *fdinfo.FileEntry, _ func(uint32) *fdinfo.FileEntry) []string {
	return []string{fmt.Sprintf("socket:[%d]", f.GetUsk().GetIno())}
}

// SocketNsID is the id of the tree's net namespace socket f (Unix, inet
// or netlink) lives in, 0 for cryo's or for another kind of file.
func SocketNsID(f *fdinfo.FileEntry) uint32 {
	switch f.GetType() {
	case fdinfo.FdTypes_UNIXSK:
		return f.GetUsk().GetNsId()
	case fdinfo.FdTypes_INETSK:
		return f.GetIsk().GetNsId()
	case fdinfo.FdTypes_NETLINKSK:
		return f.GetNlsk().GetNsId()
	}
	return 0
}
