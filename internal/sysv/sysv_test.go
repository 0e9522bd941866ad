package sysv

import (
	"bytes"
	"os"
	"testing"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// stubInNewIPC starts a blank traced process (this test binary, stopped
// before its first instruction) that unshares its IPC namespace, and maps
// it scratch memory: a remote.Proc for the calls under test.
func stubInNewIPC(t *testing.T, tr *ptrace.Tracer) remote.Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stub, err := tr.StartStub(self, []string{"stub"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Kill(); stub.WaitExit() })
	insn, err := remote.SyscallInsn(stub.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stub.SetSyscallAddr(insn)
	if _, err := stub.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWIPC); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10
	addr, err := stub.Syscall(unix.SYS_MMAP, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Proc{T: stub, Scratch: addr, Size: size}
}

// TestRoundTrip makes objects in a fresh IPC namespace (a stub's), reads
// them back with List/Read*, recreates them in a second namespace with the
// same ids, and reads them again.
func TestRoundTrip(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create IPC namespaces and choose object ids")
	}
	tr := ptrace.NewTracer()
	defer tr.Close()
	src, dst := stubInNewIPC(t, tr), stubInNewIPC(t, tr)
	data := bytes.Repeat([]byte("segment!"), 512)
	vals := []uint16{1, 2, 3}
	msgs := []Message{{Type: 5, Data: []byte("five")}, {Type: 7, Data: []byte("seven")}}
	create := func(p remote.Proc) {
		c := Creator{ID: 65538, Key: 1234, Mode: 0o640, UID: 1000, GID: 1001, CUID: 0, CGID: 0}
		if err := MakeShm(p, c, data); err != nil {
			t.Fatal(err)
		}
		c.ID, c.Key = 32769, 1235
		if err := MakeSem(p, c, vals); err != nil {
			t.Fatal(err)
		}
		c.ID, c.Key, c.UID = 3, 1236, Unmapped
		if err := MakeMsg(p, c, 4096, msgs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(p remote.Proc) {
		shm, err := List(p, "shm")
		if err != nil || len(shm) != 1 || shm[0].ID != 65538 || shm[0].UID != 1000 || shm[0].Mode&0o777 != 0o640 {
			t.Fatalf("shm: %+v %v", shm, err)
		}
		got, err := ReadShm(p, shm[0].ID, shm[0].Size)
		if err != nil || !bytes.Equal(got[:len(data)], data) {
			t.Errorf("shm contents: %v", err)
		}
		sem, _ := List(p, "sem")
		if len(sem) != 1 || sem[0].ID != 32769 {
			t.Fatalf("sem: %+v", sem)
		}
		if v, err := ReadSem(p, sem[0].ID, int(sem[0].Size)); err != nil || len(v) != 3 || v[2] != 3 {
			t.Errorf("sem values %v %v", v, err)
		}
		msg, _ := List(p, "msg")
		// an unmapped owner becomes the creating process's (root here)
		if len(msg) != 1 || msg[0].ID != 3 || msg[0].Count != 2 || msg[0].UID != 0 {
			t.Fatalf("msg: %+v", msg)
		}
		m, err := ReadMsgs(p, msg[0].ID, int(msg[0].Count))
		if err != nil || len(m) != 2 || m[1].Type != 7 || string(m[1].Data) != "seven" {
			t.Errorf("messages %+v %v", m, err)
		}
		if q, err := MsgQbytes(p, msg[0].ID); err != nil || q != 4096 {
			t.Errorf("msg_qbytes %d %v, want 4096", q, err)
		}
	}
	create(src)
	check(src)
	// The same objects made again elsewhere, from what was read.
	create(dst)
	check(dst)
	if shm, err := List(src, "shm"); err != nil || len(shm) != 1 {
		t.Errorf("the first namespace sees %d segments (%v), want its own 1", len(shm), err)
	}
}
