package restore

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"os"
	"strconv"
	"strings"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/pty"
	"golang.org/x/sys/unix"
)

// planOrphanPty places an orphan pair (its master was outside the tree: a
// container's terminal, CRIU's orphan_pts_master) in the session leader it
// controls, or the common ancestor of its holders if it controls none. It
// is made late, once that process entered its mount namespace, whose
// devpts instance is the container's (/dev/ptmx there gives index 0 of a
// fresh instance again); the other holders take copies of its files
// (lateCopies), as for the files on the tree's own mounts.
func (fp *filePlan) planOrphanPty(procs []*process, holders map[uint32][]*process, pair *ptyPair) error {
	var all []*process
	for _, id := range append(append([]uint32{}, pair.SlaveFiles...), pair.CttyFiles...) {
		all = append(all, holders[id]...)
	}
	if len(all) == 0 {
		return fmt.Errorf("%s: orphan pty %d: held by no process", image.FilesName, pair.Index)
	}
	maker := commonAncestor(all)
	leader, err := fp.controller(procs, pair)
	if err != nil {
		return err
	}
	if leader != nil {
		// The leader takes it as its terminal (TIOCSCTTY): it must be the
		// one that makes it, its holders its own descendants.
		if commonAncestor([]*process{maker, leader}) != leader {
			return fmt.Errorf("orphan pty %d: held by processes (first %d) outside the tree of its session leader %d: not supported", pair.Index, all[0].c.pid, leader.c.pid)
		}
		fp.controls[leader], maker = pair, leader
	} else if len(pair.CttyFiles) > 0 {
		return fmt.Errorf("orphan pty %d: opened through /dev/tty but controls no session", pair.Index)
	}
	pair.maker = maker
	fp.late[maker] = append(fp.late[maker], fileJob{pty: pair})
	for _, id := range append(append([]uint32{}, pair.SlaveFiles...), pair.CttyFiles...) {
		for _, h := range holders[id] {
			if cs := fp.lateCopies[h]; h != maker && (len(cs) == 0 || cs[len(cs)-1].id != id) {
				fp.lateCopies[h] = append(cs, lateCopy{id: id, from: maker})
			}
		}
	}
	return nil
}

// checkOrphanPtys refuses images with an orphan pty when the caller takes
// no master (Options.OrphanPtsMaster), before anything is made.
func (fp *filePlan) checkOrphanPtys() error {
	for index, pair := range fp.snap.ptys {
		if pair.Orphan && fp.orphanMaster == nil {
			return fmt.Errorf("pty %d: its master was outside the tree (an orphan pts, saved with orphan_pts_master): the caller must take the new master (orphan_pts_master)", index)
		}
	}
	return nil
}

// checkOrphansMade fails if an orphan pair was never made: its maker had
// no mount namespace of its own to make it in.
func (fp *filePlan) checkOrphansMade() error {
	for index, pair := range fp.snap.ptys {
		if pair.Orphan && !pair.made {
			return fmt.Errorf("orphan pty %d: the tree has no mount namespace of its own to make it in: not supported", index)
		}
	}
	return nil
}

