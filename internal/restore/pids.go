package restore

import (
	"errors"
	"fmt"
	"os"

	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// Capabilities that let clone3's set_tid and ns_last_pid choose PIDs in a
// pid namespace owned by cryo's user namespace.
const (
	capSysAdmin          = 21
	capCheckpointRestore = 40
)

// mustMovePids tells whether the tree's PIDs can be chosen only inside a
// pid namespace of its own (moved): cryo lacks CAP_SYS_ADMIN and
// CAP_CHECKPOINT_RESTORE, as when the user who owns the tree's user
// namespace restores it. A tree that was in cryo's pid namespace then gets
// a new one (newNS), owned by the root's user namespace, where each
// process has its old PID; without a user namespace of its own it cannot
// be restored that way.
func mustMovePids(s *snapshot) (moved, newNS bool, err error) {
	choose, err := choosesPids()
	if err != nil {
		return false, false, err
	}
	if choose {
		return false, false, nil
	}
	root := s.procs[0]
	if root.nsPids != nil {
		return true, false, nil
	}
	if s.ns.users[root.cores[0].GetIds().GetUserNsId()] == nil {
		return false, false, fmt.Errorf("process %d was in the initial pid namespace and the initial user namespace, where only root (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) can choose PIDs: restore it as root", root.pid)
	}
	// Inside the new namespace every id is the old one; a process of a
	// pid namespace nested below the root keeps its ids there, one level
	// further down.
	for _, c := range s.procs {
		c.nestedPids = c.nsPids
		c.nsPids = append([]uint32(nil), c.tree.GetThreads()...)
	}
	return true, true, nil
}

// choosesPids reports whether cryo may choose PIDs in its own pid
// namespace: it has CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the user
// namespace that owns it. Capabilities in a user namespace of cryo's own
// do not count: a user runs runc restore in one (unshare
// --map-current-user --keep-caps --mount), since runc mounts the rootfs
// itself, and cryo inherits its capabilities there.
func choosesPids() (bool, error) {
	st, err := proc.ReadStatus(os.Getpid())
	if err != nil {
		return false, err
	}
	if st.CapEff&(1<<capSysAdmin|1<<capCheckpointRestore) == 0 {
		return false, nil
	}
	owner, err := userns.OwnerOf(os.Getpid(), "pid")
	if errors.Is(err, unix.EPERM) {
		return false, nil // owned by an ancestor of cryo's user namespace
	}
	if err != nil {
		return false, fmt.Errorf("owner of cryo's pid namespace: %w", err)
	}
	var own unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &own); err != nil {
		return false, err
	}
	return owner == own.Ino, nil
}

// outerTid finds the TID in cryo's pid namespace of the thread of process
// pid whose id in the process's own pid namespace is inner.
func outerTid(pid int, inner uint32) (int, error) {
	tids, err := proc.Tasks(pid)
	if err != nil {
		return 0, err
	}
	status := func(tid int) (*proc.Status, error) { return proc.ReadTaskStatus(pid, tid) }
	if tid, ok := byInnerID(tids, status, uint64(inner)); ok {
		return tid, nil
	}
	return 0, fmt.Errorf("process %d: no thread is %d in its pid namespace", pid, inner)
}

// byInnerID returns the one of ids (PIDs or TIDs in cryo's namespace)
// whose id in its own pid namespace (NSpid's last field) is inner.
func byInnerID(ids []int, status func(id int) (*proc.Status, error), inner uint64) (int, bool) {
	for _, id := range ids {
		st, err := status(id)
		if err == nil && len(st.NSpid) > 1 && uint64(st.NSpid[len(st.NSpid)-1]) == inner {
			return id, true
		}
	}
	return 0, false
}

// pidSeenBy is p's PID as process q sees it, to inject calls such as
// pidfd_open into q: its id in their common pid namespace (cryo's, or the
// tree's own). A process of another pid namespace than q's is refused:
// q may not see it.
func (p *process) pidSeenBy(q *process) (uint64, error) {
	switch {
	case q.c.nsPids == nil:
		// cryo's pid namespace sees every process of the tree.
		return uint64(p.pid), nil
	case p.c.nsPids != nil && pidNsOf(p) == pidNsOf(q):
		return uint64(p.c.innerID()), nil
	case p.c.nestedPids != nil && q.c.nestedPids == nil:
		// q is in the new pid namespace a moved tree got, p in one
		// nested in it: q sees p at its id one level up.
		return uint64(p.c.nsPids[0]), nil
	}
	return 0, fmt.Errorf("process %d is not in the pid namespace of process %d", p.c.pid, q.c.pid)
}

// pidInProcOf is p's PID in the /proc that q sees: the one of q's pid
// namespace if q is in a mount namespace of the tree that mounted proc on
// /proc (as unshare --mount-proc does), cryo's otherwise.
func (r *restorer) pidInProcOf(p, q *process) (uint64, error) {
	for _, m := range r.snap.ns.mnts[q.c.cores[0].GetIds().GetMntNsId()] {
		if m.GetFstype() == uint32(mountns.FstypeProc) && !m.GetExtMount() && m.GetMountpoint() == "/proc" && q.c.nsPids != nil {
			return p.pidSeenBy(q)
		}
	}
	return uint64(p.pid), nil
}

// innerPids maps the image's PID of each process of the tree to it; root
// is the tree's root.
type innerPids struct {
	byPid map[uint32]*process
	root  *process
}

func innerPidsOf(procs []*process) innerPids {
	inner := innerPids{byPid: map[uint32]*process{}, root: procs[0]}
	for _, q := range procs {
		inner.byPid[uint32(q.c.pid)] = q
	}
	return inner
}

// seenBy names pid, an id of the image (a process, group or session), as
// p's pid namespace does: translated when p is inside one; 0 when p's
// namespace cannot see it (a process above a nested pid namespace).
func (inner innerPids) seenBy(p *process, pid uint32) uint32 {
	q, ok := inner.byPid[pid]
	nested := pidNsOf(p) != pidNsOf(inner.root)
	switch {
	case p.c.nsPids == nil:
		return pid
	case nested && (!ok || q.c.nsPids == nil):
		return 0
	case !ok || q.c.nsPids == nil:
		return pid
	case pidNsOf(q) == pidNsOf(p):
		return q.c.innerID()
	case q.c.nestedPids != nil && p.c.nestedPids == nil:
		// p is in the new pid namespace a moved tree got, q in one
		// nested in it: one level up.
		return q.c.nsPids[0]
	}
	return 0
}

// innerID is c's PID in its own pid namespace, the innermost.
func (c *checkpoint) innerID() uint32 {
	if c.nestedPids != nil {
		return c.nestedPids[0]
	}
	if c.nsPids != nil {
		return c.nsPids[0]
	}
	return uint32(c.pid)
}

// pidNsOf is the image's id of p's pid namespace; a dead process (a
// zombie, a group helper) has its parent's.
func pidNsOf(p *process) uint32 {
	for ; p != nil; p = p.parent {
		if len(p.c.cores) > 0 && p.c.cores[0].GetIds() != nil {
			return p.c.cores[0].GetIds().GetPidNsId()
		}
	}
	return 0
}
