package fdkind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pipe"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Pipe is an anonymous pipe: each end is a file of its own, both made
// together at restore by one pipe2 (a Planner), and its queued bytes are in
// pipes-data.img. Which process reads the queue at dump, once the whole
// tree is seen, is the tree's business (dump/pipes.go).
type Pipe struct{}

// Type is PIPE.
func (Pipe) Type() fdinfo.FdTypes { return fdinfo.FdTypes_PIPE }

// Check refuses an entry without its payload.
func (Pipe) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetPipe() != nil) }

// Keys are CRIU's name of the pipe, pipe:[INO].
func (Pipe) Keys(f *fdinfo.FileEntry, _ func(uint32) *fdinfo.FileEntry) []string {
	return []string{fmt.Sprintf("pipe:[%d]", f.GetPipe().GetPipeId())}
}

// PipeInode is the pipe's inode in its /proc/PID/fd link "pipe:[INO]".
func PipeInode(target string) (uint64, bool) {
	ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "pipe:["), "]"), 10, 64)
	return ino, err == nil
}

// DumpPipe describes an end of pipe ino opened with flags (fdinfo's) as
// file entry id.
func DumpPipe(ino uint64, flags uint32, id uint32) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_PIPE.Enum(), Pipe: &pipe.PipeEntry{
		Id:     proto.Uint32(id),
		PipeId: proto.Uint32(uint32(ino)),
		Flags:  proto.Uint32(flags &^ unix.O_CLOEXEC),
		Fown:   noOwner(),
	}}
}

// Plan groups the ends of each pipe: a pipe is made once, with at most
// one read and one write open file (a pipe reopened through /proc is
// refused).
func (Pipe) Plan(files []*fdinfo.FileEntry) ([]Group, error) {
	var groups []Group
	at := map[uint32]int{}
	for _, f := range files {
		pid := f.GetPipe().GetPipeId()
		i, ok := at[pid]
		if !ok {
			i = len(groups)
			at[pid] = i
			groups = append(groups, Group{Key: pid})
		}
		groups[i].IDs = append(groups[i].IDs, f.GetId())
	}
	for _, g := range groups {
		var readers, writers int
		for _, f := range files {
			if f.GetPipe().GetPipeId() != g.Key {
				continue
			}
			if f.GetPipe().GetFlags()&unix.O_ACCMODE == unix.O_RDONLY {
				readers++
			} else {
				writers++
			}
		}
		if readers > 1 || writers > 1 {
			return nil, fmt.Errorf("pipe %d: %d read and %d write open files: reopened pipes are not supported yet", g.Key, readers, writers)
		}
	}
	return groups, nil
}

