package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/pty"
	"io/fs"
	"maps"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// maxPtyIndex is the kernel's bound on Unix98 pty indexes.
const maxPtyIndex = 1 << 20

// ptyPair is one pseudo-terminal pair of the image: its two info entries
// and the files (open file descriptions) of each side.
type ptyPair struct {
	index         uint32
	master, slave *tty.TtyInfoEntry
	masterFile    uint32   // the master's one open file description
	slaveFiles    []uint32 // the slave's, each opened by its path
	cttyFiles     []uint32 // the slave's opened through /dev/tty
	output        []byte   // written on the slave, for the master to read
	// orphan: the master was outside the tree (no master file): the pair
	// is made in the tree's devpts once its mount namespace is up, and the
	// master handed to the caller (orphanpty.go). made tells it was.
	orphan, made bool
	maker        *process // the process that makes an orphan pair
	// early: the master of an orphan pair made while its maker built the
	// container's mounts (earlyOrphanMaster), a descriptor of the maker's.
	early    uint64
	hasEarly bool
}

// loadPtys reads tty-info.img and checks every TTY file against it.
func (s *snapshot) loadPtys(dir *image.Dir) error {
	infos, err := image.ReadEntries[*tty.TtyInfoEntry](dir, image.TtyInfoName, "TTY_INFO")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	byID := map[uint32]*tty.TtyInfoEntry{}
	for _, e := range infos {
		index := e.GetPty().GetIndex()
		if e.GetType() != tty.TtyType_PTY || e.GetPty() == nil || index >= maxPtyIndex || e.GetId()>>1 != index {
			return fmt.Errorf("%s: terminal %d of type %v (index %d) is not supported", image.TtyInfoName, e.GetId(), e.GetType(), index)
		}
		for _, t := range []*tty.TermiosEntry{e.GetTermios(), e.GetTermiosLocked()} {
			if t == nil || len(t.GetCCc()) > len(unix.Termios{}.Cc) {
				return fmt.Errorf("%s: terminal %d: missing or oversized termios", image.TtyInfoName, e.GetId())
			}
		}
		if e.GetWinsize() == nil || byID[e.GetId()] != nil {
			return fmt.Errorf("%s: terminal %d: no window size, or twice", image.TtyInfoName, e.GetId())
		}
		byID[e.GetId()] = e
	}
	s.ptys = map[uint32]*ptyPair{}
	for id, f := range s.files {
		t := f.GetTty()
		if t == nil {
			continue
		}
		info := byID[t.GetTtyInfoId()]
		if info == nil {
			return fmt.Errorf("%s: terminal file %d refers to unknown terminal %d", image.FilesName, id, t.GetTtyInfoId())
		}
		index := info.GetPty().GetIndex()
		pair := s.ptys[index]
		if pair == nil {
			pair = &ptyPair{index: index, master: byID[image.TtyInfoID(index, true)], slave: byID[image.TtyInfoID(index, false)]}
			if pair.master == nil || pair.slave == nil {
				return fmt.Errorf("%s: pty %d lacks the info of its master or slave", image.TtyInfoName, index)
			}
			s.ptys[index] = pair
		}
		if t.RegfId != nil {
			// Opened through a path: only /dev/tty, the controlling
			// terminal, is.
			if s.files[t.GetRegfId()].GetReg().GetName() != "/dev/tty" || info != pair.slave {
				return fmt.Errorf("%s: terminal file %d opened through file %d: only the slave through /dev/tty is supported", image.FilesName, id, t.GetRegfId())
			}
			pair.cttyFiles = append(pair.cttyFiles, id)
		} else if info == pair.master {
			if pair.masterFile != 0 {
				return fmt.Errorf("%s: pty %d has two master files (%d, %d)", image.FilesName, index, pair.masterFile, id)
			}
			pair.masterFile = id
		} else {
			pair.slaveFiles = append(pair.slaveFiles, id)
		}
	}
	for index, pair := range s.ptys {
		slices.Sort(pair.slaveFiles)
		slices.Sort(pair.cttyFiles)
		if pair.masterFile == 0 {
			if len(pair.output) > 0 || pair.slave.GetLocked() || pair.master.GetPacketMode() {
				return fmt.Errorf("%s: orphan pty %d: locked, in packet mode or with queued output", image.TtyInfoName, index)
			}
			pair.orphan = true
		}
		if pair.slave.GetLocked() && len(pair.slaveFiles) > 0 {
			return fmt.Errorf("%s: pty %d is locked but its slave is open", image.TtyInfoName, index)
		}
	}
	return s.loadPtyData(dir)
}

