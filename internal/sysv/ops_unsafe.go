package sysv

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Commands and flags of the System V calls (linux/ipc.h, linux/sem.h, linux/msg.h).
const (
	ipcSet     = 1
	semGetAll  = 13
	semSetAll  = 17
	msgCopy    = 0o40000
	ipcNoWait  = 0o4000
	ipcCreat   = 0o1000
	ipcExcl    = 0o2000
	permOffUID = 4 // in struct ipc64_perm, at the start of every *id64_ds
	permOffGID = 8
	permOffMod = 20
	msqQbytes  = 88 // msg_qbytes in struct msqid64_ds (x86-64)
	dsSize     = 128
)

// ReadShm returns a segment's contents (attached read-only, then detached).
func ReadShm(id int, size uint64) ([]byte, error) {
	b, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("shm %d: attach: %w", id, err)
	}
	defer unix.SysvShmDetach(b)
	return append([]byte(nil), b[:min(uint64(len(b)), size)]...), nil
}

// ReadSem returns the values of a semaphore set.
func ReadSem(id int, nsems int) ([]uint16, error) {
	vals := make([]uint16, max(nsems, 1))
	if _, _, e := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, semGetAll, uintptr(unsafe.Pointer(&vals[0])), 0, 0); e != 0 {
		return nil, fmt.Errorf("sem %d: GETALL: %w", id, e)
	}
	return vals[:nsems], nil
}

// Message is one queued message.
type Message struct {
	Type uint64
	Data []byte
}

// ReadMsgs copies a queue's messages without taking them (MSG_COPY).
func ReadMsgs(id int, count int) ([]Message, error) {
	buf := make([]byte, 8+(1<<20))
	var out []Message
	for i := 0; i < count; i++ {
		n, _, e := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)-8), uintptr(i), msgCopy|ipcNoWait, 0)
		if e != 0 {
			return nil, fmt.Errorf("msg %d: copy message %d: %w", id, i, e)
		}
		out = append(out, Message{Type: binary.LittleEndian.Uint64(buf), Data: append([]byte(nil), buf[8:8+n]...)})
	}
	return out, nil
}

// Creator is what an object is made with: its id (through the
// kernel/*_next_id sysctl), key, mode and creator, and then owner.
type Creator struct {
	ID         int
	Key        int32
	Mode       uint32
	UID, GID   uint32 // owner, host view
	CUID, CGID uint32 // creator, host view
}

// withCreator sets the thread's effective ids to the creator's around fn
// (cuid and cgid are whoever made the object) and makes the next id the
// wanted one. Runs on a locked, throwaway thread: raw per-thread calls.
func (c Creator) make(kind string, fn func() (int, error)) error {
	if err := os.WriteFile("/proc/sys/kernel/"+kind+"_next_id", []byte(strconv.Itoa(c.ID)), 0); err != nil {
		return fmt.Errorf("%s %d: set next id: %w", kind, c.ID, err)
	}
	keep := ^uintptr(0)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(c.CGID), keep); e != 0 {
		return fmt.Errorf("%s %d: become creator gid %d: %w", kind, c.ID, c.CGID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(c.CUID), keep); e != 0 {
		return fmt.Errorf("%s %d: become creator uid %d: %w", kind, c.ID, c.CUID, e)
	}
	id, err := fn()
	unix.RawSyscall(unix.SYS_SETRESUID, keep, 0, keep)
	unix.RawSyscall(unix.SYS_SETRESGID, keep, 0, keep)
	if err != nil {
		return fmt.Errorf("%s %d: create: %w", kind, c.ID, err)
	}
	if id != c.ID {
		return fmt.Errorf("%s: created id %d, not %d", kind, id, c.ID)
	}
	return nil
}

func (c Creator) ds() []byte {
	b := make([]byte, dsSize)
	binary.LittleEndian.PutUint32(b[permOffUID:], c.UID)
	binary.LittleEndian.PutUint32(b[permOffGID:], c.GID)
	binary.LittleEndian.PutUint16(b[permOffMod:], uint16(c.Mode&0o777))
	return b
}

