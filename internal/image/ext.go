package image

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	usernsimg "github.com/checkpoint-restore/go-criu/v7/crit/images/userns"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Some state has no field in CRIU's messages. cryo keeps it in extra
// protobuf fields with numbers far above CRIU's: protobuf readers, crit
// among them, skip fields they do not know, so the images stay readable by
// CRIU's tools.
const (
	// creds_entry: ambient capabilities and no_new_privs.
	fieldCapAmb     protowire.Number = 1001
	fieldNoNewPrivs protowire.Number = 1002
	// userns_entry: the owner (host uid of the creator), the parent
	// namespace's id (0: the initial one) and whether setgroups is denied.
	fieldUsernsOwner     protowire.Number = 1001
	fieldUsernsParent    protowire.Number = 1002
	fieldUsernsSetgroups protowire.Number = 1003
)

// CredsExt is what cryo stores beside CRIU's credentials.
type CredsExt struct {
	CapAmb     uint64
	NoNewPrivs bool
}

// SetCredsExt records x in c.
func SetCredsExt(c *creds.CredsEntry, x CredsExt) {
	c.ProtoReflect().SetUnknown(appendVarints(nil,
		fieldCapAmb, x.CapAmb,
		fieldNoNewPrivs, protowire.EncodeBool(x.NoNewPrivs)))
}

// GetCredsExt reads what SetCredsExt recorded (zero values if absent).
func GetCredsExt(c *creds.CredsEntry) (CredsExt, error) {
	var x CredsExt
	err := varintFields(c.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldCapAmb:
			x.CapAmb = v
		case fieldNoNewPrivs:
			x.NoNewPrivs = protowire.DecodeBool(v)
		}
	})
	return x, err
}

// UsernsExt is what cryo stores beside CRIU's user namespace entry.
type UsernsExt struct {
	Owner         uint32
	Parent        uint32
	SetgroupsDeny bool
}

// SetUsernsExt records x in e.
func SetUsernsExt(e *usernsimg.UsernsEntry, x UsernsExt) {
	e.ProtoReflect().SetUnknown(appendVarints(nil,
		fieldUsernsOwner, uint64(x.Owner),
		fieldUsernsParent, uint64(x.Parent),
		fieldUsernsSetgroups, protowire.EncodeBool(x.SetgroupsDeny)))
}

// GetUsernsExt reads what SetUsernsExt recorded (zero values if absent).
func GetUsernsExt(e *usernsimg.UsernsEntry) (UsernsExt, error) {
	var x UsernsExt
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldUsernsOwner:
			x.Owner = uint32(v)
		case fieldUsernsParent:
			x.Parent = uint32(v)
		case fieldUsernsSetgroups:
			x.SetgroupsDeny = protowire.DecodeBool(v)
		}
	})
	return x, err
}

// appendVarints appends (field number, value) pairs as varint fields.
func appendVarints(b []byte, pairs ...any) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		b = protowire.AppendTag(b, pairs[i].(protowire.Number), protowire.VarintType)
		b = protowire.AppendVarint(b, pairs[i+1].(uint64))
	}
	return b
}

// varintFields calls fn for every varint field in raw protobuf bytes and
// skips the others.
func varintFields(b []byte, fn func(protowire.Number, uint64)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("extension fields: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("extension fields: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return fmt.Errorf("extension fields: %w", protowire.ParseError(n))
		}
		b = b[n:]
		fn(num, v)
	}
	return nil
}

// fieldEventfdSemaphore marks an eventfd made with EFD_SEMAPHORE:
// eventfd_file_entry has no field for it.
const fieldEventfdSemaphore protowire.Number = 1001

// SetEventfdSemaphore records EFD_SEMAPHORE in an eventfd entry.
func SetEventfdSemaphore(e proto.Message, on bool) {
	e.ProtoReflect().SetUnknown(appendVarints(nil, fieldEventfdSemaphore, protowire.EncodeBool(on)))
}

// EventfdSemaphore reads what SetEventfdSemaphore recorded.
func EventfdSemaphore(e proto.Message) (bool, error) {
	var on bool
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldEventfdSemaphore {
			on = protowire.DecodeBool(v)
		}
	})
	return on, err
}

