package fdkind

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	sknetlink "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-netlink"
	skopts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// A netlink entry restore could not make as saved (bad protocol, state,
// group count, type or flags, no options) is refused; a good one, and one
// of CRIU's without cryo's extension, are accepted. The registry finds the
// kind by its family.
func TestNetlinkCheck(t *testing.T) {
	good := func() *sknetlink.NetlinkSkEntry {
		e := &sknetlink.NetlinkSkEntry{Id: proto.Uint32(3), Ino: proto.Uint32(9), Protocol: proto.Uint32(unix.NETLINK_ROUTE),
			State: proto.Uint32(0), Flags: proto.Uint32(0), Portid: proto.Uint32(100), Groups: []uint32{1, 1},
			DstPortid: proto.Uint32(0), DstGroup: proto.Uint32(0), Fown: noOwner(), Opts: &skopts.SkOptsEntry{}}
		image.SetNetlinkExt(e, unix.SOCK_DGRAM, 1<<unix.NETLINK_NO_ENOBUFS)
		return e
	}
	file := func(e *sknetlink.NetlinkSkEntry) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Id: proto.Uint32(3), Type: fdinfo.FdTypes_NETLINKSK.Enum(), Nlsk: e}
	}
	if err := CheckFile(file(good())); err != nil {
		t.Errorf("good entry: %v", err)
	}
	criu := good()
	criu.ProtoReflect().SetUnknown(nil)
	if err := CheckFile(file(criu)); err != nil {
		t.Errorf("CRIU's entry: %v", err)
	}
	for name, spoil := range map[string]func(e *sknetlink.NetlinkSkEntry){
		"protocol 32": func(e *sknetlink.NetlinkSkEntry) { e.Protocol = proto.Uint32(32) },
		"state 2":     func(e *sknetlink.NetlinkSkEntry) { e.State = proto.Uint32(2) },
		"no options":  func(e *sknetlink.NetlinkSkEntry) { e.Opts = nil },
		"many groups": func(e *sknetlink.NetlinkSkEntry) { e.Groups = make([]uint32, maxNetlinkGroupWords+1) },
		"stream type": func(e *sknetlink.NetlinkSkEntry) {
			e.ProtoReflect().SetUnknown(nil)
			image.SetNetlinkExt(e, unix.SOCK_STREAM, 0)
		},
		"unknown flags": func(e *sknetlink.NetlinkSkEntry) {
			e.ProtoReflect().SetUnknown(nil)
			image.SetNetlinkExt(e, unix.SOCK_RAW, 1<<20)
		},
	} {
		e := good()
		spoil(e)
		if err := CheckFile(file(e)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if k := FamilySocketOf(unix.AF_NETLINK); k == nil || k.Type() != fdinfo.FdTypes_NETLINKSK {
		t.Errorf("FamilySocketOf(AF_NETLINK) = %v", k)
	}
	if FamilySocketOf(unix.AF_INET) != nil || CreatorOf(fdinfo.FdTypes_NETLINKSK) == nil {
		t.Errorf("FamilySocketOf(AF_INET) or CreatorOf(NETLINKSK) wrong")
	}
}
