package image

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"google.golang.org/protobuf/proto"
)

// The dead /proc root mark survives encoding, and an entry of CRIU's has
// none.
func TestDeadProcRoot(t *testing.T) {
	e := &fs.FsEntry{CwdId: proto.Uint32(1), RootId: proto.Uint32(1), Umask: proto.Uint32(0o22)}
	if dead, err := DeadProcRoot(e); dead || err != nil {
		t.Fatalf("unmarked entry: %v, %v", dead, err)
	}
	SetDeadProcRoot(e)
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back fs.FsEntry
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if dead, err := DeadProcRoot(&back); !dead || err != nil {
		t.Fatalf("marked entry read back: %v, %v", dead, err)
	}
}