// unix_sk_entry has no field for the peer credentials (SO_PEERCRED) a
// connected socket reports; cryo keeps them in extra fields.
const (
	fieldPeerPid protowire.Number = 1001
	fieldPeerUID protowire.Number = 1002
	fieldPeerGID protowire.Number = 1003
)

// PeerCred is what SO_PEERCRED reports, ids as the host sees them.
type PeerCred struct{ Pid, UID, GID uint32 }

// SetPeerCred records c in a socket entry.
func SetPeerCred(e proto.Message, c PeerCred) { setCred(e, fieldPeerPid, c) }

// GetPeerCred reads what SetPeerCred recorded; ok is false if nothing was.
func GetPeerCred(e proto.Message) (c PeerCred, ok bool, err error) { return getCred(e, fieldPeerPid) }

// setCred appends c as three varint fields numbered from pidField.
func setCred(e proto.Message, pidField protowire.Number, c PeerCred) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(),
		pidField, uint64(c.Pid), pidField+1, uint64(c.UID), pidField+2, uint64(c.GID)))
}

// getCred reads what setCred recorded at pidField.
func getCred(e proto.Message, pidField protowire.Number) (c PeerCred, ok bool, err error) {
	err = varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case pidField:
			c.Pid, ok = uint32(v), true
		case pidField + 1:
			c.UID = uint32(v)
		case pidField + 2:
			c.GID = uint32(v)
		}
	})
	return c, ok, err
}

// A receiver with SO_PASSCRED gets each message's sender credentials
// (SCM_CREDENTIALS). CRIU's sk_packet_entry in go-criu has no field for
// them; cryo keeps them after the sender, ids as the host sees them.
const fieldPacketPid protowire.Number = 1002

// SetPacketCred records the credentials a queued message carries.
func SetPacketCred(e proto.Message, c PeerCred) { setCred(e, fieldPacketPid, c) }

// PacketCred reads what SetPacketCred recorded; ok is false if nothing was.
func PacketCred(e proto.Message) (c PeerCred, ok bool, err error) { return getCred(e, fieldPacketPid) }

// pstree_entry keeps pids as cryo's pid namespace sees them; the ids in
// the tree's own pid namespace (one level below) are an extra field,
// thread by thread in the order of threads.
const fieldNsPids protowire.Number = 1001

// SetNsPids records the inner ids of a process's threads.
func SetNsPids(e proto.Message, inner []uint32) {
	var b []byte
	for _, v := range inner {
		b = protowire.AppendTag(b, fieldNsPids, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	e.ProtoReflect().SetUnknown(b)
}

// NsPids reads what SetNsPids recorded (nil if nothing).
func NsPids(e proto.Message) ([]uint32, error) {
	var out []uint32
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldNsPids {
			out = append(out, uint32(v))
		}
	})
	return out, err
}

// pidns_entry has no field for the user namespace owning the pid
// namespace; 0 means the dumper's own.
const fieldPidnsOwner protowire.Number = 1001

// SetPidnsOwner records the owning user namespace's id.
func SetPidnsOwner(e proto.Message, id uint32) {
	e.ProtoReflect().SetUnknown(appendVarints(nil, fieldPidnsOwner, uint64(id)))
}

// PidnsOwner reads what SetPidnsOwner recorded.
func PidnsOwner(e proto.Message) (uint32, error) {
	var id uint32
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldPidnsOwner {
			id = uint32(v)
		}
	})
	return id, err
}

// A datagram queued in a socket that is not connected to its sender came
// from some socket, and recvfrom tells the receiver that socket's name.
// sk_packet_entry's field for it (addr) is only reserved in CRIU's
// messages; cryo keeps the file id of the sending socket (0: an unnamed
// sender, which any unnamed socket can stand for).
const fieldPacketSender protowire.Number = 1001

// SetPacketSender records the file id of the socket a message came from.
func SetPacketSender(e proto.Message, id uint32) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(), fieldPacketSender, uint64(id)))
}

// PacketSender reads what SetPacketSender recorded (0 if nothing).
func PacketSender(e proto.Message) (uint32, error) {
	var id uint32
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldPacketSender {
			id = uint32(v)
		}
	})
	return id, err
}

