package restore

import (
	"fmt"
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
	if u.ext.SetgroupsDeny {
		if err := stub.setHostGroups(u, nil, root.c.cores[0].GetThreadCore().GetCreds().GetGroups()); err != nil {
			return err
		}
	}
	if err := asOwnerOf(stub, u, nil); err != nil {
		return fmt.Errorf("restore pid %d: stub: %w", root.c.pid, err)
	}
	return nil
}
