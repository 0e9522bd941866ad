package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"

	ipcmsg "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-msg"
	ipcsem "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-sem"
	ipcshm "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-shm"
	"google.golang.org/protobuf/proto"
)

// System V IPC objects of an IPC namespace, in CRIU's images
// ipcns-shm-N.img, ipcns-sem-N.img and ipcns-msg-N.img, laid out as CRIU
// writes them (CRIU's crit reads them): each entry is followed by raw data
// padded to 4 bytes (segment contents) or 8 bytes (semaphore values, and
// each message, which is itself a length-prefixed ipc_msg entry).

// ShmSegment is a shared memory segment and its contents.
type ShmSegment struct {
	Entry *ipcshm.IpcShmEntry
	Data  []byte
}

// SemSet is a semaphore set and its values.
type SemSet struct {
	Entry  *ipcsem.IpcSemEntry
	Values []uint16
}

// MsgQueue is a message queue and its messages, oldest first.
type MsgQueue struct {
	Entry *ipcmsg.IpcMsgEntry
	Msgs  []Msg
}

// Msg is one queued message.
type Msg struct {
	Type uint64
	Data []byte
}

// SysV holds the objects of one IPC namespace.
type SysV struct {
	Shm []ShmSegment
	Sem []SemSet
	Msg []MsgQueue
}

func shmName(id uint32) string { return fmt.Sprintf("ipcns-shm-%d.img", id) }
func semName(id uint32) string { return fmt.Sprintf("ipcns-sem-%d.img", id) }
func msgName(id uint32) string { return fmt.Sprintf("ipcns-msg-%d.img", id) }

func pad(n, to int) int { return (n + to - 1) / to * to }

// WriteSysV writes the non-empty object kinds of IPC namespace id.
func (d *Dir) WriteSysV(id uint32, s *SysV) error {
	type file struct {
		name, magic string
		body        func(path string, b []byte) ([]byte, error)
	}
	files := []file{
		{shmName(id), "IPCNS_SHM", func(path string, b []byte) ([]byte, error) {
			for i, seg := range s.Shm {
				if uint64(len(seg.Data)) != seg.Entry.GetSize() {
					return nil, formatErr(path, i, "segment of %d bytes with %d bytes of data", seg.Entry.GetSize(), len(seg.Data))
				}
				var err error
				if b, err = appendEntry(b, path, i, seg.Entry); err != nil {
					return nil, err
				}
				b = append(b, seg.Data...)
				b = append(b, make([]byte, pad(len(seg.Data), 4)-len(seg.Data))...)
			}
			return b, nil
		}},
		{semName(id), "IPCNS_SEM", func(path string, b []byte) ([]byte, error) {
			for i, set := range s.Sem {
				if uint32(len(set.Values)) != set.Entry.GetNsems() {
					return nil, formatErr(path, i, "%d semaphores with %d values", set.Entry.GetNsems(), len(set.Values))
				}
				var err error
				if b, err = appendEntry(b, path, i, set.Entry); err != nil {
					return nil, err
				}
				for _, v := range set.Values {
					b = binary.LittleEndian.AppendUint16(b, v)
				}
				b = append(b, make([]byte, pad(2*len(set.Values), 8)-2*len(set.Values))...)
			}
			return b, nil
		}},
		{msgName(id), "IPCNS_MSG", func(path string, b []byte) ([]byte, error) {
			for i, q := range s.Msg {
				if uint32(len(q.Msgs)) != q.Entry.GetQnum() {
					return nil, formatErr(path, i, "queue of %d messages with %d saved", q.Entry.GetQnum(), len(q.Msgs))
				}
				var err error
				if b, err = appendEntry(b, path, i, q.Entry); err != nil {
					return nil, err
				}
				for _, m := range q.Msgs {
					if b, err = appendEntry(b, path, i, &ipcmsg.IpcMsg{Mtype: proto.Uint64(m.Type), Msize: proto.Uint32(uint32(len(m.Data)))}); err != nil {
						return nil, err
					}
					b = append(b, m.Data...)
					b = append(b, make([]byte, pad(len(m.Data), 8)-len(m.Data))...)
				}
			}
			return b, nil
		}},
	}
	counts := []int{len(s.Shm), len(s.Sem), len(s.Msg)}
	for i, f := range files {
		if counts[i] == 0 {
			continue
		}
		path, err := d.file(f.name)
		if err != nil {
			return err
		}
		b, err := f.body(path, header(f.magic))
		if err != nil {
			return err
		}
		if err := d.writeFile(f.name, path, b); err != nil {
			return err
		}
	}
	return nil
}

