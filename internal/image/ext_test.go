package image

import (
	"slices"
	"testing"

	skpacket "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"google.golang.org/protobuf/proto"
)

// TestUnixExtFields: the extra fields of a Unix socket entry (peer
// credentials, a backlog's order, the listener of a server end) sit side
// by side and survive encoding; a queued message's sender and credentials
// too.
func TestUnixExtFields(t *testing.T) {
	e := &skunix.UnixSkEntry{Ino: proto.Uint32(7)}
	SetPeerCred(e, PeerCred{Pid: 10, UID: 20, GID: 30})
	AddBacklog(e, []uint32{3, 1, 2})
	SetBacklogOf(e, 99)
	// Only the fields under test matter: required ones may stay unset.
	opts := proto.MarshalOptions{AllowPartial: true}
	uopts := proto.UnmarshalOptions{AllowPartial: true}
	b, err := opts.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got := &skunix.UnixSkEntry{}
	if err := uopts.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := GetPeerCred(got); err != nil || !ok || c != (PeerCred{10, 20, 30}) {
		t.Errorf("peer credentials: %+v %v %v", c, ok, err)
	}
	if clients, of, err := Backlog(got); err != nil || !slices.Equal(clients, []uint32{3, 1, 2}) || of != 99 {
		t.Errorf("backlog: %v of %d (%v), want [3 1 2] of 99", clients, of, err)
	}

	m := &skpacket.SkPacketEntry{IdFor: proto.Uint32(1), Length: proto.Uint32(0)}
	SetPacketSender(m, 42)
	SetPacketCred(m, PeerCred{Pid: 5, UID: 6, GID: 7})
	if b, err = opts.Marshal(m); err != nil {
		t.Fatal(err)
	}
	gm := &skpacket.SkPacketEntry{}
	if err := uopts.Unmarshal(b, gm); err != nil {
		t.Fatal(err)
	}
	if id, err := PacketSender(gm); err != nil || id != 42 {
		t.Errorf("sender %d (%v), want 42", id, err)
	}
	if c, ok, err := PacketCred(gm); err != nil || !ok || c != (PeerCred{5, 6, 7}) {
		t.Errorf("message credentials: %+v %v %v", c, ok, err)
	}
	if _, ok, _ := PacketCred(&skpacket.SkPacketEntry{}); ok {
		t.Errorf("credentials found in an entry without them")
	}
	if id, err := PacketSender(&skpacket.SkPacketEntry{}); err != nil || id != 0 {
		t.Errorf("no sender: %d (%v), want 0", id, err)
	}
}
