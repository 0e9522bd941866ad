package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// scanOrphans finds, for CRIU's orphan_pts_master, the pty slaves the tree
// holds whose master is outside it: a container's terminal, whose master
// runc's caller keeps (--console-socket). Each is saved as a pair without a
// master file; restore makes a new pair in the tree's own devpts and hands
// the master to the caller. Run after scan, which found the tree's pairs.
func (pt *ptyTable) scanOrphans(procs []*process) error {
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
			index, ok := ptsIndex(st.Rdev)
			if !ok {
				continue
			}
			if pair := pt.owned[index]; pair != nil {
				// The tree's own pair (its slave in cryo's devpts), or an
				// orphan seen already; the same index in two devpts
				// instances cannot be told apart in the image.
				if pair.orphanDev != st.Dev && (pair.orphanDev != 0 || st.Dev != pt.devpts) {
					return fmt.Errorf("process %d fd %d: pty %d of two devpts instances: not supported", p.pid, fd, index)
				}
				continue
			}
			if err := pt.addOrphan(p, fd, index, &st, procs); err != nil {
				return fmt.Errorf("process %d fd %d: orphan pty %d: %w", p.pid, fd, index, err)
			}
		}
	}
	return nil
}

// addOrphan reads an orphan slave's settings through a copy of its
// descriptor (the master is out of reach). The session it controls and
// its foreground group are read from the processes whose controlling
// terminal it is (TIOCGSID answers on a slave only for its own session).
func (pt *ptyTable) addOrphan(p *process, fd int, index uint32, st *unix.Stat_t, procs []*process) error {
	c, err := proc.CopyFd(p.pid, fd)
	if err != nil {
		return err
	}
	defer unix.Close(c)
	pair := &ptyPair{index: index, slaveRdev: st.Rdev, masterRdev: unix.Mkdev(ptmxMajor, ptmxMinor), orphanDev: st.Dev,
		slaveUID: st.Uid, slaveGID: st.Gid, haveSlaveOwner: true}
	if err := pair.readSettings(c); err != nil {
		return err
	}
	for _, q := range procs {
		if !q.zombie && uint64(q.stat.TtyNr) == st.Rdev && q.stat.Session == q.pid {
			pair.sid = uint32(q.pid)
			if q.stat.Tpgid > 0 {
				pair.pgrp = uint32(q.stat.Tpgid)
			}
		}
	}
	pt.owned[index] = pair
	pt.order = append(pt.order, index)
	return nil
}