// ReadSysV reads the objects of IPC namespace id; missing files are empty.
func (d *Dir) ReadSysV(id uint32) (*SysV, error) {
	s := &SysV{}
	read := func(name, magic string, each func(rd *reader, i int, b []byte) error) error {
		rd, f, err := d.open(name, magic)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		for i := 0; ; i++ {
			b, err := rd.next(i)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if i >= MaxEntries {
				return formatErr(rd.path, i, "too many entries")
			}
			if err := each(rd, i, b); err != nil {
				return err
			}
		}
	}
	err := read(shmName(id), "IPCNS_SHM", func(rd *reader, i int, b []byte) error {
		e := &ipcshm.IpcShmEntry{}
		if err := proto.Unmarshal(b, e); err != nil {
			return formatErr(rd.path, i, "%v", err)
		}
		if e.GetSize() > MaxPayloadBytes {
			return formatErr(rd.path, i, "segment of %d bytes", e.GetSize())
		}
		data, err := rd.raw(i, pad(int(e.GetSize()), 4))
		if err != nil {
			return err
		}
		s.Shm = append(s.Shm, ShmSegment{Entry: e, Data: data[:e.GetSize()]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = read(semName(id), "IPCNS_SEM", func(rd *reader, i int, b []byte) error {
		e := &ipcsem.IpcSemEntry{}
		if err := proto.Unmarshal(b, e); err != nil {
			return formatErr(rd.path, i, "%v", err)
		}
		if e.GetNsems() > 1<<16 {
			return formatErr(rd.path, i, "%d semaphores", e.GetNsems())
		}
		raw, err := rd.raw(i, pad(2*int(e.GetNsems()), 8))
		if err != nil {
			return err
		}
		vals := make([]uint16, e.GetNsems())
		for k := range vals {
			vals[k] = binary.LittleEndian.Uint16(raw[2*k:])
		}
		s.Sem = append(s.Sem, SemSet{Entry: e, Values: vals})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = read(msgName(id), "IPCNS_MSG", func(rd *reader, i int, b []byte) error {
		e := &ipcmsg.IpcMsgEntry{}
		if err := proto.Unmarshal(b, e); err != nil {
			return formatErr(rd.path, i, "%v", err)
		}
		if e.GetQnum() > 1<<16 {
			return formatErr(rd.path, i, "%d messages", e.GetQnum())
		}
		q := MsgQueue{Entry: e}
		for k := uint32(0); k < e.GetQnum(); k++ {
			mb, err := rd.next(i)
			if err != nil {
				return err
			}
			m := &ipcmsg.IpcMsg{}
			if err := proto.Unmarshal(mb, m); err != nil {
				return formatErr(rd.path, i, "message %d: %v", k, err)
			}
			if m.GetMsize() > 1<<20 {
				return formatErr(rd.path, i, "message %d of %d bytes", k, m.GetMsize())
			}
			data, err := rd.raw(i, pad(int(m.GetMsize()), 8))
			if err != nil {
				return err
			}
			q.Msgs = append(q.Msgs, Msg{Type: m.GetMtype(), Data: data[:m.GetMsize()]})
		}
		s.Msg = append(s.Msg, q)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// raw reads n bytes of raw data that follow entry i.
func (rd *reader) raw(i, n int) ([]byte, error) {
	if rd.remain >= 0 && int64(n) > rd.remain {
		return nil, formatErr(rd.path, i, "truncated data: %d bytes needed, only %d left in file", n, rd.remain)
	}
	b := make([]byte, n)
	got, err := io.ReadFull(rd.r, b)
	if rd.remain >= 0 {
		rd.remain -= int64(got)
	}
	if err != nil {
		return nil, formatErr(rd.path, i, "truncated data: %d of %d bytes", got, n)
	}
	return b, nil
}
