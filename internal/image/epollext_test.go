package image

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	"google.golang.org/protobuf/proto"
)

// TestEpollTarget: the watched file's id survives encoding, and an entry
// without it (CRIU's) says so.
func TestEpollTarget(t *testing.T) {
	w := &eventpoll.EventpollTfdEntry{Id: proto.Uint32(3), Tfd: proto.Uint32(4), Events: proto.Uint32(1), Data: proto.Uint64(7)}
	if _, ok, err := EpollTarget(w); ok || err != nil {
		t.Fatalf("plain entry: ok %v, err %v; want no target", ok, err)
	}
	SetEpollTarget(w, 42)
	b, err := proto.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back eventpoll.EventpollTfdEntry
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := EpollTarget(&back); !ok || err != nil || id != 42 || back.GetTfd() != 4 {
		t.Fatalf("decoded: id %d ok %v err %v tfd %d; want 42 true nil 4", id, ok, err, back.GetTfd())
	}
}
