package image

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"google.golang.org/protobuf/proto"
)

// TestVmaAnonHuge checks that the huge page count survives the encoding of
// a vma_entry, and that an entry without it (CRIU's) reads as 0.
func TestVmaAnonHuge(t *testing.T) {
	e := &vma.VmaEntry{Start: proto.Uint64(0x200000), End: proto.Uint64(0x800000), Pgoff: proto.Uint64(0),
		Shmid: proto.Uint64(0), Prot: proto.Uint32(3), Flags: proto.Uint32(0x22), Status: proto.Uint32(VmaRegular | VmaAnonPrivate), Fd: proto.Int64(-1)}
	plain, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	SetVmaAnonHuge(e, 6<<20)
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got, criu vma.VmaEntry
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if n, err := VmaAnonHuge(&got); err != nil || n != 6<<20 {
		t.Fatalf("read back %d, %v; want %d", n, err, 6<<20)
	}
	if err := proto.Unmarshal(plain, &criu); err != nil {
		t.Fatal(err)
	}
	if n, err := VmaAnonHuge(&criu); err != nil || n != 0 {
		t.Fatalf("entry without the field: %d, %v; want 0", n, err)
	}
}