func setOwner(nr uintptr, kind string, id int, ds []byte) error {
	if _, _, e := unix.Syscall6(nr, uintptr(id), 0, ipcSet, uintptr(unsafe.Pointer(&ds[0])), 0, 0); e != 0 {
		return fmt.Errorf("%s %d: set owner and mode: %w", kind, id, e)
	}
	return nil
}

// MakeShm recreates a segment with its contents.
func MakeShm(c Creator, data []byte) error {
	err := c.make("shm", func() (int, error) {
		r, _, e := unix.RawSyscall(unix.SYS_SHMGET, uintptr(c.Key), uintptr(len(data)), uintptr(ipcCreat|ipcExcl|c.Mode&0o777))
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	})
	if err != nil {
		return err
	}
	b, err := unix.SysvShmAttach(c.ID, 0, 0)
	if err != nil {
		return fmt.Errorf("shm %d: attach: %w", c.ID, err)
	}
	copy(b, data)
	unix.SysvShmDetach(b)
	// shmctl's IPC_SET takes the perm fields at the same place.
	_, _, e := unix.Syscall(unix.SYS_SHMCTL, uintptr(c.ID), ipcSet, uintptr(unsafe.Pointer(&c.ds()[0])))
	if e != 0 {
		return fmt.Errorf("shm %d: set owner and mode: %w", c.ID, e)
	}
	return nil
}

// MakeSem recreates a semaphore set with its values.
func MakeSem(c Creator, vals []uint16) error {
	err := c.make("sem", func() (int, error) {
		r, _, e := unix.RawSyscall(unix.SYS_SEMGET, uintptr(c.Key), uintptr(len(vals)), uintptr(ipcCreat|ipcExcl|c.Mode&0o777))
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	})
	if err != nil {
		return err
	}
	if len(vals) > 0 {
		if _, _, e := unix.Syscall6(unix.SYS_SEMCTL, uintptr(c.ID), 0, semSetAll, uintptr(unsafe.Pointer(&vals[0])), 0, 0); e != 0 {
			return fmt.Errorf("sem %d: SETALL: %w", c.ID, e)
		}
	}
	return setOwner(unix.SYS_SEMCTL, "sem", c.ID, c.ds())
}

// MakeMsg recreates a message queue with its messages and byte limit.
func MakeMsg(c Creator, qbytes uint64, msgs []Message) error {
	err := c.make("msg", func() (int, error) {
		r, _, e := unix.RawSyscall(unix.SYS_MSGGET, uintptr(c.Key), uintptr(ipcCreat|ipcExcl|c.Mode&0o777), 0)
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	})
	if err != nil {
		return err
	}
	ds := c.ds()
	if qbytes != 0 {
		binary.LittleEndian.PutUint64(ds[msqQbytes:], qbytes)
		// Raise the limit first so that the messages fit.
		if _, _, e := unix.Syscall(unix.SYS_MSGCTL, uintptr(c.ID), ipcSet, uintptr(unsafe.Pointer(&ds[0]))); e != 0 {
			return fmt.Errorf("msg %d: set limits: %w", c.ID, e)
		}
	}
	for i, m := range msgs {
		buf := binary.LittleEndian.AppendUint64(nil, m.Type)
		buf = append(buf, m.Data...)
		if _, _, e := unix.Syscall6(unix.SYS_MSGSND, uintptr(c.ID), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(m.Data)), ipcNoWait, 0, 0); e != 0 {
			return fmt.Errorf("msg %d: queue message %d: %w", c.ID, i, e)
		}
	}
	_, _, e := unix.Syscall(unix.SYS_MSGCTL, uintptr(c.ID), ipcSet, uintptr(unsafe.Pointer(&ds[0])))
	if e != 0 {
		return fmt.Errorf("msg %d: set owner and mode: %w", c.ID, e)
	}
	return nil
}