// CreateGroup makes the pipe, puts each end at its place with its flags
// and queues the saved bytes again.
func (Pipe) CreateGroup(m GroupMaker, g Group, files []*fdinfo.FileEntry) error {
	where := fmt.Sprintf("%s: pipe %d", m.Process(), g.Key)
	addr, err := m.Put(make([]byte, 8))
	if err != nil {
		return err
	}
	if _, err := m.Syscall(unix.SYS_PIPE2, addr, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	b := make([]byte, 8)
	if err := m.Read(addr, b); err != nil {
		return err
	}
	ends := [2]uint64{uint64(uint32(binary.LittleEndian.Uint64(b))), uint64(uint32(binary.LittleEndian.Uint64(b) >> 32))}
	// pipe2 takes the lowest free numbers, which may be places still to
	// be filled: move both ends out of their way first.
	for i, end := range ends {
		high, err := m.Syscall(unix.SYS_FCNTL, end, unix.F_DUPFD_CLOEXEC, m.Spare())
		m.Syscall(unix.SYS_CLOSE, end)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		ends[i] = high
	}
	for i, id := range g.IDs {
		pe := files[i].GetPipe()
		end := ends[1]
		if pe.GetFlags()&unix.O_ACCMODE == unix.O_RDONLY {
			end = ends[0]
		}
		at, err := m.Place(id, end)
		if err != nil {
			return fmt.Errorf("%s: dup3: %w", where, err)
		}
		if _, err := m.Syscall(unix.SYS_FCNTL, at, unix.F_SETFL, uint64(pe.GetFlags()&^unix.O_ACCMODE)); err != nil {
			return fmt.Errorf("%s: flags: %w", where, err)
		}
	}
	pd, data := m.Queue(g.Key)
	err = fillQueue(m, ends[1], pd, data)
	m.Syscall(unix.SYS_CLOSE, ends[0])
	m.Syscall(unix.SYS_CLOSE, ends[1])
	return err
}

// queueMaker is what filling a pipe's queue needs of the restored process:
// both a GroupMaker (pipes) and an Opener (FIFOs) offer it.
type queueMaker interface {
	Process() string
	Syscall(nr uintptr, args ...uint64) (uint64, error)
	FdPath(fd uint64) string
}

// fillQueue gives a new pipe or FIFO its capacity and queues its saved
// bytes, written by cryo through a write end of its own (FdPath of the
// given end). A nil entry: nothing was saved.
func fillQueue(m queueMaker, end uint64, pd *pipedata.PipeDataEntry, data []byte) error {
	if pd == nil {
		return nil
	}
	if size := pd.GetSize(); size != 0 {
		if _, err := m.Syscall(unix.SYS_FCNTL, end, unix.F_SETPIPE_SZ, uint64(size)); err != nil {
			return fmt.Errorf("%s: pipe %d: capacity %d: %w", m.Process(), pd.GetPipeId(), size, err)
		}
	}
	if len(data) == 0 {
		return nil
	}
	w, err := unix.Open(m.FdPath(end), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: pipe %d: open a write end: %w", m.Process(), pd.GetPipeId(), err)
	}
	defer unix.Close(w)
	for len(data) > 0 {
		n, err := unix.Write(w, data)
		if err != nil {
			return fmt.Errorf("%s: pipe %d: queue %d bytes: %w", m.Process(), pd.GetPipeId(), len(data), err)
		}
		data = data[n:]
	}
	return nil
}

// PeekQueue copies the bytes queued in the pipe or FIFO at pid's fd
// without taking them, and reads its capacity: it opens a read end of its
// own through /proc/PID/fd/N and tee(2)s the queue into a pipe of cryo's,
// which it then reads.
func PeekQueue(pid, fd int) (data []byte, size int, err error) {
	srcFile, err := proc.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, 0, fmt.Errorf("open a read end: %w", err)
	}
	defer srcFile.Close()
	src := int(srcFile.Fd())
	size, err = unix.FcntlInt(uintptr(src), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("pipe size: %w", err)
	}
	queued, err := unix.IoctlGetInt(src, unix.TIOCINQ) // FIONREAD
	if err != nil {
		return nil, 0, fmt.Errorf("queued bytes: %w", err)
	}
	if queued == 0 {
		return nil, size, nil
	}
	var ends [2]int
	if err := unix.Pipe2(ends[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, 0, err
	}
	defer unix.Close(ends[0])
	defer unix.Close(ends[1])
	if _, err := unix.FcntlInt(uintptr(ends[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return nil, 0, fmt.Errorf("size a copy pipe: %w", err)
	}
	n, err := unix.Tee(src, ends[1], queued, unix.SPLICE_F_NONBLOCK)
	if err != nil {
		return nil, 0, fmt.Errorf("tee: %w", err)
	}
	if int(n) != queued {
		return nil, 0, fmt.Errorf("tee copied %d of %d queued bytes", n, queued)
	}
	data = make([]byte, queued)
	for got := 0; got < queued; {
		m, err := unix.Read(ends[0], data[got:])
		if err != nil {
			return nil, 0, fmt.Errorf("read the copy: %w", err)
		}
		if m == 0 {
			return nil, 0, errors.New("copy pipe ended early")
		}
		got += m
	}
	return data, size, nil
}
