package restore

import (
	"encoding/binary"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/pty"
	"maps"
	"slices"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// ptyPair is one pseudo-terminal pair of the image (fdkind.PtyPair), and
// what restore keeps while it makes it.
type ptyPair struct {
	*fdkind.PtyPair
	// made tells that an orphan pair (orphanpty.go) was made.
	made  bool
	maker *process // the process that makes an orphan pair
	// early: the master of an orphan pair made while its maker built the
	// container's mounts (earlyOrphanMaster), a descriptor of the maker's.
	early    uint64
	hasEarly bool
}

// loadPtys reads the pairs of the image (fdkind.LoadPtys).
func (s *snapshot) loadPtys(dir *image.Dir) error {
	ptys, err := fdkind.LoadPtys(dir, s.files)
	if err != nil {
		return err
	}
	s.ptys = map[uint32]*ptyPair{}
	for index, pair := range ptys {
		s.ptys[index] = &ptyPair{PtyPair: pair}
	}
	return nil
}

// sessionLeader returns the process that leads the session a pair
// controls, or nil.
func (pair *ptyPair) sessionLeader(procs []*process) (*process, error) {
	sid := pair.Sid()
	if sid == 0 {
		return nil, nil
	}
	for _, p := range procs {
		if uint32(p.c.pid) == sid && !p.c.zombie && int(p.c.tree.GetSid()) == p.c.pid {
			return p, nil
		}
	}
	return nil, fmt.Errorf("pty %d controls session %d, whose leader is not a live process of the image", pair.Index, sid)
}

// controller returns the session leader whose controlling terminal the
// pair is, or nil: a leader of two pairs is refused.
func (fp *filePlan) controller(procs []*process, pair *ptyPair) (*process, error) {
	leader, err := pair.sessionLeader(procs)
	if err == nil && leader != nil && fp.controls[leader] != nil {
		err = fmt.Errorf("process %d is the session leader of two ptys", leader.c.pid)
	}
	return leader, err
}

// planPtys places each pair in the common ancestor of the processes that
// hold its files and of the session leader it is the terminal of: the
// leader must find it when it takes its terminal, before its children
// exist.
func (fp *filePlan) planPtys(procs []*process, holders map[uint32][]*process) error {
	fp.controls = map[*process]*ptyPair{}
	indexes := slices.Sorted(maps.Keys(fp.snap.ptys))
	for _, index := range indexes {
		pair := fp.snap.ptys[index]
		// Each file is made at the temporary descriptor of its holders: a
		// file nobody holds has none.
		if pair.Orphan {
			if err := fp.planOrphanPty(procs, holders, pair); err != nil {
				return err
			}
			continue
		}
		var all []*process
		for _, id := range append([]uint32{pair.MasterFile}, pair.SlaveFiles...) {
			if len(holders[id]) == 0 {
				return fmt.Errorf("%s: pty %d: terminal file %d is held by no process", image.FilesName, index, id)
			}
			all = append(all, holders[id]...)
		}
		leader, err := fp.controller(procs, pair)
		if err != nil {
			return err
		}
		if leader != nil {
			fp.controls[leader] = pair
			all = append(all, leader)
		}
		lca := commonAncestor(all)
		fp.jobs[lca] = append(fp.jobs[lca], fileJob{pty: pair})
		// /dev/tty opens the opener's controlling terminal: a process of
		// the session, once its leader took the pair (openIn).
		for _, id := range pair.CttyFiles {
			if len(holders[id]) == 0 {
				continue
			}
			lca := commonAncestor(holders[id])
			if leader == nil || lca.c.tree.GetSid() != pair.Sid() {
				return fmt.Errorf("pty %d: /dev/tty file %d is held by processes (first %d) outside the session it controls", pair.Index, id, holders[id][0].c.pid)
			}
			fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id}, ctty: true})
		}
	}
	return nil
}

// openCtty opens /dev/tty at a file's temporary descriptor: p's
// controlling terminal, a pair of the tree.
func (fp *filePlan) openCtty(p *process, id uint32) error {
	flags := fdkind.TtyFlags(fp.snap.files[id])
	n, err := p.open("/dev/tty", flags)
	if err == nil {
		err = fp.moveTo(p, n, fp.temp[id])
	}
	if err != nil {
		return fmt.Errorf("restore pid %d: controlling terminal: %w", p.c.pid, err)
	}
	return nil
}

