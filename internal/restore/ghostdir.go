package restore

import (
	"errors"
	"fmt"
	"path"

	"github.com/cryo-cr/cryo/internal/nsagent"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// A directory removed while a process held it (its working directory, its
// root, a descriptor) comes back as CRIU brings it back: a ghost
// directory is made under its old name (or beside it, if something took
// the name since), the process takes it, and it is removed again once
// the whole tree holds what it needs (removeGhosts), so that the process
// sees "NAME (deleted)" and a directory no name reaches, as before.

// isDir tells whether a ghost is a removed directory.
func (g *ghost) isDir() bool { return g.entry.GetMode()&unix.S_IFMT == unix.S_IFDIR }

// makeGhostDir makes ghost directory g in p, the process about to hold
// it, as owner (the restored process it is for): its parent is opened as
// owner following no symlink and held by descriptor, the directory made
// there with mkdirat and opened beneath that descriptor, no symlink
// followed. p then gives it its saved owner (as p's user namespace sees
// it) and mode. cryo takes both descriptors and removes the directory
// later through the parent's descriptor (unlinkat AT_REMOVEDIR), once
// the name is checked to still be that inode: no path string is resolved
// twice. The same holds for a rootless restore: p has only the user's
// rights there.
func (fp *filePlan) makeGhostDir(p, owner *process, g *ghost) (ghostPath, error) {
	t := p.leader
	name := fp.snap.reg(g.remapID).GetName()
	parent, base := path.Split(name)
	uid, gid, err := p.idsInside(g.entry.GetUid(), g.entry.GetGid())
	if err != nil {
		return ghostPath{}, fmt.Errorf("owner: %w", err)
	}
	var dfd, fd uint64
	var made string
	err = p.asOwner(owner, func() error {
		var err error
		if dfd, err = p.openat2(remote.AtFdcwd, parent, unix.O_PATH|unix.O_DIRECTORY, 0, resolveFlags); err != nil {
			return fmt.Errorf("directory %s: %w", parent, err)
		}
		for _, try := range []string{base, fmt.Sprintf("%s.cryo-ghost-%d", base, g.remapID)} {
			var addr uint64
			if addr, err = p.putString(try); err != nil {
				break
			}
			// 0700 until it is checked and given its saved mode.
			if _, err = t.Syscall(unix.SYS_MKDIRAT, dfd, addr, 0o700); !errors.Is(err, unix.EEXIST) {
				made = try
				break
			}
		}
		if err == nil {
			fd, err = p.openat2(dfd, made, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0, resolveFlags|unix.RESOLVE_BENEATH)
			if err != nil {
				err = fmt.Errorf("open the directory made at %s%s: %w", parent, made, err)
			}
		}
		if err != nil {
			t.Syscall(unix.SYS_CLOSE, dfd)
		}
		return err
	})
	if err != nil {
		return ghostPath{}, err
	}
	where := parent + made
	ownDir, errD := proc.CopyFd(p.pid, int(dfd))
	var st unix.Stat_t
	errS := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd), &st)
	if errS == nil {
		if _, errS = t.Syscall(unix.SYS_FCHOWN, fd, uint64(uid), uint64(gid)); errS == nil {
			_, errS = t.Syscall(unix.SYS_FCHMOD, fd, uint64(g.entry.GetMode()&0o7777))
		}
	}
	// Rootless, the directory belongs to ids of the tree's user namespace:
	// only from inside it may it be removed (an agent there holds its
	// parent too).
	var agentDir uint64
	var agent *nsagent.Agent
	if agents := p.r.agents; agents != nil && errD == nil {
		if agent, errD = agents.For(p.pid); errD == nil {
			if agentDir, errD = agent.HoldDir(p.pid, int(dfd)); errD != nil {
				unix.Close(ownDir)
			}
		} else {
			unix.Close(ownDir)
		}
	}
	t.Syscall(unix.SYS_CLOSE, dfd)
	t.Syscall(unix.SYS_CLOSE, fd)
	if errD != nil {
		return ghostPath{}, fmt.Errorf("%s was made but cryo could not take it over, remove it: %w", where, errD)
	}
	gp := ghostPath{path: where, dev: st.Dev, ino: st.Ino}
	gp.remove = func() error {
		defer unix.Close(ownDir)
		if agent != nil {
			return agent.RemoveDirAt(agentDir, made, gp.dev, gp.ino)
		}
		var now unix.Stat_t
		if err := unix.Fstatat(ownDir, made, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if now.Dev != gp.dev || now.Ino != gp.ino {
			return fmt.Errorf("%s is no longer the directory cryo made: left alone", gp.path)
		}
		return unix.Unlinkat(ownDir, made, unix.AT_REMOVEDIR)
	}
	if errS != nil && gp.ino == 0 {
		unix.Close(ownDir)
		return ghostPath{}, fmt.Errorf("%s was made but could not be checked, remove it: %w", where, errS)
	}
	if errS != nil {
		gp.remove()
		return ghostPath{}, fmt.Errorf("owner %d:%d and mode %#o: %w", uid, gid, g.entry.GetMode()&0o7777, errS)
	}
	return gp, nil
}
