package dump

import (
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/pty"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ptyPair is one pseudo-terminal pair whose master the tree holds. Its
// settings are read through the master: ioctls on a master act on the
// slave's terminal, and TIOCGSID/TIOCGPGRP answer only there for a
// process (cryo) the terminal does not control.
type ptyPair struct {
	// PtyInfo: what tty-info.img says of it.
	fdkind.PtyInfo
	masterPid, masterFd int    // where putBack copies the master again
	output              []byte // written on the slave, unread by the master
	// orphanDev is, for an orphan slave (its master outside the tree,
	// orphan_pts_master), the device of its devpts; zero for a pair the
	// tree owns.
	orphanDev uint64
}

// ptyTable holds the pairs of the tree, by index.
type ptyTable struct {
	owned map[uint32]*ptyPair
	order []uint32
	// devpts is the device of cryo's /dev/pts, where restore finds the
	// slaves again.
	devpts uint64
}

// scan finds the masters the tree holds, before any descriptor is
// described: a slave is the tree's own pair only if its master is in the
// tree; otherwise it is the caller's terminal (-j).
func (pt *ptyTable) scan(procs []*process) error {
	pt.owned = map[uint32]*ptyPair{}
	var st unix.Stat_t
	if err := unix.Stat("/dev/pts", &st); err != nil {
		return fmt.Errorf("devpts: %w", err)
	}
	pt.devpts = st.Dev
	return eachCharDev(procs, func(p *process, fd int, st *unix.Stat_t) error {
		if !fdkind.IsPtyMaster(st.Rdev) {
			return nil
		}
		if err := pt.addMaster(p, fd, st); err != nil {
			return fmt.Errorf("process %d fd %d: pty master: %w", p.pid, fd, err)
		}
		return nil
	})
}

// eachCharDev calls fn for each descriptor of a character device held by
// a live process of procs, until fn fails.
func eachCharDev(procs []*process, fn func(p *process, fd int, st *unix.Stat_t) error) error {
	for _, p := range procs {
		if p.zombie || p.helper {
			continue
		}
		fds, err := proc.Fds(p.pid)
		if err != nil {
			return fmt.Errorf("process %d: list descriptors: %w", p.pid, err)
		}
		for _, fd := range fds {
			st, err := proc.FileStat(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd))
			if err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
				continue
			}
			if err := fn(p, fd, &st); err != nil {
				return err
			}
		}
	}
	return nil
}

// addMaster reads the pair of the master at p's fd, once per pair. The
// pair is registered before its queued output is read, so that the bytes
// taken go back (putBack) whatever fails next.
func (pt *ptyTable) addMaster(p *process, fd int, st *unix.Stat_t) error {
	c, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return err
	}
	defer unix.Close(c)
	index, err := unix.IoctlGetUint32(c, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("TIOCGPTN: %w", err)
	}
	if _, ok := pt.owned[index]; ok {
		return nil
	}
	// Restore makes the pair again in cryo's devpts, and putBack reaches
	// it there: a pair of another instance would be another terminal.
	devpts, err := devptsOf(p, fd, c)
	if err != nil {
		return fmt.Errorf("pty %d: %w", index, err)
	}
	if devpts != pt.devpts {
		return fmt.Errorf("pty %d: a master of another devpts instance than /dev/pts: not supported", index)
	}
	pair := &ptyPair{PtyInfo: fdkind.PtyInfo{Index: index, MasterRdev: st.Rdev, SlaveRdev: fdkind.PtsRdev(index)}, masterPid: p.pid, masterFd: fd}
	pt.owned[index] = pair
	pt.order = append(pt.order, index)
	if err := pair.read(c); err != nil {
		return fmt.Errorf("pty %d: %w", index, err)
	}
	return nil
}

// devptsOf tells the devpts instance of the master at p's fd (c, cryo's
// copy) the way the kernel chose it when the master was opened, without
// opening the slave (whose first close would hang the master up): the
// filesystem of the ptmx node if it is a devpts (/dev/pts/ptmx), else the
// devpts mounted at pts beside it (/dev/ptmx and /dev/pts).
func devptsOf(p *process, fd, c int) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(c, &fs); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	var st unix.Stat_t
	if fs.Type == unix.DEVPTS_SUPER_MAGIC {
		if err := unix.Fstat(c, &st); err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		return st.Dev, nil
	}
	ptmx, err := proc.Readlink(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd))
	if err != nil {
		return 0, err
	}
	pts := p.viaRoot + filepath.Join(filepath.Dir(ptmx), "pts")
	if st, err = proc.FileStat(pts); err != nil {
		return 0, fmt.Errorf("the devpts of %s: %w", ptmx, err)
	}
	return st.Dev, nil
}

// read takes the pair's settings through a copy of its master.
func (pair *ptyPair) read(master int) error {
	if err := pair.ReadSettings(master); err != nil {
		return err
	}
	var err error
	flag := func(req uint) (bool, error) {
		v, err := unix.IoctlGetInt(master, req)
		return v != 0, err
	}
	if pair.Locked, err = flag(unix.TIOCGPTLCK); err != nil {
		return fmt.Errorf("TIOCGPTLCK: %w", err)
	}
	if pair.Packet, err = flag(unix.TIOCGPKT); err != nil {
		return fmt.Errorf("TIOCGPKT: %w", err)
	}
	if pair.MasterExcl, err = flag(unix.TIOCGEXCL); err != nil {
		return fmt.Errorf("TIOCGEXCL: %w", err)
	}
	// No session (ENOTTY) and no foreground group are zero.
	if sid, err := unix.IoctlGetInt(master, unix.TIOCGSID); err == nil {
		pair.Sid = uint32(sid)
	} else if !errors.Is(err, unix.ENOTTY) {
		return fmt.Errorf("TIOCGSID: %w", err)
	}
	if pair.Sid != 0 {
		pgrp, err := unix.IoctlGetInt(master, unix.TIOCGPGRP)
		if err != nil {
			return fmt.Errorf("TIOCGPGRP: %w", err)
		}
		pair.Pgrp = uint32(pgrp)
	}
	if err := pair.takeOutput(master); err != nil {
		return err
	}
	var st unix.Stat_t
	if unix.Stat(pty.PtsPath(pair.Index), &st) == nil && st.Rdev == pair.SlaveRdev {
		pair.SlaveUID, pair.SlaveGID, pair.HaveSlaveOwner = st.Uid, st.Gid, true
	}
	return nil
}

