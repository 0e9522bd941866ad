package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
)

// makeKind creates a file of a simple kind (internal/fdkind) in p, the
// common ancestor of its holders, at its temporary descriptor.
func (fp *filePlan) makeKind(p *process, id uint32, k fdkind.Simple) error {
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