// loadPtyData reads tty-data.img: the bytes queued for each master.
func (s *snapshot) loadPtyData(dir *image.Dir) error {
	entries, err := image.ReadEntries[*tty.TtyDataEntry](dir, image.TtyDataName, "TTY_DATA")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		pair := s.ptys[e.GetTtyId()>>1]
		if pair == nil || e.GetTtyId()&1 == 0 || len(pair.output)+len(e.GetData()) > image.MaxTtyData {
			return fmt.Errorf("%s: %d bytes for terminal %d: not the master of a pty of the image, or too many", image.TtyDataName, len(e.GetData()), e.GetTtyId())
		}
		pair.output = append(pair.output, e.GetData()...)
	}
	return nil
}

// sessionLeader returns the process that leads the session a pair
// controls, or nil.
func (pair *ptyPair) sessionLeader(procs []*process) (*process, error) {
	sid := pair.slave.GetSid()
	if sid == 0 {
		return nil, nil
	}
	for _, p := range procs {
		if uint32(p.c.pid) == sid && !p.c.zombie && int(p.c.tree.GetSid()) == p.c.pid {
			return p, nil
		}
	}
	return nil, fmt.Errorf("pty %d controls session %d, whose leader is not a live process of the image", pair.index, sid)
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
		if pair.orphan {
			if err := fp.planOrphanPty(procs, holders, pair); err != nil {
				return err
			}
			continue
		}
		var all []*process
		for _, id := range append([]uint32{pair.masterFile}, pair.slaveFiles...) {
			if len(holders[id]) == 0 {
				return fmt.Errorf("%s: pty %d: terminal file %d is held by no process", image.FilesName, index, id)
			}
			all = append(all, holders[id]...)
		}
		leader, err := pair.sessionLeader(procs)
		if err != nil {
			return err
		}
		if leader != nil {
			if fp.controls[leader] != nil {
				return fmt.Errorf("process %d is the session leader of two ptys", leader.c.pid)
			}
			fp.controls[leader] = pair
			all = append(all, leader)
		}
		lca := commonAncestor(all)
		fp.jobs[lca] = append(fp.jobs[lca], fileJob{pty: pair})
		// /dev/tty opens the opener's controlling terminal: a process of
		// the session, once its leader took the pair (openIn).
		for _, id := range pair.cttyFiles {
			if len(holders[id]) == 0 {
				continue
			}
			lca := commonAncestor(holders[id])
			if leader == nil || lca.c.tree.GetSid() != pair.slave.GetSid() {
				return fmt.Errorf("pty %d: /dev/tty file %d is held by processes (first %d) outside the session it controls", pair.index, id, holders[id][0].c.pid)
			}
			fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id}, ctty: true})
		}
	}
	return nil
}

