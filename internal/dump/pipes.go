package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// pipeData is what a pipe holds: its queued bytes and its capacity.
type pipeData struct {
	ino  uint64
	data []byte
	size int
	// reader is a process and descriptor of the tree holding a read end
	// (nil: only write ends are the tree's). The queue is read through it
	// once every process is collected: bytes queued for a reader outside
	// the tree are that reader's, not the tree's, and are not read (nor
	// could they be, by a user other than the pipe's maker).
	reader *process
	readFd int
	// holder, holderFd: the first end seen, named in the log.
	holder   *process
	holderFd int
	// what names the pipe in errors and logs; key is how --inherit-fd
	// names it (pipe:[INO], or a FIFO's path).
	what, key string
}

// dumpPipe describes one pipe end held at fd. The queued bytes are read
// once per pipe, without consuming them.
func (p *process) dumpPipe(ft *fileTable, fd int, target string, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	ino, ok := fdkind.PipeInode(target)
	if !ok {
		return nil, fmt.Errorf("%s: bad pipe link %q", p.fdName(fd), target)
	}
	if _, ok := ft.pipes[ino]; !ok {
		ft.pipes[ino] = &pipeData{ino: ino, what: target, key: target}
		ft.pipeIDs = append(ft.pipeIDs, ino)
	}
	ft.pipes[ino].seenEnd(p, fd, info)
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_PIPE.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	id := ft.add(fdkind.DumpPipe(ino, info.Flags, ft.nextID()))
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// dumpFifo describes a FIFO (named pipe) held at fd: a regular-file entry
// for its path and flags, a FIFO entry pointing at it, and its queued
// bytes, read once per FIFO without consuming them.
func (p *process) dumpFifo(ft *fileTable, fd int, target string, info *proc.FdInfo, st *unix.Stat_t) (*fdinfo.FdinfoEntry, error) {
	if _, ok := ft.fifos[st.Ino]; !ok {
		ft.fifos[st.Ino] = &pipeData{ino: st.Ino, what: "FIFO " + target, key: target}
		ft.fifoIDs = append(ft.fifoIDs, st.Ino)
	}
	ft.fifos[st.Ino].seenEnd(p, fd, info)
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_FIFO.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	id := fdkind.DumpFifo(target, info.Flags, st.Mode, st.Ino, ft.add)
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// writePipeData writes pipes-data.img and fifo-data.img: one entry per
// pipe with its capacity, followed by its queued bytes.
func (ft *fileTable) writePipeData(dir *image.Dir) error {
	if err := ft.writeQueues(dir, image.PipesDataName, "PIPES_DATA", ft.pipeIDs, ft.pipes); err != nil {
		return err
	}
	return ft.writeQueues(dir, image.FifoDataName, "FIFO_DATA", ft.fifoIDs, ft.fifos)
}

func (ft *fileTable) writeQueues(dir *image.Dir, name, magic string, ids []uint64, pipes map[uint64]*pipeData) error {
	var entries []proto.Message
	var payloads [][]byte
	for _, ino := range ids {
		pd := pipes[ino]
		if err := pd.peek(); err != nil {
			return err
		}
		entries = append(entries, &pipedata.PipeDataEntry{
			PipeId: proto.Uint32(uint32(ino)),
			Bytes:  proto.Uint32(uint32(len(pd.data))),
			Size:   proto.Uint32(uint32(pd.size)),
		})
		payloads = append(payloads, pd.data)
	}
	if len(entries) == 0 {
		return nil
	}
	return dir.WritePayloads(name, magic, entries, payloads)
}

// seenEnd notes one end of the pipe held at fd of p: the first read end
// found is the one its queue is read through.
func (pd *pipeData) seenEnd(p *process, fd int, info *proc.FdInfo) {
	if pd.holder == nil {
		pd.holder, pd.holderFd = p, fd
	}
	if pd.reader == nil && info.Flags&unix.O_ACCMODE != unix.O_WRONLY {
		pd.reader, pd.readFd = p, fd
	}
}

// peek reads the pipe's queue and capacity through a read end of the
// tree. A pipe only written by the tree keeps its bytes where they are:
// they belong to the reader outside (a logger reading a service's
// stdout), which may be reading them right now.
func (pd *pipeData) peek() error {
	if pd.reader == nil {
		pd.data, pd.size = nil, 0
		if pd.holder != nil {
			pd.holder.logf("%s: %s: no process of the tree reads it: the bytes queued in it are its reader's outside the tree, not saved; restore with --inherit-fd fd[N]:%s to give the tree the pipe of cryo's fd N", pd.holder.fdName(pd.holderFd), pd.what, pd.key)
		}
		return nil
	}
	data, size, err := fdkind.PeekQueue(pd.reader.pid, pd.readFd)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", pd.reader.fdName(pd.readFd), pd.what, err)
	}
	pd.data, pd.size = data, size
	return nil
}
