package sysv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
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
	shmRdonly  = 0o10000
	permOffUID = 4 // in struct ipc64_perm, at the start of every *id64_ds
	permOffGID = 8
	permOffMod = 20
	msqQbytes  = 88 // msg_qbytes in struct msqid64_ds (x86-64)
	dsSize     = 128
)

const keepID = remote.KeepID

// attach maps segment id in p and returns its address.
func attach(p remote.Proc, id int, flags uint64) (uint64, error) {
	addr, err := p.Call(unix.SYS_SHMAT, uint64(id), 0, flags)
	if err != nil {
		return 0, fmt.Errorf("shm %d: attach in process %d: %w", id, p.Pid(), err)
	}
	return addr, nil
}

// ReadShm returns a segment's contents, attached read-only in p.
func ReadShm(p remote.Proc, id int, size uint64) ([]byte, error) {
	addr, err := attach(p, id, shmRdonly)
	if err != nil {
		return nil, err
	}
	defer p.Call(unix.SYS_SHMDT, addr)
	b := make([]byte, size)
	if err := ptrace.ReadMem(p.Pid(), addr, b); err != nil {
		return nil, fmt.Errorf("shm %d: %w", id, err)
	}
	return b, nil
}

// ReadSem returns the values of a semaphore set.
func ReadSem(p remote.Proc, id int, nsems int) ([]uint16, error) {
	if nsems <= 0 || uint64(2*nsems) > p.Size {
		return nil, fmt.Errorf("sem %d: %d semaphores", id, nsems)
	}
	if _, err := p.Call(unix.SYS_SEMCTL, uint64(id), 0, semGetAll, p.Scratch); err != nil {
		return nil, fmt.Errorf("sem %d: GETALL: %w", id, err)
	}
	b, err := p.Get(0, 2*nsems)
	if err != nil {
		return nil, err
	}
	vals := make([]uint16, nsems)
	for i := range vals {
		vals[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return vals, nil
}

// Message is one queued message.
type Message struct {
	Type uint64
	Data []byte
}

// ReadMsgs copies a queue's messages without taking them (MSG_COPY).
func ReadMsgs(p remote.Proc, id int, count int) ([]Message, error) {
	var out []Message
	for i := 0; i < count; i++ {
		n, err := p.Call(unix.SYS_MSGRCV, uint64(id), p.Scratch, p.Size-8, uint64(i), msgCopy|ipcNoWait)
		if errors.Is(err, unix.E2BIG) {
			return nil, fmt.Errorf("msg %d: message %d is larger than %d bytes", id, i, p.Size-8)
		}
		if err != nil {
			return nil, fmt.Errorf("msg %d: copy message %d: %w", id, i, err)
		}
		b, err := p.Get(0, 8+int(n))
		if err != nil {
			return nil, err
		}
		out = append(out, Message{Type: binary.LittleEndian.Uint64(b), Data: b[8:]})
	}
	return out, nil
}

// Creator is what an object is made with: its id (through the
// kernel/*_next_id sysctl), key, mode and creator, and then owner. Ids are
// as the creating process's user namespace sees them; Unmapped marks one
// that has no id there, which is then left as the process's own.
type Creator struct {
	ID         int
	Key        int32
	Mode       uint32
	UID, GID   uint32 // owner
	CUID, CGID uint32 // creator
}

// Unmapped stands for an id the namespace does not map.
const Unmapped = ^uint32(0)

func idArg(id uint32) uint64 {
	if id == Unmapped {
		return keepID
	}
	return uint64(id)
}

// make sets the next id of kind in p's IPC namespace, makes p's effective
// ids the creator's (cuid and cgid are whoever made the object) around fn,
// which creates the object in p, and checks the id it got.
func (c Creator) make(p remote.Proc, kind string, fn func() (uint64, error)) error {
	if err := p.WriteFile("/proc/sys/kernel/"+kind+"_next_id", []byte(strconv.Itoa(c.ID))); err != nil {
		return fmt.Errorf("%s %d: set next id: %w", kind, c.ID, err)
	}
	var id uint64
	err := p.AsEffective(idArg(c.CUID), idArg(c.CGID), func() error {
		var err error
		if id, err = fn(); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %d: as its creator %d:%d: %w", kind, c.ID, c.CUID, c.CGID, err)
	}
	if id != uint64(c.ID) {
		return fmt.Errorf("%s: created id %d, not %d", kind, id, c.ID)
	}
	return nil
}

// setOwner gives the object its owner and mode with IPC_SET (shmctl,
// semctl and msgctl take the perm fields at the same place), and a
// queue's byte limit if qbytes is not 0. An owner the namespace does not
// map becomes p's effective id.
func (c Creator) setOwner(p remote.Proc, nr uintptr, kind string, qbytes uint64) error {
	ds := make([]byte, dsSize)
	for _, f := range []struct {
		id  uint32
		off int
		get uintptr
	}{{c.UID, permOffUID, unix.SYS_GETEUID}, {c.GID, permOffGID, unix.SYS_GETEGID}} {
		id := uint64(f.id)
		if f.id == Unmapped {
			var err error
			if id, err = p.Call(f.get); err != nil {
				return fmt.Errorf("%s %d: process %d: %w", kind, c.ID, p.Pid(), err)
			}
		}
		binary.LittleEndian.PutUint32(ds[f.off:], uint32(id))
	}
	binary.LittleEndian.PutUint16(ds[permOffMod:], uint16(c.Mode&0o777))
	if qbytes != 0 {
		binary.LittleEndian.PutUint64(ds[msqQbytes:], qbytes)
	}
	addr, err := p.Put(0, ds)
	if err != nil {
		return err
	}
	args := []uint64{uint64(c.ID), ipcSet, addr}
	if nr == unix.SYS_SEMCTL {
		args = []uint64{uint64(c.ID), 0, ipcSet, addr}
	}
	if _, err := p.Call(nr, args...); err != nil {
		return fmt.Errorf("%s %d: set owner and mode: %w", kind, c.ID, err)
	}
	return nil
}

// MakeShm recreates a segment with its contents in p's IPC namespace.
func MakeShm(p remote.Proc, c Creator, data []byte) error {
	err := c.make(p, "shm", func() (uint64, error) {
		return p.Call(unix.SYS_SHMGET, uint64(uint32(c.Key)), uint64(len(data)), uint64(ipcCreat|ipcExcl|c.Mode&0o777))
	})
	if err != nil {
		return err
	}
	addr, err := attach(p, c.ID, 0)
	if err != nil {
		return err
	}
	err = ptrace.WriteMem(p.Pid(), addr, data)
	p.Call(unix.SYS_SHMDT, addr)
	if err != nil {
		return fmt.Errorf("shm %d: fill: %w", c.ID, err)
	}
	return c.setOwner(p, unix.SYS_SHMCTL, "shm", 0)
}

// MakeSem recreates a semaphore set with its values in p's IPC namespace.
func MakeSem(p remote.Proc, c Creator, vals []uint16) error {
	err := c.make(p, "sem", func() (uint64, error) {
		return p.Call(unix.SYS_SEMGET, uint64(uint32(c.Key)), uint64(len(vals)), uint64(ipcCreat|ipcExcl|c.Mode&0o777))
	})
	if err != nil {
		return err
	}
	if len(vals) > 0 {
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		addr, err := p.Put(0, b)
		if err != nil {
			return err
		}
		if _, err := p.Call(unix.SYS_SEMCTL, uint64(c.ID), 0, semSetAll, addr); err != nil {
			return fmt.Errorf("sem %d: SETALL: %w", c.ID, err)
		}
	}
	return c.setOwner(p, unix.SYS_SEMCTL, "sem", 0)
}

// MakeMsg recreates a message queue with its messages and byte limit in
// p's IPC namespace.
func MakeMsg(p remote.Proc, c Creator, qbytes uint64, msgs []Message) error {
	err := c.make(p, "msg", func() (uint64, error) {
		return p.Call(unix.SYS_MSGGET, uint64(uint32(c.Key)), uint64(ipcCreat|ipcExcl|c.Mode&0o777))
	})
	if err != nil {
		return err
	}
	if qbytes != 0 {
		// Raise the limit first so that the messages fit.
		if err := c.setOwner(p, unix.SYS_MSGCTL, "msg", qbytes); err != nil {
			return err
		}
	}
	for i, m := range msgs {
		buf := binary.LittleEndian.AppendUint64(nil, m.Type)
		addr, err := p.Put(0, append(buf, m.Data...))
		if err != nil {
			return fmt.Errorf("msg %d: message %d: %w", c.ID, i, err)
		}
		if _, err := p.Call(unix.SYS_MSGSND, uint64(c.ID), addr, uint64(len(m.Data)), ipcNoWait); err != nil {
			return fmt.Errorf("msg %d: queue message %d: %w", c.ID, i, err)
		}
	}
	return c.setOwner(p, unix.SYS_MSGCTL, "msg", qbytes)
}

// ipcStat is IPC_STAT.
const ipcStat = 2

// MsgQbytes returns a queue's byte limit (msg_qbytes), which
// /proc/sysvipc/msg does not show.
func MsgQbytes(p remote.Proc, id int) (uint64, error) {
	if _, err := p.Call(unix.SYS_MSGCTL, uint64(id), ipcStat, p.Scratch); err != nil {
		return 0, fmt.Errorf("msg %d: IPC_STAT: %w", id, err)
	}
	b, err := p.Get(msqQbytes, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}