// addSlave notes what only a slave's descriptor tells: its exclusive
// flag and the input waiting for it.
func (pair *ptyPair) addSlave(slave int) error {
	excl, err := unix.IoctlGetInt(slave, unix.TIOCGEXCL)
	if err != nil {
		return fmt.Errorf("TIOCGEXCL: %w", err)
	}
	pair.SlaveExcl = excl != 0
	// Input for the slave cannot be taken and put back unchanged (the
	// line discipline processes it again): refused rather than lost.
	n, err := unix.IoctlGetInt(slave, unix.TIOCINQ)
	if err != nil {
		return fmt.Errorf("TIOCINQ: %w", err)
	}
	if n != 0 {
		return fmt.Errorf("%d bytes written on the master wait to be read on the slave: queued terminal input is not supported yet", n)
	}
	return nil
}

// ownsSlave tells whether a slave device belongs to a pair of the tree.
func (pt *ptyTable) ownsSlave(rdev uint64) bool {
	index, ok := fdkind.PtsIndex(rdev)
	return ok && pt.owned[index] != nil
}

// cttyOf returns the pair that is p's controlling terminal, if the tree
// owns it.
func (pt *ptyTable) cttyOf(p *process) *ptyPair {
	index, ok := fdkind.PtsIndex(uint64(p.stat.TtyNr))
	if !ok || pt.owned[index] == nil || pt.owned[index].Sid != uint32(p.stat.Session) {
		return nil
	}
	return pt.owned[index]
}

// isTreePty tells whether a character device held by p is a side of a
// pair the tree owns, or /dev/tty standing for such a pair.
func (pt *ptyTable) isTreePty(p *process, rdev uint64) bool {
	return fdkind.IsPtyMaster(rdev) || pt.ownsSlave(rdev) || (fdkind.IsDevTty(rdev) && pt.cttyOf(p) != nil)
}

// dumpPty describes a descriptor of a pair the tree owns, as CRIU's TTY
// file: one file entry per open file description, pointing at the info
// entry of its side. A descriptor of /dev/tty is the slave's, with the
// path it was opened through (regf_id), to be opened again through it.
func (p *process) dumpPty(ft *fileTable, fd int, target string, info *proc.FdInfo, st *unix.Stat_t) (*fdinfo.FdinfoEntry, error) {
	where := fmt.Sprintf("process %d fd %d (%s)", p.pid, fd, target)
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: fdinfo.FdTypes_TTY.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	c, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer unix.Close(c)
	master := fdkind.IsPtyMaster(st.Rdev)
	flags := info.Flags &^ unix.O_CLOEXEC
	var index, regf uint32
	switch {
	case master:
		index, err = unix.IoctlGetUint32(c, unix.TIOCGPTN)
	case fdkind.IsDevTty(st.Rdev):
		index = ft.ptys.cttyOf(p).Index
		regf, err = ft.pathFile(target, p.viaRoot+target, flags, false)
	default:
		index, _ = fdkind.PtsIndex(st.Rdev)
		if pair := ft.ptys.owned[index]; pair.orphanDev != 0 {
			if st.Dev != pair.orphanDev {
				err = fmt.Errorf("a slave of another devpts instance than the orphan pty's: not supported")
			}
		} else if st.Dev != ft.ptys.devpts {
			err = fmt.Errorf("a slave of another devpts instance than /dev/pts: not supported")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if !master {
		if err := ft.ptys.owned[index].addSlave(c); err != nil {
			return nil, fmt.Errorf("%s: pty %d: %w", where, index, err)
		}
	}
	id := ft.add(fdkind.DumpTty(index, master, flags, regf, ft.nextID()))
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// check refuses a pair that controls a session the tree does not lead, or
// whose foreground group is not in the tree: neither could be made again.
func (pt *ptyTable) check(procs []*process) error {
	leaders, groups := map[uint32]bool{}, map[uint32]bool{}
	for _, p := range procs {
		if p.zombie {
			continue
		}
		if p.stat.Session == p.pid {
			leaders[uint32(p.pid)] = true
		}
		groups[uint32(p.stat.Pgrp)] = true
	}
	for _, index := range pt.order {
		pair := pt.owned[index]
		if pair.Sid != 0 && !leaders[pair.Sid] {
			return fmt.Errorf("pty %d is the controlling terminal of session %d, whose leader is not a live process of the tree: not supported", index, pair.Sid)
		}
		if pair.Pgrp != 0 && !groups[pair.Pgrp] {
			return fmt.Errorf("pty %d: its foreground process group %d has no process in the tree: not supported", index, pair.Pgrp)
		}
	}
	return nil
}

// write writes tty-info.img: both sides of every pair.
func (pt *ptyTable) write(dir *image.Dir) error {
	var entries []proto.Message
	for _, index := range pt.order {
		entries = append(entries, pt.owned[index].Entries()...)
	}
	if len(entries) == 0 {
		return nil
	}
	if err := dir.Write(image.TtyInfoName, "TTY_INFO", entries...); err != nil {
		return err
	}
	return pt.writeData(dir)
}