// openCtty opens /dev/tty at a file's temporary descriptor: p's
// controlling terminal, a pair of the tree.
func (fp *filePlan) openCtty(p *process, id uint32) error {
	flags := reopenFlags(fp.snap.files[id].GetTty().GetFlags())
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
	where := fmt.Sprintf("restore pid %d pty %d", p.c.pid, pair.index)
	mf := fp.snap.files[pair.masterFile].GetTty()
	fd, err := openPtyMaster(p, pair.index, reopenFlags(mf.GetFlags()))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := fp.moveTo(p, fd, fp.temp[pair.masterFile]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	master, err := proc.CopyFd(p.pid, int(fp.temp[pair.masterFile]))
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("%s: unlock: %w", where, err)
	}
	path := pty.PtsPath(pair.index)
	for _, id := range pair.slaveFiles {
		flags := reopenFlags(fp.snap.files[id].GetTty().GetFlags())
		n, err := p.open(path, flags)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := fp.moveTo(p, n, fp.temp[id]); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if len(pair.output) > 0 {
		if err := pty.QueueForMaster(master, pair.output); err != nil {
			return fmt.Errorf("%s: queue %d bytes for the master: %w", where, len(pair.output), err)
		}
	}
	if err := pair.apply(master); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if pair.slave.GetExclusive() && len(pair.slaveFiles) > 0 {
		slave, err := proc.CopyFd(p.pid, int(fp.temp[pair.slaveFiles[0]]))
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		err = unix.IoctlSetInt(slave, unix.TIOCEXCL, 0)
		unix.Close(slave)
		if err != nil {
			return fmt.Errorf("%s: exclusive: %w", where, err)
		}
	}
	if pair.slave.Uid != nil && pair.slave.Gid != nil {
		if err := p.chownPath(path, pair.slave.GetUid(), pair.slave.GetGid()); err != nil {
			return fmt.Errorf("%s: owner: %w", where, err)
		}
	}
	return nil
}

// apply gives the pair its settings through its master (ioctls on a
// master act on the slave's terminal). Packet mode comes last: turning it
// on drops the status changes the other settings raised, as nothing read
// them before the dump either.
func (pair *ptyPair) apply(master int) error {
	if err := unix.IoctlSetTermios(master, unix.TCSETS, termios(pair.slave.GetTermios())); err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	// Setting the locked termios needs CAP_SYS_ADMIN: skipped when the
	// new pair has them already (none locked, as almost always).
	locked := termios(pair.slave.GetTermiosLocked())
	if have, err := unix.IoctlGetTermios(master, unix.TIOCGLCKTRMIOS); err != nil || *have != *locked {
		if err := unix.IoctlSetTermios(master, unix.TIOCSLCKTRMIOS, locked); err != nil {
			return fmt.Errorf("locked termios: %w", err)
		}
	}
	w := pair.slave.GetWinsize()
	ws := &unix.Winsize{Row: uint16(w.GetWsRow()), Col: uint16(w.GetWsCol()), Xpixel: uint16(w.GetWsXpixel()), Ypixel: uint16(w.GetWsYpixel())}
	if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("window size: %w", err)
	}
	if pair.master.GetExclusive() {
		if err := unix.IoctlSetInt(master, unix.TIOCEXCL, 0); err != nil {
			return fmt.Errorf("exclusive master: %w", err)
		}
	}
	if pair.slave.GetLocked() {
		if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 1); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if pair.master.GetPacketMode() {
		if err := unix.IoctlSetPointerInt(master, unix.TIOCPKT, 1); err != nil {
			return fmt.Errorf("packet mode: %w", err)
		}
	}
	return nil
}

func termios(e *tty.TermiosEntry) *unix.Termios {
	t := &unix.Termios{Iflag: e.GetCIflag(), Oflag: e.GetCOflag(), Cflag: e.GetCCflag(), Lflag: e.GetCLflag(),
		Line: uint8(e.GetCLine()), Ispeed: e.GetCIspeed(), Ospeed: e.GetCOspeed()}
	for i, c := range e.GetCCc() {
		t.Cc[i] = uint8(c)
	}
	return t
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
	if pair == nil || pair.orphan {
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
		if pair.orphan {
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
	pgrp := pair.slave.GetPgrp()
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
	fd, err := p.open(pty.PtsPath(pair.index), unix.O_RDWR)
	if err != nil {
		return fmt.Errorf("restore pid %d: pty %d: %w", p.c.pid, pair.index, err)
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, fd)
	if err := do(fd); err != nil {
		return fmt.Errorf("restore pid %d: pty %d: %w", p.c.pid, pair.index, err)
	}
	return nil
}
