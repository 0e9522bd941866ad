package restore

import (
	"fmt"
	"strconv"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Pid namespaces nested below the tree's root, as sandboxes make them
// (bubblewrap's --unshare-pid, Chromium's zygote, testdata/sandbox.c): a
// process of the tree clones a child with CLONE_NEWUSER|CLONE_NEWPID. The
// new pid namespace belongs to the user namespace its init is born in,
// which is a child of its parent's: so the init can only be cloned once
// its parent is in its own user namespace, at the end of phase one, and
// then with the ids that parent may choose (set_tid needs
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE over the owner of each pid
// namespace level it sets).

// startsNestedPidNs tells whether child is the init of a pid namespace
// below its parent's, not the tree root's.
func (r *restorer) startsNestedPidNs(child *process) bool {
	return child.parent != nil && !child.c.zombie && (child.c.nsPids != nil || child.c.nestedPids != nil) &&
		pidNsOf(child) != pidNsOf(child.parent)
}

// deferNested sets aside s, the init of a nested pid namespace, and its
// subtree, until its parent is in place.
func (r *restorer) deferNested(s *process) {
	if r.nested == nil {
		r.nested = map[*process]bool{}
	}
	r.later = append(r.later, s)
	var mark func(p *process)
	mark = func(p *process) {
		r.nested[p] = true
		for _, c := range p.children {
			mark(c)
		}
	}
	mark(s)
}

// buildNested makes every nested pid namespace: its parent, now in its
// namespaces, clones the init (cloneNestedInit), which builds its subtree
// as build does the tree's; then each of them enters its namespaces.
func (r *restorer) buildNested(creators map[string]map[uint32]*process) error {
	for i := 0; i < len(r.later); i++ {
		s := r.later[i]
		if err := r.cloneNestedInit(s, creators); err != nil {
			return err
		}
		if err := r.build(s); err != nil {
			return err
		}
		var sub []*process
		for _, p := range r.procs {
			if r.nested[p] && p.leader != nil && under(p, s) {
				sub = append(sub, p)
			}
		}
		if err := r.setGroups(sub); err != nil {
			return err
		}
		for _, p := range sub {
			if err := r.enterOwn(p, creators); err != nil {
				return err
			}
		}
	}
	return nil
}

// under tells whether p is s or a descendant of it.
func under(p, s *process) bool {
	for ; p != nil; p = p.parent {
		if p == s {
			return true
		}
	}
	return false
}

// cloneNestedInit makes s, the init of a nested pid namespace, from its
// parent: with CLONE_NEWPID, and CLONE_NEWUSER when s has a user
// namespace of its own, which then owns the pid namespace. The parent
// takes the owner's ids first, keeping its capabilities (its own
// credentials are set in phase two anyway).
func (r *restorer) cloneNestedInit(s *process, creators map[string]map[uint32]*process) error {
	p := s.parent
	pidns := pidNsOf(s)
	owner, ok := r.snap.ns.pids[pidns]
	if !ok {
		return fmt.Errorf("restore pid %d: no image of its pid namespace %d", s.c.pid, pidns)
	}
	userOf := func(x *process) uint32 {
		id := r.nsIDOf(x, "user")
		if r.snap.ns.users[id] == nil {
			return 0 // cryo's
		}
		return id
	}
	flags := uint64(unix.CLONE_NEWPID)
	mine, parents := userOf(s), userOf(p)
	var u *usernsImage
	if mine != parents {
		u = r.snap.ns.users[mine]
		if owner != mine || u.ext.Parent != parents {
			return fmt.Errorf("restore pid %d: its pid namespace belongs to user namespace %d and its user namespace %d is a child of %d, not of its parent's (%d): not supported", s.c.pid, owner, mine, u.ext.Parent, parents)
		}
		if err := asOwnerOf(p, u, r.snap.ns.users[parents]); err != nil {
			return fmt.Errorf("restore pid %d: %w", s.c.pid, err)
		}
		flags |= unix.CLONE_NEWUSER
	} else if owner != parents {
		return fmt.Errorf("restore pid %d: its pid namespace belongs to user namespace %d, neither its own nor its parent's: not supported", s.c.pid, owner)
	}
	s.late = p
	if err := p.clone(s, flags, uint64(unix.SIGCHLD)); err != nil {
		return err
	}
	s.userns = p.userns
	if u != nil {
		if err := r.writeUsernsMaps(s, u, r.snap.ns.users[parents], creators["user"]); err != nil {
			return err
		}
		s.userns = u
		creators["user"][u.id] = s
	}
	r.logf("restore pid %d: init of nested pid namespace %d, cloned by %d", s.c.pid, pidns, p.c.pid)
	return nil
}

// asOwnerOf gives p the ids that user namespace u is created with, its
// owner's uid and gid 0 (as parent, the namespace p is in, sees them),
// keeping its capabilities (SECBIT_NO_SETUID_FIXUP): a clone with
// CLONE_NEWUSER makes a namespace owned by the cloner's euid, and set_tid
// checks the cloner's capabilities.
func asOwnerOf(p *process, u, parent *usernsImage) error {
	owner, gid := u.ext.Owner, uint32(0)
	if parent != nil {
		owner = parent.uidMap.ToInside(owner)
		if len(parent.gidMap) > 0 {
			gid = parent.gidMap[0].Inside
		}
	}
	t := p.leader
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbitNoSetuidFixup); err != nil {
		return fmt.Errorf("process %d: keep its capabilities: %w", p.c.pid, err)
	}
	if _, err := t.Syscall(unix.SYS_SETRESGID, uint64(gid), uint64(gid), uint64(gid)); err != nil {
		return fmt.Errorf("process %d: user namespace %d: become gid %d: %w", p.c.pid, u.id, gid, err)
	}
	if _, err := t.Syscall(unix.SYS_SETRESUID, uint64(owner), uint64(owner), uint64(owner)); err != nil {
		return fmt.Errorf("process %d: user namespace %d: become its owner %d: %w", p.c.pid, u.id, owner, err)
	}
	// Changing ids made p non-dumpable, which its child inherits: its
	// /proc files would be root's, and its maps could not be written.
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil {
		return fmt.Errorf("process %d: dumpable: %w", p.c.pid, err)
	}
	return nil
}

