package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// ghostPath is where a ghost (a file deleted while open, put back for the
// restore) was made, the inode made, and how to remove it again.
type ghostPath struct {
	path     string
	dev, ino uint64 // ino 0: not known (rootless)
	remove   func() error
}

// want is what a descriptor of the ghost must be once opened: the file
// entry of the images, and the inode cryo made.
func (gp ghostPath) want(fp *filePlan, id uint32) wantFile {
	return wantFile{f: fp.snap.reg(id), dev: gp.dev, ino: gp.ino, size: true}
}

// safeGhostName tells whether a deleted file's saved name can be made
// again: an absolute path of plain names, no "." or ".." and no empty
// component, so that its directory and last name are what they seem.
func safeGhostName(name string) bool {
	return strings.HasPrefix(name, "/") && name != "/" && path.Clean(name) == name && !strings.ContainsRune(name, 0)
}

// ghostPath makes file id's ghost, once for every descriptor and mapping
// of its inode, under the old name (or beside it, if something took the
// name since); removeGhosts unlinks it again once the tree holds it. p is
// the process about to open it, owner the restored process it is opened
// for.
func (fp *filePlan) ghostPath(p, owner *process, id uint32) (ghostPath, error) {
	g := fp.snap.ghosts[id]
	if gp, ok := fp.ghostPaths[g.remapID]; ok {
		return gp, nil
	}
	var gp ghostPath
	var err error
	if g.isDir() {
		gp, err = fp.makeGhostDir(p, owner, g)
	} else if agents := p.r.agents; agents != nil {
		gp, err = fp.makeGhostRootless(p, g)
	} else {
		gp, err = fp.makeGhostAsOwner(p, owner, g)
	}
	if err != nil {
		return ghostPath{}, fmt.Errorf("recreate the deleted %s %s: %w", ghostKind(g), fp.snap.reg(g.remapID).GetName(), err)
	}
	if fp.ghostPaths == nil {
		fp.ghostPaths = map[uint32]ghostPath{}
	}
	fp.ghostPaths[g.remapID] = gp
	return gp, nil
}

