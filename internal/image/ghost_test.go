package image

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// A ghost of 8 MiB of zeros with a marker is written sparse and read back
// in place, exactly its size.
func TestGhostSparseRoundTrip(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	data := make([]byte, size)
	copy(data[3<<20:], "marker")
	e := &ghostfile.GhostFileEntry{Uid: proto.Uint32(1), Gid: proto.Uint32(2), Mode: proto.Uint32(0o100600), Size: proto.Uint64(size), Chunks: proto.Bool(false)}
	if err := d.WriteGhost(7, e, data); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(d.Path(), GhostName(7)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("8 MiB of mostly zeros take %d bytes on disk", st.Blocks*512)
	}
	got, r, err := d.OpenGhost(7)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got.GetSize() != size || r.Size() != size {
		t.Fatalf("size %d, reader %d", got.GetSize(), r.Size())
	}
	back, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("contents differ (%v)", err)
	}
}

// A ghost image cut short is refused when opened, before any read.
func TestGhostTruncatedRefused(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100600), Size: proto.Uint64(4096), Chunks: proto.Bool(false)}
	if err := d.WriteGhost(3, e, bytes.Repeat([]byte{1}, 4096)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path(), GhostName(3))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.OpenGhost(3); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a truncated ghost image: %v", err)
	}
}
