package image

import (
	"fmt"

	sknetlink "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-netlink"
	"google.golang.org/protobuf/encoding/protowire"
)

// Fields cryo adds to a netlink_sk_entry, which has none for them: the
// socket's type (SOCK_RAW or SOCK_DGRAM, which netlink treats alike but
// SO_TYPE tells apart; CRIU makes every netlink socket SOCK_RAW) and its
// SOL_NETLINK flags (NETLINK_PKTINFO, NETLINK_NO_ENOBUFS...), one bit per
// option number.
const (
	fieldNetlinkType  protowire.Number = 1001
	fieldNetlinkFlags protowire.Number = 1002
)

// SetNetlinkExt records a netlink socket's type and flag options.
func SetNetlinkExt(e *sknetlink.NetlinkSkEntry, typ, flags uint32) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(),
		fieldNetlinkType, uint64(typ), fieldNetlinkFlags, uint64(flags)))
}

// GetNetlinkExt reads what SetNetlinkExt recorded; an image of CRIU's has
// neither (typ 0, flags 0).
func GetNetlinkExt(e *sknetlink.NetlinkSkEntry) (typ, flags uint32, err error) {
	big := false
	err = varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldNetlinkType:
			typ, big = uint32(v), big || v > 0xffffffff
		case fieldNetlinkFlags:
			flags, big = uint32(v), big || v > 0xffffffff
		}
	})
	if err == nil && big {
		err = fmt.Errorf("netlink socket extension: a value above 32 bits")
	}
	return typ, flags, err
}
