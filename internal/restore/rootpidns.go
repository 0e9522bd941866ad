package restore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// secbitNoSetuidFixup keeps a process's capabilities when its uids change
// (SECBIT_NO_SETUID_FIXUP, linux/securebits.h).
const secbitNoSetuidFixup = 1 << 2

// rootBornInUserns tells whether the root of a tree with its own pid
// namespace is to be cloned with CLONE_NEWUSER|CLONE_NEWPID straight from
// the stub, which stays in cryo's user namespace: then clone3's set_tid
// chooses both of the root's ids, 1 inside and its PID outside, and no
// other process of the machine can take the outer one first (through
// ns_last_pid it could). It needs a cryo that may choose PIDs in its own
// pid namespace (not movedPids), and a user namespace that owns the root's
// pid namespace and is a child of cryo's: a clone makes the new user
// namespace a child of the cloner's.
func (r *restorer) rootBornInUserns(root *process) (uint32, *usernsImage) {
	owner, u := r.ownerUserns(root)
	if r.movedPids || r.newPidNS || owner == 0 || u == nil || u.ext.Parent != 0 {
		return 0, nil
	}
	return owner, u
}

// stubAsOwner gives the stub the credentials the root's user namespace
// is created with, its owner's uid and the supplementary groups it keeps,
// while it keeps every capability in cryo's user namespace
// (SECBIT_NO_SETUID_FIXUP): clone3 checks the cloner's capability over
// the owner of every pid namespace level that set_tid sets, and the new
// user namespace belongs to the cloner's euid.
func (r *restorer) stubAsOwner(stub, root *process, u *usernsImage) error {
	t := stub.leader
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbitNoSetuidFixup); err != nil {
		return fmt.Errorf("restore pid %d: keep the stub's capabilities: %w", root.c.pid, err)
	}
	if u.ext.SetgroupsDeny {
		if err := stub.setHostGroups(u, nil, root.c.cores[0].GetThreadCore().GetCreds().GetGroups()); err != nil {
			return err
		}
	}
	if _, err := t.Syscall(unix.SYS_SETRESGID, 0, 0, 0); err != nil {
		return fmt.Errorf("restore pid %d: user namespace %d: become gid 0: %w", root.c.pid, u.id, err)
	}
	owner := uint64(u.ext.Owner)
	if _, err := t.Syscall(unix.SYS_SETRESUID, owner, owner, owner); err != nil {
		return fmt.Errorf("restore pid %d: user namespace %d: become its owner %d: %w", root.c.pid, u.id, owner, err)
	}
	// Changing ids made the stub non-dumpable, which its child inherits:
	// its /proc files would be root's, and cryo could not write its maps.
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil {
		return fmt.Errorf("restore pid %d: dumpable: %w", root.c.pid, err)
	}
	return nil
}
