package sysv

import (
	"bytes"
	"os"
	"syscall"
	"testing"

	"github.com/cryo-cr/cryo/internal/nsthread"
	"golang.org/x/sys/unix"
)

// TestRoundTrip makes objects in a fresh IPC namespace (a child's), reads
// them back with List/Read*, recreates them in a second namespace with the
// same ids, and reads them again.
func TestRoundTrip(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create IPC namespaces and choose object ids")
	}
	ns := func() int {
		// A process in its own IPC namespace to run the test's thread in.
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Kill(); p.Wait() })
		return p.Pid
	}
	src, dst := ns(), ns()
	data := bytes.Repeat([]byte("segment!"), 512)
	vals := []uint16{1, 2, 3}
	msgs := []Message{{Type: 5, Data: []byte("five")}, {Type: 7, Data: []byte("seven")}}
	create := func() error {
		c := Creator{ID: 65538, Key: 1234, Mode: 0o640, UID: 1000, GID: 1001, CUID: 0, CGID: 0}
		if err := MakeShm(c, data); err != nil {
			return err
		}
		c.ID, c.Key = 32769, 1235
		if err := MakeSem(c, vals); err != nil {
			return err
		}
		c.ID, c.Key = 3, 1236
		return MakeMsg(c, 0, msgs)
	}
	if err := nsthread.Run(src, "ipc", unix.CLONE_NEWIPC, create); err != nil {
		t.Fatal(err)
	}
	check := func(pid int) {
		err := nsthread.Run(pid, "ipc", unix.CLONE_NEWIPC, func() error {
			shm, err := List("shm")
			if err != nil || len(shm) != 1 || shm[0].ID != 65538 || shm[0].UID != 1000 || shm[0].Mode&0o777 != 0o640 {
				t.Errorf("shm: %+v %v", shm, err)
				return nil
			}
			got, err := ReadShm(shm[0].ID, shm[0].Size)
			if err != nil || !bytes.Equal(got[:len(data)], data) {
				t.Errorf("shm contents: %v", err)
			}
			sem, _ := List("sem")
			if len(sem) != 1 || sem[0].ID != 32769 {
				t.Errorf("sem: %+v", sem)
				return nil
			}
			if v, err := ReadSem(sem[0].ID, int(sem[0].Size)); err != nil || len(v) != 3 || v[2] != 3 {
				t.Errorf("sem values %v %v", v, err)
			}
			msg, _ := List("msg")
			if len(msg) != 1 || msg[0].ID != 3 || msg[0].Count != 2 {
				t.Errorf("msg: %+v", msg)
				return nil
			}
			m, err := ReadMsgs(msg[0].ID, int(msg[0].Count))
			if err != nil || len(m) != 2 || m[1].Type != 7 || string(m[1].Data) != "seven" {
				t.Errorf("messages %+v %v", m, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(src)
	// The same objects made again elsewhere, from what was read.
	if err := nsthread.Run(dst, "ipc", unix.CLONE_NEWIPC, create); err != nil {
		t.Fatal(err)
	}
	check(dst)
}