// Connections waiting in a listener's backlog: CRIU records the client
// end with the listener as its peer, and nothing of the server end, which
// has no descriptor. cryo also keeps the order of the backlog (the
// clients' inodes, first to be accepted first) in the listener's entry,
// and, when a client already sent data, the server end as an entry of its
// own that names its listener, so that sk-queues.img can hold its bytes.
const (
	fieldUnixBacklog   protowire.Number = 1004
	fieldUnixBacklogOf protowire.Number = 1005
)

// AddBacklog appends the inodes of a listener's waiting clients, in order.
func AddBacklog(e proto.Message, clients []uint32) {
	b := e.ProtoReflect().GetUnknown()
	for _, c := range clients {
		b = appendVarints(b, fieldUnixBacklog, uint64(c))
	}
	e.ProtoReflect().SetUnknown(b)
}

// SetBacklogOf marks an entry as the server end of a connection waiting in
// the backlog of listener ino.
func SetBacklogOf(e proto.Message, listener uint32) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(), fieldUnixBacklogOf, uint64(listener)))
}

// Backlog reads what AddBacklog and SetBacklogOf recorded.
func Backlog(e proto.Message) (clients []uint32, of uint32, err error) {
	err = varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldUnixBacklog:
			clients = append(clients, uint32(v))
		case fieldUnixBacklogOf:
			of = uint32(v)
		}
	})
	return clients, of, err
}

// ip_opts_entry: IP_TOS (IPV6_TCLASS) and IP_TTL (IPV6_UNICAST_HOPS), for
// which CRIU has no field (its numbers 2 and 3 are reserved for others).
// Not 1001: OpenVZ's CRIU uses it in this message (vz_pktinfo).
const (
	fieldIPTOS protowire.Number = 2001
	fieldIPTTL protowire.Number = 2002
)

// IPOptsExt is what cryo stores beside CRIU's IP options; nil is absent.
type IPOptsExt struct {
	TOS, TTL *uint32
}

// SetIPOptsExt records x in e.
func SetIPOptsExt(e *skinet.IpOptsEntry, x IPOptsExt) {
	var b []byte
	if x.TOS != nil {
		b = appendVarints(b, fieldIPTOS, uint64(*x.TOS))
	}
	if x.TTL != nil {
		b = appendVarints(b, fieldIPTTL, uint64(*x.TTL))
	}
	e.ProtoReflect().SetUnknown(b)
}

// GetIPOptsExt reads what SetIPOptsExt recorded.
func GetIPOptsExt(e *skinet.IpOptsEntry) (IPOptsExt, error) {
	var x IPOptsExt
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldIPTOS:
			x.TOS = proto.Uint32(uint32(v))
		case fieldIPTTL:
			x.TTL = proto.Uint32(uint32(v))
		}
	})
	return x, err
}

// inet_sk_entry has no field for a socket's owner: the uid and gid of its
// inode, which its creator's fsuid and fsgid gave it, and which firewall
// rules (nftables skuid) and /proc/net/{tcp,udp} see. cryo keeps them,
// as the host sees them. (Not 1001: forks of CRIU use that range here.)
const (
	fieldInetOwnerUID protowire.Number = 2001
	fieldInetOwnerGID protowire.Number = 2002
)

// SetInetOwner records the owner of an inet socket.
func SetInetOwner(e *skinet.InetSkEntry, uid, gid uint32) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(),
		fieldInetOwnerUID, uint64(uid), fieldInetOwnerGID, uint64(gid)))
}

// GetInetOwner reads what SetInetOwner recorded; ok is false if nothing
// was (an image of CRIU's).
func GetInetOwner(e *skinet.InetSkEntry) (uid, gid uint32, ok bool, err error) {
	var seen int
	big := false
	err = varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		switch num {
		case fieldInetOwnerUID:
			uid, seen, big = uint32(v), seen|1, big || v > 0xffffffff
		case fieldInetOwnerGID:
			gid, seen, big = uint32(v), seen|2, big || v > 0xffffffff
		}
	})
	switch {
	case err != nil:
	case big:
		err = fmt.Errorf("socket owner: an id above 32 bits")
	case seen != 0 && seen != 3:
		err = fmt.Errorf("socket owner: uid and gid must come together")
	}
	return uid, gid, seen == 3, err
}
