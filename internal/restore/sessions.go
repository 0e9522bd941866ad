package restore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Sessions and process groups that were made, left and made again.
//
// A process gets its session from its parent at fork, or makes its own
// with setsid. So a child that is in neither its own session nor its
// parent's was forked before its parent called setsid: restore forks it
// (with its subtree) before the parent's setsid too. Its subtree counts:
// a child that leads its own session but has a descendant left in the
// old one needed the old one when it was forked.
//
// A process group lives as long as a process is in it, and its id is its
// maker's pid. The maker may have joined another group of the session
// since, leaving members behind. Restore makes such a group again with
// the process of its id (setpgid(0, 0)), lets the members join, and moves
// that process to its own group last.
//
// Still refused (one line each): a session or group whose leader is gone
// and no helper stands for (its members' parents are elsewhere), and a
// session leader that must fork a child into its old session while it
// also takes a terminal.

// inheritedSession returns the session p must find in its parent when it
// is forked, if any: its own session unless it leads it, otherwise the one
// a descendant was left in.
func (p *process) inheritedSession() (uint32, bool) {
	if p.c.zombie || p.c.helper {
		return 0, false
	}
	sid := p.c.tree.GetSid()
	if int(sid) != p.c.pid {
		return sid, true
	}
	for _, c := range p.children {
		if s, ok := c.inheritedSession(); ok && int(s) != p.c.pid {
			return s, true
		}
	}
	return 0, false
}

// splitBySession splits p's children into those forked before p's setsid
// (they need the session p had before) and the others. Only a session
// leader has early children.
func (p *process) splitBySession() (early, late []*process) {
	if p.c.zombie || int(p.c.tree.GetSid()) != p.c.pid {
		return nil, p.children
	}
	for _, c := range p.children {
		if s, ok := c.inheritedSession(); ok && int(s) != p.c.pid {
			early = append(early, c)
		} else {
			late = append(late, c)
		}
	}
	return early, late
}

// setsid makes p the leader of a new session.
func (p *process) setsid() error {
	if _, err := p.leader.Syscall(unix.SYS_SETSID); err != nil {
		return fmt.Errorf("restore pid %d: setsid: %w", p.c.pid, err)
	}
	return nil
}

// leadLeftGroups makes again, with the process of its id, every group
// whose id is a live process of the tree that is now in another group,
// and returns those processes. selfOf is a process's id as its calls see
// it, pgidOf its group.
func (r *restorer) leadLeftGroups(procs []*process, selfOf func(*process) uint64, pgidOf func(*process) uint64) (map[*process]bool, error) {
	wanted := map[uint64]bool{}
	for _, p := range procs {
		if !p.c.zombie && p.leader != nil {
			wanted[pgidOf(p)] = true
		}
	}
	left := map[*process]bool{}
	for _, p := range procs {
		if p.c.zombie || p.leader == nil {
			continue
		}
		self := selfOf(p)
		if !wanted[self] || pgidOf(p) == self {
			continue
		}
		if _, err := p.leader.Syscall(unix.SYS_SETPGID, 0, 0); err != nil {
			return nil, fmt.Errorf("restore pid %d: make again process group %d, which it left: %w", p.c.pid, self, err)
		}
		left[p] = true
	}
	return left, nil
}

// checkEarlySession refuses a session leader that forks children into its
// old session and also takes a terminal: its files are opened before its
// setsid then, and taking the terminal needs the session.
func (r *restorer) checkEarlySession(p *process) error {
	terminal := r.files.controls[p] != nil
	for _, j := range r.files.jobs[p] {
		terminal = terminal || j.ctty || j.pty != nil
	}
	if terminal {
		return fmt.Errorf("restore pid %d: it forked children before its setsid that stayed in its old session, and it holds a terminal of its new one: not supported yet", p.c.pid)
	}
	return nil
}

// adoptSessionMembers gives each session helper (a helper at the id of a
// session whose leader is gone) the members it must fork: the children of
// its parent that need its session at fork. Once they are forked it
// exits, and they are reparented to that parent, a child subreaper (as
// they were when their leader exited).
func (r *restorer) adoptSessionMembers() {
	for _, h := range r.procs {
		if !h.c.helper || int(h.c.tree.GetSid()) != h.c.pid || h.parent == nil {
			continue
		}
		var stay []*process
		for _, c := range h.parent.children {
			if s, ok := c.inheritedSession(); ok && int(s) == h.c.pid {
				h.children = append(h.children, c)
			} else {
				stay = append(stay, c)
			}
		}
		h.parent.children = stay
	}
}

// handOverMembers makes sure the members a session helper forked go to
// its parent when it exits: the parent must be a child subreaper, as the
// image says it was.
func (p *process) handOverMembers() error {
	if len(p.children) == 0 {
		return nil
	}
	par := p.parent
	if par.c.zombie || len(par.c.cores) == 0 || !par.c.cores[0].GetTc().GetChildSubreaper() {
		return fmt.Errorf("restore pid %d: session %d has no leader and its members' parent %d is no child subreaper: not supported", p.children[0].c.pid, p.c.pid, par.c.pid)
	}
	if _, err := par.leader.Syscall(unix.SYS_PRCTL, unix.PR_SET_CHILD_SUBREAPER, 1); err != nil {
		return fmt.Errorf("restore pid %d: child subreaper: %w", par.c.pid, err)
	}
	return nil
}