// makePty creates a pair in p (phase one) at the temporary descriptors of
// its files: the master at the saved index, the slave's files by path,
// then the settings, through a copy of the master taken by cryo.
func (fp *filePlan) makePty(p *process, pair *ptyPair) error {
	where := fmt.Sprintf("restore pid %d pty %d", p.c.pid, pair.Index)
	fd, err := openPtyMaster(p, pair.Index, fdkind.TtyFlags(fp.snap.files[pair.MasterFile]))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := fp.moveTo(p, fd, fp.temp[pair.MasterFile]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	master, err := proc.CopyFd(p.pid, int(fp.temp[pair.MasterFile]))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("%s: unlock: %w", where, err)
	}
	path := pty.PtsPath(pair.Index)
	for _, id := range pair.SlaveFiles {
		flags := fdkind.TtyFlags(fp.snap.files[id])
		n, err := p.open(path, flags)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := fp.moveTo(p, n, fp.temp[id]); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if len(pair.Output) > 0 {
		if err := pty.QueueForMaster(master, pair.Output); err != nil {
			return fmt.Errorf("%s: queue %d bytes for the master: %w", where, len(pair.Output), err)
		}
	}
	if err := pair.Apply(master); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if pair.SlaveExclusive() && len(pair.SlaveFiles) > 0 {
		slave, err := proc.CopyFd(p.pid, int(fp.temp[pair.SlaveFiles[0]]))
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		err = unix.IoctlSetInt(slave, unix.TIOCEXCL, 0)
		unix.Close(slave)
		if err != nil {
			return fmt.Errorf("%s: exclusive: %w", where, err)
		}
	}
	if uid, gid, ok := pair.SlaveOwner(); ok {
		if err := p.chownPath(path, uid, gid); err != nil {
			return fmt.Errorf("%s: owner: %w", where, err)
		}
	}
	return nil
}

// openPtyMaster opens /dev/ptmx in p until the kernel hands out the saved
// index (it gives the lowest free one), closing the masters opened on the
// way. A lower index in use is skipped over; the saved one in use fails.
func openPtyMaster(p *process, index uint32, flags uint64) (uint64, error) {
	t := p.leader
	var extra []uint64
	defer func() {
		for _, fd := range extra {
			t.Syscall(unix.SYS_CLOSE, fd)
		}
	}()
	for range index + 1 {
		fd, err := p.open("/dev/ptmx", flags)
		if err != nil {
			return 0, err
		}
		addr, err := p.put(make([]byte, 4))
		if err == nil {
			_, err = t.Syscall(unix.SYS_IOCTL, fd, unix.TIOCGPTN, addr)
		}
		b := make([]byte, 4)
		if err == nil {
			err = readMem(p, addr, b)
		}
		if err != nil {
			t.Syscall(unix.SYS_CLOSE, fd)
			return 0, fmt.Errorf("TIOCGPTN: %w", err)
		}
		got := binary.LittleEndian.Uint32(b)
		if got == index {
			return fd, nil
		}
		extra = append(extra, fd)
		if got > index {
			return 0, fmt.Errorf("pty index %d is taken (the kernel gave %d): it must be free to restore", index, got)
		}
	}
	return 0, fmt.Errorf("pty index %d: not reached after %d opens", index, index+1)
}

// takeTerminal makes p, a session leader just made (setsid), take the pair
// it controlled as its controlling terminal, before it clones its
// children: they inherit it, as they did.
func (fp *filePlan) takeTerminal(p *process) error {
	pair := fp.controls[p]
	if pair == nil || pair.Orphan {
		return nil
	}
	return p.onTerminal(pair, func(fd uint64) error {
		if _, err := p.leader.Syscall(unix.SYS_IOCTL, fd, unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("TIOCSCTTY: %w", err)
		}
		return nil
	})
}

// setForeground gives every pair its foreground process group again, once
// the groups exist (TIOCSPGRP by the session leader).
func (fp *filePlan) setForeground(procs []*process) error {
	for p, pair := range fp.controls {
		if pair.Orphan {
			continue // set once the pair exists (makeOrphanPty)
		}
		if err := fp.foreground(p, pair); err != nil {
			return err
		}
	}
	return nil
}

// foreground gives a pair its foreground group, by its session leader p.
func (fp *filePlan) foreground(p *process, pair *ptyPair) error {
	pgrp := pair.Pgrp()
	if pgrp == 0 || pgrp == uint32(p.c.pid) {
		return nil
	}
	// Inside a pid namespace the group is named by its own id.
	pgrp = innerPidsOf(fp.procs).seenBy(p, pgrp)
	return p.onTerminal(pair, func(fd uint64) error {
		addr, err := p.put(binary.LittleEndian.AppendUint32(nil, pgrp))
		if err == nil {
			_, err = p.leader.Syscall(unix.SYS_IOCTL, fd, unix.TIOCSPGRP, addr)
		}
		if err != nil {
			return fmt.Errorf("foreground group %d: %w", pgrp, err)
		}
		return nil
	})
}

// onTerminal runs do on a descriptor of the pair's slave opened in p for
// the purpose, and closes it.
func (p *process) onTerminal(pair *ptyPair, do func(fd uint64) error) error {
	fd, err := p.open(pty.PtsPath(pair.Index), unix.O_RDWR)
	if err != nil {
		return fmt.Errorf("restore pid %d: pty %d: %w", p.c.pid, pair.Index, err)
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, fd)
	if err := do(fd); err != nil {
		return fmt.Errorf("restore pid %d: pty %d: %w", p.c.pid, pair.Index, err)
	}
	return nil
}