// makeGhostRootless makes a ghost from inside p's user namespace: only
// there may cryo's user write in a directory of its subordinate ids, give
// the file such an owner, and unlink it again from a sticky one (/tmp)
// once it has that owner. The agent holds the contents in memory, within
// the images' total budget.
func (fp *filePlan) makeGhostRootless(p *process, g *ghost) (ghostPath, error) {
	a, err := p.r.agents.For(p.pid)
	if err != nil {
		return ghostPath{}, err
	}
	uid, gid, err := p.idsInside(g.entry.GetUid(), g.entry.GetGid())
	if err != nil {
		return ghostPath{}, fmt.Errorf("owner: %w", err)
	}
	_, data, err := fp.dir.ReadGhost(g.remapID)
	if err != nil {
		return ghostPath{}, err
	}
	name := fp.snap.reg(g.remapID).GetName()
	for _, try := range []string{name, fmt.Sprintf("%s.cryo-ghost-%d", name, g.remapID)} {
		err = a.CreateFile(try, data, g.entry.GetMode()&0o7777, uid, gid)
		if err == nil {
			return ghostPath{path: try, remove: func() error { return a.Remove(try) }}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return ghostPath{}, err
}

// makeGhostAsOwner makes a ghost for a root restore. Its directory is
// resolved in p as owner, following no symlink, and held by descriptor;
// the file is created there as owner, without a name (O_TMPFILE), so that
// only a directory the owner may write gets it. cryo then takes both
// descriptors, marks the file as its own (see ghostmark.go), streams the
// contents from the images into it (holes stay holes), gives it its saved
// owner and mode, and only then links it under its name: a cryo killed
// before that leaves nothing, one killed later leaves a marked file that
// the next restore removes. cryo removes it later through the same
// directory descriptor, once the name is checked to still be that inode:
// no path string is resolved twice. On a file system without O_TMPFILE
// the file is created under its name (O_EXCL|O_NOFOLLOW) and filled there.
func (fp *filePlan) makeGhostAsOwner(p, owner *process, g *ghost) (ghostPath, error) {
	name := fp.snap.reg(g.remapID).GetName()
	dir, base := path.Split(name)
	var dfd, fd uint64
	var made string
	nameless := false
	err := p.asOwner(owner, func() error {
		var err error
		if dfd, err = p.openat2(remote.AtFdcwd, dir, unix.O_PATH|unix.O_DIRECTORY, 0, resolveFlags); err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		fd, err = p.openat2(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY, 0o600, resolveFlags|unix.RESOLVE_BENEATH)
		if err == nil {
			nameless = true
			return nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			for _, try := range []string{base, fmt.Sprintf("%s.cryo-ghost-%d", base, g.remapID)} {
				fd, err = p.openat2(dfd, try, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600, resolveFlags|unix.RESOLVE_BENEATH)
				if !errors.Is(err, unix.EEXIST) {
					made = try
					break
				}
			}
		}
		if err != nil {
			p.leader.Syscall(unix.SYS_CLOSE, dfd)
		}
		return err
	})
	if err != nil {
		return ghostPath{}, err
	}
	ownDir, errD := proc.CopyFd(p.pid, int(dfd))
	ownFile, errF := proc.CopyFd(p.pid, int(fd))
	p.leader.Syscall(unix.SYS_CLOSE, dfd)
	p.leader.Syscall(unix.SYS_CLOSE, fd)
	if errD != nil || errF != nil {
		if errD == nil {
			unix.Close(ownDir)
		}
		if errF == nil {
			unix.Close(ownFile)
		}
		if nameless {
			return ghostPath{}, fmt.Errorf("take over the file made in %s: %w", dir, errors.Join(errD, errF))
		}
		// Without the descriptors, the file made cannot be removed
		// safely: say where it is.
		return ghostPath{}, fmt.Errorf("%s%s was made but cryo could not take it over, remove it: %w", dir, made, errors.Join(errD, errF))
	}
	// f stays open until the ghost is removed: its mark goes then.
	f := os.NewFile(uintptr(ownFile), dir+base)
	var st unix.Stat_t
	if err := unix.Fstat(ownFile, &st); err != nil {
		f.Close()
		unix.Close(ownDir)
		if !nameless {
			return ghostPath{}, fmt.Errorf("%s%s was made but could not be checked, remove it: %w", dir, made, err)
		}
		return ghostPath{}, err
	}
	if mark, err := runMark(); err != nil {
		p.r.logf("restore pid %d: ghost %s: no mark (%v): a cryo killed before it is removed again leaves it", p.c.pid, name, err)
	} else if err := unix.Fsetxattr(ownFile, ghostMarkXattr, []byte(mark), 0); err != nil {
		p.r.logf("restore pid %d: ghost %s: cannot mark it (%v): a cryo killed before it is removed again leaves it", p.c.pid, name, err)
	}
	gp := ghostPath{path: dir + made, dev: st.Dev, ino: st.Ino}
	gp.remove = func() error {
		defer unix.Close(ownDir)
		defer f.Close()
		var now unix.Stat_t
		if err := unix.Fstatat(ownDir, made, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if now.Dev != gp.dev || now.Ino != gp.ino {
			return fmt.Errorf("%s is no longer the file cryo made: left alone", gp.path)
		}
		if err := unix.Unlinkat(ownDir, made, 0); err != nil {
			return err
		}
		// Nameless again, the file needs no mark: the tree's process
		// holds it as the original held the deleted file.
		unix.Fremovexattr(int(f.Fd()), ghostMarkXattr)
		return nil
	}
	if err := fp.fillGhost(f, g); err != nil {
		if nameless {
			f.Close()
			unix.Close(ownDir)
		} else {
			gp.remove()
		}
		return ghostPath{}, err
	}
	if nameless {
		if made, err = fp.linkGhost(ownFile, ownDir, dir, base, g.remapID, p.r.logf); err != nil {
			f.Close()
			unix.Close(ownDir)
			return ghostPath{}, fmt.Errorf("name it in %s: %w", dir, err)
		}
		gp.path = dir + made
		p.r.opts.Fault.Point("restore: ghost " + gp.path + " named")
	}
	return gp, nil
}

// fillGhost writes a ghost's contents, streamed from the images, then its
// owner and mode (chown first: it would clear set-id bits).
func (fp *filePlan) fillGhost(f *os.File, g *ghost) error {
	e, data, err := fp.dir.OpenGhost(g.remapID)
	if err != nil {
		return err
	}
	defer data.Close()
	if e.GetSize() != g.entry.GetSize() {
		return fmt.Errorf("%s changed during the restore", f.Name())
	}
	if err := image.CopySparse(f, data, 0, int64(e.GetSize())); err != nil {
		return fmt.Errorf("contents: %w", err)
	}
	if err := f.Chown(int(e.GetUid()), int(e.GetGid())); err != nil {
		return err
	}
	// Not f.Chmod: os.FileMode has no set-id or sticky bits.
	return unix.Fchmod(int(f.Fd()), e.GetMode()&0o7777)
}

// removeGhosts unlinks the ghosts again; idempotent. A ghost that cannot
// be removed is logged: its contents stay readable at its path.
func (fp *filePlan) removeGhosts(logf func(string, ...any)) {
	for id, gp := range fp.ghostPaths {
		if err := gp.remove(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			logf("warning: the deleted file put back at %s for the restore stays there: %v", gp.path, err)
		}
		delete(fp.ghostPaths, id)
	}
}

// ghostKind names what a ghost is, for messages.
func ghostKind(g *ghost) string {
	if g.isDir() {
		return "directory"
	}
	return "file"
}