// movedLevelWriter is, for a process of a nested pid namespace in a moved
// tree, the process that sets ns_last_pid of the new pid namespace one
// level up: its init (pidnsinit.go), blank until the tree is let go, in
// that namespace and in its owner with every capability. Only the tree's
// processes, all stopped, live there: no other task can take the id
// meanwhile.
func (p *process) movedLevelWriter() *process {
	return p.r.init
}

// setMovedLevel makes id the next one the new pid namespace of a moved
// tree gives, for a task of a nested pid namespace that p clones.
func (p *process) setMovedLevel(id uint32) error {
	w := p.movedLevelWriter()
	if w == nil || w.leader == nil {
		return fmt.Errorf("restore pid %d: no process to set the pid namespace's next id", p.c.pid)
	}
	if err := w.remote().WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(int(id)-1))); err != nil {
		return fmt.Errorf("restore pid %d: set the next id of its pid namespace's parent to %d (from %d): %w", p.c.pid, id, w.c.pid, err)
	}
	return nil
}

// cloneInMovedNested clones child, of a nested pid namespace in a moved
// tree, from p in the same namespace: its id there by set_tid, the one a
// level up through that namespace's ns_last_pid (setMovedLevel), the
// outermost by the kernel. It returns the id p sees.
func (p *process) cloneInMovedNested(child *process, flags, exitSignal uint64) (uint64, error) {
	if err := p.setMovedLevel(child.c.nsPids[0]); err != nil {
		return 0, err
	}
	if _, err := p.putAt(128, putU64(nil, uint64(child.c.nestedPids[0]))); err != nil {
		return 0, err
	}
	return p.cloneSetTid(flags, exitSignal, 1)
}

// checkMovedLevel checks that the task tid (cryo's view) got want one
// level below cryo's.
func checkMovedLevel(pid, tid int, want uint32) error {
	st, err := proc.ReadTaskStatus(pid, tid)
	if err != nil {
		return err
	}
	if len(st.NSpid) < 2 || uint32(st.NSpid[1]) != want {
		return fmt.Errorf("task %d got ids %v, want %d one level below cryo's", tid, st.NSpid, want)
	}
	return nil
}
