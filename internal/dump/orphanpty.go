package dump

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// scanOrphans finds, for CRIU's orphan_pts_master, the pty slaves the tree
// holds whose master is outside it: a container's terminal, whose master
// runc's caller keeps (--console-socket). Each is saved as a pair without a
// master file; restore makes a new pair in the tree's own devpts and hands
// the master to the caller. Run after scan, which found the tree's pairs.
func (pt *ptyTable) scanOrphans(procs []*process) error {
	return eachCharDev(procs, func(p *process, fd int, st *unix.Stat_t) error {
		index, ok := fdkind.PtsIndex(st.Rdev)
		if !ok {
			return nil
		}
		if pair := pt.owned[index]; pair != nil {
			// The tree's own pair (its slave in cryo's devpts), or an
			// orphan seen already; the same index in two devpts
			// instances cannot be told apart in the image.
			if pair.orphanDev != st.Dev && (pair.orphanDev != 0 || st.Dev != pt.devpts) {
				return fmt.Errorf("process %d fd %d: pty %d of two devpts instances: not supported", p.pid, fd, index)
			}
			return nil
		}
		if err := pt.addOrphan(p, fd, index, st, procs); err != nil {
			return fmt.Errorf("process %d fd %d: orphan pty %d: %w", p.pid, fd, index, err)
		}
		return nil
	})
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
	pair := &ptyPair{PtyInfo: fdkind.PtyInfo{Index: index, SlaveRdev: st.Rdev, MasterRdev: fdkind.PtmxRdev(),
		SlaveUID: st.Uid, SlaveGID: st.Gid, HaveSlaveOwner: true}, orphanDev: st.Dev}
	if err := pair.ReadSettings(c); err != nil {
		return err
	}
	for _, q := range procs {
		if !q.zombie && uint64(q.stat.TtyNr) == st.Rdev && q.stat.Session == q.pid {
			pair.Sid = uint32(q.pid)
			if q.stat.Tpgid > 0 {
				pair.Pgrp = uint32(q.stat.Tpgid)
			}
		}
	}
	pt.owned[index] = pair
	pt.order = append(pt.order, index)
	return nil
}
