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
