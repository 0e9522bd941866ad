package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/proc"
	"google.golang.org/protobuf/proto"
)

// dumpKind describes a descriptor of a simple kind (internal/fdkind): one
// file entry per open file description, shared by the descriptors that
// share it (dup, fork), found by kcmp among those with the same target.
func (p *process) dumpKind(ft *fileTable, fd int, target string, k fdkind.Simple, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: k.Type().Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	fe, err := k.Dump(dumped{p: p, fd: fd, target: target, info: info}, ft.nextID())
	if err != nil {
		return nil, err
	}
	id := ft.add(fe)
	ft.origins = append(ft.origins, fileOrigin{p: p, fd: fd, entry: fe})
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// fileOrigin is a file entry of a simple kind and the descriptor it was
// read from (whose numbers an epoll's watches are).
type fileOrigin struct {
	p     *process
	fd    int
	entry *fdinfo.FileEntry
}

// nextID is the id ft.add gives the next entry.
func (ft *fileTable) nextID() uint32 { return uint32(len(ft.entries) + 1) }

// dumped is one descriptor of a seized process, as fdkind sees it.
type dumped struct {
	p      *process
	fd     int
	target string
	info   *proc.FdInfo
}

// Pid is the process holding the descriptor.
func (d dumped) Pid() int { return d.p.pid }

// Where names the descriptor and what it is.
func (d dumped) Where() string { return fmt.Sprintf("%s (%s)", d.p.fdName(d.fd), d.target) }

// Info is the descriptor's fdinfo.
func (d dumped) Info() *proc.FdInfo { return d.info }

// injector is a seized process, as a fdkind.Preparer sees it.
type injector struct{ p *process }

// Syscall injects a call into the process's leader.
func (in injector) Syscall(nr uintptr, args ...uint64) (uint64, error) {
	return in.p.leader().Syscall(nr, args...)
}

// Scratch is the process's scratch stack, which calls may write into.
func (in injector) Scratch() uint64 { return in.p.scratch.addr + scratchStack }
