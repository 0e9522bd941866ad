package restore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A chrooted process may hold files that lie outside its root: it opened
// them, or mapped them, or was executed from there, before it called
// chroot. Its descriptors and mappings are opened by cryo's path before
// restoreCwdRoot moves it into its root, so they are found. Its
// executable is set later (restoreMM, after the root): one that lies
// outside the root is opened before the process enters it
// (holdExeOutsideRoot), as its owner and following no symlink like every
// other path, and handed to restoreMM. A process whose root was removed
// always has its executable outside (a removed directory is empty).

// earlyExe is an executable opened before the process entered its root.
type earlyExe struct {
	// fd is the descriptor in the process; open tells it is held.
	fd   uint64
	open bool
}

// exeName is p's executable as the dump recorded it (cryo's view).
func (p *process) exeName() string {
	return p.r.snap.reg(p.c.mm.GetExeFileId()).GetName()
}

// exeOutsideRoot tells whether p's executable lies outside its root: not
// reachable once p is in it.
func (p *process) exeOutsideRoot() bool {
	root := p.r.snap.reg(p.c.fs.GetRootId()).GetName()
	if root == "/" || p.c.mm == nil {
		return false
	}
	exe := p.exeName()
	return p.inRoot(exe) == exe
}

// holdExeOutsideRoot opens p's executable now, while p still resolves
// paths as cryo does, if it lies outside p's root; restoreMM takes it.
func (p *process) holdExeOutsideRoot() error {
	if !p.exeOutsideRoot() || p.exe.open {
		return nil
	}
	fd, err := p.openChecked(p, p.exeName(), unix.O_RDONLY, wantFile{f: p.r.snap.reg(p.c.mm.GetExeFileId()), size: true})
	if err != nil {
		return fmt.Errorf("restore pid %d: executable %s (outside its root): %w", p.c.pid, p.exeName(), err)
	}
	p.exe = earlyExe{fd: fd, open: true}
	return nil
}

// openExe returns the descriptor of p's executable for restoreMM: the
// one held since before p entered its root, or else opened now, from
// inside p's root.
func (p *process) openExe() (uint64, error) {
	if p.exe.open {
		fd := p.exe.fd
		p.exe = earlyExe{}
		return fd, nil
	}
	fd, err := p.openChecked(p, p.inRoot(p.exeName()), unix.O_RDONLY, wantFile{f: p.r.snap.reg(p.c.mm.GetExeFileId()), size: true})
	if err != nil {
		return 0, fmt.Errorf("restore pid %d: executable: %w", p.c.pid, err)
	}
	return fd, nil
}
