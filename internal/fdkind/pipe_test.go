package fdkind

import (
	"os"
	"reflect"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pipe"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// pipeEnd is file id, an end of pipe pid opened with flags.
func pipeEnd(id, pid, flags uint32) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{Id: proto.Uint32(id), Type: fdinfo.FdTypes_PIPE.Enum(),
		Pipe: &pipe.PipeEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(pid), Flags: proto.Uint32(flags)}}
}

// The ends of each pipe are one group, in the order of their first file;
// a pipe with only one end in the tree is a group of one.
func TestPipePlanGroupsEnds(t *testing.T) {
	got, err := Pipe{}.Plan([]*fdinfo.FileEntry{
		pipeEnd(1, 50, unix.O_WRONLY), pipeEnd(2, 40, unix.O_RDONLY),
		pipeEnd(3, 50, unix.O_RDONLY|unix.O_NONBLOCK), pipeEnd(4, 40, unix.O_WRONLY),
		pipeEnd(5, 60, unix.O_WRONLY),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{{Key: 50, IDs: []uint32{1, 3}}, {Key: 40, IDs: []uint32{2, 4}}, {Key: 60, IDs: []uint32{5}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}

// A pipe with two read (or write) open files was reopened through /proc:
// one pipe2 cannot make it, and the plan says so in one line.
func TestPipePlanRefusesReopened(t *testing.T) {
	_, err := Pipe{}.Plan([]*fdinfo.FileEntry{
		pipeEnd(1, 50, unix.O_RDONLY), pipeEnd(2, 50, unix.O_WRONLY), pipeEnd(3, 50, unix.O_RDONLY),
	})
	want := "pipe 50: 2 read and 1 write open files: reopened pipes are not supported yet"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// PipeInode reads the inode of a pipe's /proc link, and refuses another.
func TestPipeInode(t *testing.T) {
	if ino, ok := PipeInode("pipe:[1234]"); !ok || ino != 1234 {
		t.Errorf("pipe:[1234]: %d %v", ino, ok)
	}
	if _, ok := PipeInode("pipe:[x]"); ok {
		t.Error("pipe:[x]: accepted")
	}
}

// PeekQueue copies a pipe's queue and capacity without taking the bytes:
// the reader still finds them all afterwards.
func TestPeekQueueLeavesBytes(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	want := []byte("queued before the dump")
	if _, err := unix.Write(p[1], want); err != nil {
		t.Fatal(err)
	}
	data, size, err := PeekQueue(os.Getpid(), p[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(want) || size <= 0 {
		t.Errorf("peeked %q, capacity %d", data, size)
	}
	got := make([]byte, 100)
	n, err := unix.Read(p[0], got)
	if err != nil || string(got[:n]) != string(want) {
		t.Errorf("after the peek the reader got %q, %v", got[:n], err)
	}
}