// makeOrphanPty makes an orphan pair in p, in p's mount namespace: a new
// master from its /dev/ptmx at the saved index, the slave's files by path
// and /dev/tty's once p (its session leader) took it as its terminal, its
// settings and foreground group; then the master goes to the caller, and
// none is left in the tree, as before the dump.
func (fp *filePlan) makeOrphanPty(p *process, pair *ptyPair) error {
	where := fmt.Sprintf("restore pid %d orphan pty %d", p.c.pid, pair.Index)
	fd, err := pair.early, error(nil)
	if !pair.hasEarly {
		if fd, err = openPtyMaster(p, pair.Index, unix.O_RDWR|unix.O_NOCTTY); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	pair.hasEarly = false
	mc, err := proc.CopyFd(p.pid, int(fd))
	p.leader.Syscall(unix.SYS_CLOSE, fd)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	master := os.NewFile(uintptr(mc), "ptmx")
	defer func() {
		if master != nil {
			master.Close()
		}
	}()
	if err := unix.IoctlSetPointerInt(mc, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("%s: unlock: %w", where, err)
	}
	path := pty.PtsPath(pair.Index)
	for _, id := range pair.SlaveFiles {
		n, err := p.open(path, fdkind.TtyFlags(fp.snap.files[id]))
		if err == nil {
			err = fp.moveTo(p, n, fp.temp[id])
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := pair.Apply(mc); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if uid, gid, ok := pair.SlaveOwner(); ok {
		if err := p.chownPath(path, uid, gid); err != nil {
			return fmt.Errorf("%s: owner: %w", where, err)
		}
	}
	if fp.controls[p] == pair {
		if err := p.onTerminal(pair, func(fd uint64) error {
			if _, err := p.leader.Syscall(unix.SYS_IOCTL, fd, unix.TIOCSCTTY, 0); err != nil {
				return fmt.Errorf("TIOCSCTTY: %w", err)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range pair.CttyFiles {
			if err := fp.openCtty(p, id); err != nil {
				return err
			}
		}
		if err := fp.foreground(p, pair); err != nil {
			return err
		}
	}
	// Last: the opens above would meet it.
	if pair.SlaveExclusive() && len(pair.SlaveFiles) > 0 {
		if err := p.onTerminal(pair, func(fd uint64) error {
			_, err := p.leader.Syscall(unix.SYS_IOCTL, fd, unix.TIOCEXCL, 0)
			return err
		}); err != nil {
			return fmt.Errorf("%s: exclusive: %w", where, err)
		}
	}
	pair.made = true
	give := master
	master = nil
	if err := fp.orphanMaster(give); err != nil {
		return fmt.Errorf("%s: hand the master to the caller: %w", where, err)
	}
	return nil
}

// earlyOrphanMaster makes the master of an orphan pty while p builds the
// container's mounts, when a bind mount's source is its slave (runc binds
// the terminal's slave onto /dev/console): the slave exists only once its
// master is open. p, the pair's maker, opens the ptmx of the devpts
// mounted beneath rootFd and keeps the master for makeOrphanPty. It tells
// whether from named such a slave.
func (fp *filePlan) earlyOrphanMaster(p *process, rootFd uint64, from string) (bool, error) {
	n, ok := strings.CutPrefix(from, "/dev/pts/")
	index, err := strconv.ParseUint(n, 10, 32)
	if !ok || err != nil || fp == nil {
		return false, nil
	}
	pair := fp.snap.ptys[uint32(index)]
	if pair == nil || !pair.Orphan || pair.maker != p || pair.hasEarly || pair.made {
		return false, nil
	}
	where := fmt.Sprintf("orphan pty %d", index)
	ptmx, err := p.openInRoot(rootFd, "/dev/pts/ptmx")
	if err != nil {
		return true, fmt.Errorf("%s: %w", where, err)
	}
	fd, err := p.open(fdPath(ptmx), unix.O_RDWR|unix.O_NOCTTY)
	p.leader.Syscall(unix.SYS_CLOSE, ptmx)
	if err != nil {
		return true, fmt.Errorf("%s: open the container's ptmx: %w", where, err)
	}
	c, err := proc.CopyFd(p.pid, int(fd))
	var got uint32
	if err == nil {
		got, err = unix.IoctlGetUint32(c, unix.TIOCGPTN)
		unix.Close(c)
	}
	if err == nil && got != pair.Index {
		err = fmt.Errorf("the container's devpts gave index %d", got)
	}
	if err != nil {
		p.leader.Syscall(unix.SYS_CLOSE, fd)
		return true, fmt.Errorf("%s: %w", where, err)
	}
	pair.early, pair.hasEarly = fd, true
	return true, nil
}
