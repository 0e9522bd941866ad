package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"golang.org/x/sys/unix"
)

// makeKind creates a file of a simple or socket kind (internal/fdkind)
// in p, the common ancestor of its holders, at its temporary descriptor.
func (fp *filePlan) makeKind(p *process, id uint32, k interface {
	Create(m fdkind.Maker, f *fdinfo.FileEntry) (uint64, error)
}) error {
	f := fp.snap.files[id]
	fd, err := k.Create(maker{p: p, owner: fp.ownerOf(p, id), f: f}, f)
	if err != nil {
		return err
	}
	return fp.moveTo(p, fd, fp.temp[id])
}

// maker is a restored process, as fdkind sees it while it creates file f
// there for owner.
type maker struct {
	p, owner *process
	f        *fdinfo.FileEntry
}

// Where names the file in errors.
func (m maker) Where() string {
	return fmt.Sprintf("restore pid %d %v %d", m.p.c.pid, m.f.GetType(), m.f.GetId())
}

// Syscall injects a call into the process's leader.
func (m maker) Syscall(nr uintptr, args ...uint64) (uint64, error) {
	return m.p.leader.Syscall(nr, args...)
}

// Put copies b into the process's scratch area.
func (m maker) Put(b []byte) (uint64, error) { return m.p.put(b) }

// PutString copies a NUL-terminated s into the scratch area.
func (m maker) PutString(s string) (uint64, error) { return m.p.putString(s) }

// AsOwner runs fn with the file-system identity of the file's owner.
func (m maker) AsOwner(fn func() error) error { return m.p.asOwner(m.owner, fn) }

// The interface restore offers the kinds.
var _ fdkind.Maker = maker{}

// planGroups asks each kind made in groups (fdkind.Planner) for its
// groups, among the files of that kind the tree holds (grouped, in the
// order of their ids), and gives each group to the common ancestor of all
// its files' holders.
func (fp *filePlan) planGroups(planners []fdkind.Planner, grouped map[fdinfo.FdTypes][]*fdinfo.FileEntry, holders map[uint32][]*process) error {
	for _, k := range planners {
		files := grouped[k.Type()]
		groups, err := k.Plan(files)
		if err != nil {
			return err
		}
		for _, g := range groups {
			var all []*process
			for _, id := range g.IDs {
				all = append(all, holders[id]...)
			}
			lca := commonAncestor(all)
			fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: g.IDs, group: k, key: g.Key})
		}
	}
	return nil
}

// makeGroup has the group's kind make its files in p, the common ancestor
// of their holders, at their temporary descriptors.
func (fp *filePlan) makeGroup(p *process, j fileJob) error {
	files := make([]*fdinfo.FileEntry, len(j.ids))
	for i, id := range j.ids {
		files[i] = fp.snap.files[id]
	}
	return j.group.CreateGroup(fp.groupMaker(p), fdkind.Group{Key: j.key, IDs: j.ids}, files)
}

// groupMaker is a restored process, as a kind made in groups sees it.
type groupMaker struct {
	fp *filePlan
	p  *process
}

// groupMaker offers p to a kind made in groups.
func (fp *filePlan) groupMaker(p *process) groupMaker { return groupMaker{fp: fp, p: p} }

// Process names the process by its saved pid.
func (m groupMaker) Process() string { return fmt.Sprintf("restore pid %d", m.p.c.pid) }

// Syscall injects a call into the process's leader.
func (m groupMaker) Syscall(nr uintptr, args ...uint64) (uint64, error) {
	return m.p.leader.Syscall(nr, args...)
}

// Put copies b into the process's scratch area.
func (m groupMaker) Put(b []byte) (uint64, error) { return m.p.put(b) }

// Read copies memory of the process into b.
func (m groupMaker) Read(addr uint64, b []byte) error { return readMem(m.p, addr, b) }

// Spare is the first number above the temporaries.
func (m groupMaker) Spare() uint64 { return m.fp.base + uint64(m.fp.tempCount()) }

// Place duplicates fd to file id's temporary descriptor.
func (m groupMaker) Place(id uint32, fd uint64) (uint64, error) {
	temp := m.fp.temp[id]
	_, err := m.p.leader.Syscall(unix.SYS_DUP3, fd, temp, unix.O_CLOEXEC)
	return temp, err
}

// Queue is pipe pipeID's saved queue.
func (m groupMaker) Queue(pipeID uint32) (*pipedata.PipeDataEntry, []byte) {
	return m.fp.snap.pipes[pipeID], m.fp.snap.pipeBytes[pipeID]
}

// FdPath is the process's descriptor in cryo's /proc.
func (m groupMaker) FdPath(fd uint64) string { return fmt.Sprintf("/proc/%d/fd/%d", m.p.pid, fd) }

// The interface restore offers the kinds made in groups.
var _ fdkind.GroupMaker = groupMaker{}

// openKind has an Opened kind (internal/fdkind) open file id in p, the
// common ancestor of its holders, at its temporary descriptor.
func (fp *filePlan) openKind(p *process, id uint32, k fdkind.Opened) error {
	return k.Open(opener{fp: fp, p: p, id: id}, fp.snap.files[id])
}

