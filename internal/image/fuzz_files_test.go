package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

// Fuzzers for the image readers that read a file of their own format
// (ghost files, TCP streams, System V IPC objects) and for the extension
// fields cryo keeps in unknown protobuf fields. Each reads untrusted bytes:
// any input must give either a value within the reader's bounds or an
// error, never a panic or an allocation beyond the limits.

// fuzzDir writes data as the file name of a fresh image directory.
func fuzzDir(t *testing.T, name string, data []byte) *Dir {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Dir{path: dir}
}

// fileSeed returns the bytes a writer left in name, for a seed.
func fileSeed(f *testing.F, name string, write func(d *Dir) error) []byte {
	dir := f.TempDir()
	d := &Dir{path: dir}
	if err := write(d); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzReadGhost(f *testing.F) {
	fuzzSeeds(f)
	data := []byte("ghost contents")
	e := &ghost_file.GhostFileEntry{Uid: u32(0), Gid: u32(0), Mode: u32(0o100600), Size: proto.Uint64(uint64(len(data))), Chunks: proto.Bool(false)}
	good := fileSeed(f, GhostName(1), func(d *Dir) error { return d.WriteGhost(1, e, data) })
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, data, err := fuzzDir(t, GhostName(1), b).ReadGhost(1)
		if err != nil {
			return
		}
		if e.GetSize() != uint64(len(data)) || e.GetSize() > MaxGhostBytes {
			t.Fatalf("ghost of size %d read with %d bytes", e.GetSize(), len(data))
		}
	})
}

func FuzzReadTCPStream(f *testing.F) {
	fuzzSeeds(f)
	e, inq, outq := sampleTCPStream()
	good := fileSeed(f, TCPStreamName(1), func(d *Dir) error { return d.WriteTCPStream(1, e, inq, outq) })
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, inq, outq, err := fuzzDir(t, TCPStreamName(1), b).ReadTCPStream(1)
		if err != nil {
			return
		}
		if uint32(len(inq)) != e.GetInqLen() || uint32(len(outq)) != e.GetOutqLen() {
			t.Fatalf("queues of %d and %d bytes for lengths %d and %d", len(inq), len(outq), e.GetInqLen(), e.GetOutqLen())
		}
	})
}

func FuzzReadSysV(f *testing.F) {
	fuzzSeeds(f)
	for _, m := range []string{"IPCNS_SHM", "IPCNS_SEM", "IPCNS_MSG"} {
		f.Add(header(m))
		f.Add(append(header(m), 4, 0, 0, 0, 8, 1, 16, 2))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The same bytes as each of the three files.
		for _, name := range []string{shmName(1), semName(1), msgName(1)} {
			s, err := fuzzDir(t, name, b).ReadSysV(1)
			if err != nil {
				continue
			}
			for _, seg := range s.Shm {
				if uint64(len(seg.Data)) > seg.Entry.GetSize()+pageSize {
					t.Fatalf("segment of size %d read with %d bytes", seg.Entry.GetSize(), len(seg.Data))
				}
			}
		}
	})
}

// FuzzExtFields reads every extension cryo keeps in unknown fields from
// arbitrary bytes put there.
func FuzzExtFields(f *testing.F) {
	e := &pstree.PstreeEntry{}
	SetNsPids(e, []uint32{1, 2, 3})
	SetPidnsOwner(e, 7)
	AddBacklog(e, []uint32{4, 5})
	SetBacklogOf(e, 9)
	SetPeerCred(e, PeerCred{Pid: 1, UID: 2, GID: 3})
	f.Add([]byte(e.ProtoReflect().GetUnknown()))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &pstree.PstreeEntry{}
		m.ProtoReflect().SetUnknown(b)
		NsPids(m)
		PidnsOwner(m)
		Backlog(m)
		GetPeerCred(m)
		PacketCred(m)
		PacketSender(m)
		EventfdSemaphore(m)
	})
}