// opener is a restored process, as an Opened kind sees it while it opens
// file id there.
type opener struct {
	fp *filePlan
	p  *process
	id uint32
}

// Process names the process by its saved pid.
func (m opener) Process() string { return fmt.Sprintf("restore pid %d", m.p.c.pid) }

// Syscall injects a call into the process's leader.
func (m opener) Syscall(nr uintptr, args ...uint64) (uint64, error) {
	return m.p.leader.Syscall(nr, args...)
}

// File is an entry of files.img.
func (m opener) File(id uint32) *fdinfo.FileEntry { return m.fp.snap.files[id] }

// OpenChecked opens path as the file's owner (owner.go's checked open).
func (m opener) OpenChecked(path string, flags uint64, want fdkind.Want) (uint64, error) {
	return m.p.openChecked(m.fp.ownerOf(m.p, m.id), path, flags, wantFile{f: want.Reg, dev: want.Dev, ino: want.Ino, size: want.Size})
}

// Place duplicates fd to the file's temporary descriptor.
func (m opener) Place(fd uint64) (uint64, error) {
	temp := m.fp.temp[m.id]
	if fd == temp {
		return temp, nil
	}
	if _, err := m.p.leader.Syscall(unix.SYS_DUP3, fd, temp, unix.O_CLOEXEC); err != nil {
		return temp, fmt.Errorf("dup3 %d to %d: %w", fd, temp, err)
	}
	return temp, nil
}

// FifoQueue is FIFO pipeID's saved queue, given once.
func (m opener) FifoQueue(pipeID uint32) (*pipedata.PipeDataEntry, []byte) {
	if m.fp.fifosFilled == nil {
		m.fp.fifosFilled = map[uint32]bool{}
	}
	if m.fp.fifosFilled[pipeID] {
		return nil, nil
	}
	m.fp.fifosFilled[pipeID] = true
	return m.fp.snap.fifos[pipeID], m.fp.snap.fifoBytes[pipeID]
}

// FdPath is the process's descriptor in cryo's /proc.
func (m opener) FdPath(fd uint64) string { return fmt.Sprintf("/proc/%d/fd/%d", m.p.pid, fd) }

// Shared is the temporary descriptor of shared memory object shmid.
func (m opener) Shared(shmid uint64) (uint64, bool) {
	fd, ok := m.fp.shmTemp[shmid]
	return fd, ok
}

// Ghost makes the file's ghost, if it was deleted (ghosts.go).
func (m opener) Ghost() (string, fdkind.Want, bool, error) {
	if m.fp.snap.ghosts[m.id] == nil {
		return "", fdkind.Want{}, false, nil
	}
	gp, err := m.fp.ghostPath(m.p, m.fp.ownerOf(m.p, m.id), m.id)
	if err != nil {
		return "", fdkind.Want{}, false, err
	}
	w := gp.want(m.fp, m.id)
	return gp.path, fdkind.Want{Reg: w.f, Dev: w.dev, Ino: w.ino, Size: w.size}, true, nil
}

// ShellJob is -j.
func (m opener) ShellJob() bool { return m.p.r.opts.ShellJob }

// The interface restore offers the kinds opened one by one.
var _ fdkind.Opener = opener{}

// calls offers p's injected calls, scratch area and memory (to set a
// socket's options, fdkind.SockCaller).
func (p *process) calls() groupMaker { return groupMaker{fp: p.r.files, p: p} }

// makeSocket has a socket kind (internal/fdkind) make socket id in p at
// its temporary descriptor.
func (fp *filePlan) makeSocket(p *process, id uint32, k fdkind.Socket) error {
	return k.Make(socketMaker{opener{fp: fp, p: p, id: id}}, fp.snap.files[id])
}

// socketMaker is a restored process, as a socket kind sees it while it
// makes socket id there.
type socketMaker struct{ opener }

// Put copies b into the process's scratch area.
func (m socketMaker) Put(b []byte) (uint64, error) { return m.p.put(b) }

// Read copies memory of the process into b.
func (m socketMaker) Read(addr uint64, b []byte) error { return readMem(m.p, addr, b) }

// AsIDs runs fn with the process's effective ids made uid and gid, as the
// process's user namespace maps them.
func (m socketMaker) AsIDs(uid, gid uint32, fn func() error) (bool, error) {
	in, gin, err := m.p.idsInside(uid, gid)
	if err != nil {
		return false, err
	}
	return true, m.p.remote().AsEffective(uint64(in), uint64(gin), fn)
}

// RebuildTCP rebuilds a saved connection (tcp.go).
func (m socketMaker) RebuildTCP(fd uint64, ino uint32, local, remote unix.Sockaddr) error {
	return m.fp.rebuildTCP(m.p, fd, ino, local, remote)
}

// CloseTCP is --tcp-close (tcpclose.go).
func (m socketMaker) CloseTCP(where string, port uint32) bool { return m.fp.closeTCP(m.p, where, port) }

// Logf logs a line of the restore.
func (m socketMaker) Logf(format string, args ...any) { m.p.r.logf(format, args...) }

// The interface restore offers the socket kinds.
var _ fdkind.SocketMaker = socketMaker{}
