package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// phase1Scratch is the part of the stub's stack used as scratch memory while
// the tree is built: below the stack pointer, inside the stack mapping the
// kernel set up for execve (at least 128 KiB), unused since no stub code runs.
const (
	phase1Below = 64 << 10
	phase1Size  = 60 << 10
)

// createTree is phase one: the stub, the root at its PID, and every process
// cloned by its parent at its PID, each opening the files its subtree
// shares before cloning its children, so that they inherit them.
func (r *restorer) createTree() error {
	byPid := map[int]*process{}
	for i, c := range r.snap.procs {
		p := &process{r: r, c: c, pid: c.pid}
		r.procs = append(r.procs, p)
		byPid[c.pid] = p
		if i > 0 {
			p.parent = byPid[int(c.tree.GetPpid())]
			p.parent.children = append(p.parent.children, p)
		}
	}
	r.adoptSessionMembers()
	plan, err := planFiles(r.snap, r.procs)
	if err != nil {
		return err
	}
	plan.dir = r.dir
	plan.tcpClose = r.opts.TCPClose
	r.files = plan
	plan.orphanMaster = r.opts.OrphanPtsMaster
	if err := plan.checkOrphanPtys(); err != nil {
		return err
	}
	if err := r.planCow(); err != nil {
		return err
	}
	root := r.procs[0]
	if err := r.createRoot(root); err != nil {
		return err
	}
	if err := r.build(root); err != nil {
		return err
	}
	if err := r.files.linkUnix(); err != nil {
		return err
	}
	if err := r.setGroups(r.procs); err != nil {
		return err
	}
	if err := r.files.setForeground(r.procs); err != nil {
		return err
	}
	if err := r.enterNamespaces(); err != nil {
		return err
	}
	if err := r.files.checkOrphansMade(); err != nil {
		return err
	}
	for _, p := range r.procs {
		if p.c.helper {
			if err := p.dropHelper(); err != nil {
				return err
			}
		} else if p.c.zombie {
			if err := p.becomeZombie(); err != nil {
				return err
			}
		}
	}
	r.logf("created %d processes", len(r.procs))
	return nil
}

// createRoot starts the stub and clones the root from it at its PID.
func (r *restorer) createRoot(root *process) error {
	pid := root.c.pid
	stub, err := r.tr.StartStub(r.opts.StubPath, []string{ptrace.StubName}, r.stubFiles())
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", pid, err)
	}
	r.stub = stub
	// Refuse early a CPU that lacks an XSAVE component the dumped threads
	// ran with: their registers could not be put back.
	template, err := stub.Xstate()
	if err != nil {
		return err
	}
	if have := cpu.Xfeatures(template); have != 0 && r.snap.xfeatures&^have != 0 {
		return fmt.Errorf("restore pid %d: the image uses CPU state components %#x this CPU lacks (has %#x)", pid, r.snap.xfeatures&^have, have)
	}
	insn, err := remote.SyscallInsn(stub.Pid)
	if err != nil {
		return err
	}
	stub.SetSyscallAddr(insn)
	regs, err := stub.Regs()
	if err != nil {
		return err
	}
	stubScratch := &process{r: r, c: &checkpoint{pid: stub.Pid}, pid: stub.Pid, leader: stub,
		scratch: (stackPointer(&regs) - phase1Below) &^ 4095, scratchSize: phase1Size}
	// cryo becomes the root's parent, not the stub; clone3 refuses
	// CLONE_PARENT with an exit signal.
	if err := r.raiseNofile(stubScratch); err != nil {
		return err
	}
	if err := r.newEmptyNet(stubScratch); err != nil {
		return err
	}
	flags := uint64(unix.CLONE_PARENT)
	// bornIn, u: the user namespace the root is cloned with, if any.
	var bornIn uint32
	var u *usernsImage
	if root.c.nsPids != nil {
		// The stub opens every file of the tree while it is still root in
		// cryo's namespaces; the root inherits them, and the rest of the
		// tree from it. Inside the user namespace it could not. But
		// /dev/tty opens the opener's controlling terminal: those files
		// stay with a process of the session, which opens them once its
		// leader took the pair (the stub's terminal would be cryo's).
		//
		// Unix sockets stay with their process too: only in the tree's
		// pid namespace does SO_PEERCRED name their maker (the stub's
		// pid reads as 0 there). Not those whose saved peer ids the
		// tree's user namespace does not map (made by root before it
		// entered): only the stub, outside, can take those.
		//
		// Without root, every file stays with its process: the stub, the
		// user without capabilities, could open nothing the tree's
		// processes cannot, while inside the tree's user namespace they
		// have its capabilities over the files of the user's subordinate
		// ids, and only there can they take subordinate peer ids.
		rootless := os.Geteuid() != 0
		_, owner := r.ownerUserns(root)
		for _, p := range r.procs {
			var stay []fileJob
			for _, j := range r.files.jobs[p] {
				if j.ctty || rootless || (r.files.isUnix(j) && r.files.peerIDsMapped(j, owner)) {
					stay = append(stay, j)
				} else {
					r.files.jobs[stubScratch] = append(r.files.jobs[stubScratch], j)
					if r.files.owners == nil {
						r.files.owners = map[uint32]*process{}
					}
					for _, id := range j.ids {
						r.files.owners[id] = p
					}
				}
			}
			r.files.jobs[p] = stay
		}
		if err := r.files.openIn(stubScratch); err != nil {
			return err
		}
		// The root is the init of its own pid namespace, which must belong
		// to the right user namespace. Root clones it with that user
		// namespace at once (CLONE_NEWUSER), both ids chosen by set_tid
		// (rootpidns.go); otherwise the stub enters that namespace first,
		// and the pid namespace comes with the root (CLONE_NEWPID).
		if bornIn, u = r.rootBornInUserns(root); u != nil {
			if err := r.stubAsOwner(stubScratch, root, u); err != nil {
				return err
			}
			flags |= unix.CLONE_NEWUSER
		} else if err := r.stubIntoOwner(stubScratch, root); err != nil {
			return err
		}
		flags |= unix.CLONE_NEWPID
	}
	parent, exitSignal := stubScratch, uint64(0)
	if r.newPidNS {
		init, err := r.newInit(stubScratch, flags)
		if err != nil {
			return err
		}
		r.init = init
		parent, flags, exitSignal = init, 0, uint64(unix.SIGCHLD)
	}
	if err := parent.clone(root, flags, exitSignal); err != nil {
		return err
	}
	if u != nil {
		if err := r.writeUsernsMaps(root, u, nil, nil); err != nil {
			return err
		}
		r.rootUserns = bornIn
	}
	root.userns = r.snap.ns.users[r.rootUserns]
	// The stub goes: the root holds what it made.
	for id, p := range r.files.madeIn {
		if p == stubScratch {
			r.files.madeIn[id] = root
		}
	}
	r.stub.Kill()
	r.stub.WaitExit()
	r.stub = nil
	return nil
}

// raiseNofile makes room for the temporary descriptors of shared files,
// which sit above every restored one (children inherit the limit; the
// image's limits are set later).
func (r *restorer) raiseNofile(p *process) error {
	pid := p.c.pid
	lim, err := p.put(make([]byte, 16))
	if err != nil {
		return err
	}
	if _, err := p.leader.Syscall(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, lim); err != nil {
		return fmt.Errorf("restore pid %d: read RLIMIT_NOFILE: %w", pid, err)
	}
	b := make([]byte, 16)
	if err := ptrace.ReadMem(p.leader.Pid, lim, b); err != nil {
		return err
	}
	hard := binary.LittleEndian.Uint64(b[8:])
	if need := r.files.base + uint64(r.files.tempCount()) + 1; need > hard {
		return fmt.Errorf("restore pid %d: %d descriptors needed, RLIMIT_NOFILE allows %d", pid, need, hard)
	}
	copy(b[:8], b[8:])
	if _, err := p.put(b); err != nil {
		return err
	}
	if _, err := p.leader.Syscall(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, lim, 0); err != nil {
		return fmt.Errorf("restore pid %d: raise RLIMIT_NOFILE: %w", pid, err)
	}
	return nil
}

// clone injects clone3 into p to create child at its PID, and adopts it.
func (p *process) clone(child *process, flags, exitSignal uint64) error {
	pid := child.c.pid
	var got uint64
	var err error
	if child.c.nsPids == nil {
		args := ptrace.CloneArgs{Flags: flags, ExitSignal: exitSignal, SetTid: p.scratch + 128, SetTidSize: 1}
		if _, err := p.put(args.Bytes()); err != nil {
			return err
		}
		if _, err := p.putAt(128, putU64(nil, uint64(pid))); err != nil {
			return err
		}
		got, err = p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
	} else {
		// In a pid namespace owned by another user namespace only the
		// inner id can be chosen (set_tid); the outer one comes from
		// ns_last_pid. The init of the namespace is always 1.
		args := ptrace.CloneArgs{Flags: flags, ExitSignal: exitSignal}
		if flags&unix.CLONE_NEWPID == 0 {
			args.SetTid, args.SetTidSize = p.scratch+128, 1
		}
		if _, err := p.putAt(128, putU64(nil, uint64(child.c.nsPids[0]))); err != nil {
			return err
		}
		switch {
		case child.c.nestedPids != nil && flags&unix.CLONE_NEWPID != 0:
			// The init of a nested pid namespace in a moved tree: p
			// is in the new pid namespace, owned by its user
			// namespace, and may choose both ids below cryo's.
			got, err = p.cloneBothLevels(1, child.c.nsPids[0], flags, exitSignal)
		case child.c.nestedPids != nil:
			got, err = p.cloneInMovedNested(child, flags, exitSignal)
		case p.r.movedPids:
			// Outside, the kernel picks.
			if _, err = p.put(args.Bytes()); err == nil {
				got, err = p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
			}
		case p.inCryoUserns():
			// The cloner is still in cryo's user namespace, which
			// (or an ancestor of which) owns both pid namespaces:
			// both ids are chosen at once, no other process can
			// take the outer one first.
			got, err = p.cloneBothLevels(child.c.nsPids[0], uint32(pid), flags, exitSignal)
		default:
			got, err = p.cloneAtLastPidRetry(child, args.Bytes())
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, unix.EEXIST):
			return fmt.Errorf("restore pid %d: the pid is taken", pid)
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("restore pid %d: not allowed to choose the pid (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace): %w", pid, err)
		}
		return fmt.Errorf("restore pid %d: clone3: %w", pid, err)
	}
	// clone3 answers in the parent's pid namespace.
	want := uint64(pid)
	switch {
	case p.c.nestedPids != nil:
		want = uint64(child.c.nestedPids[0])
	case p.c.nsPids != nil:
		want = uint64(child.c.nsPids[0])
	}
	if got != want && !(p.r.movedPids && p.c.nsPids == nil) {
		return fmt.Errorf("restore pid %d: clone3 created %d, not %d", pid, got, want)
	}
	outer, err := outerPid(p, got)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", pid, err)
	}
	if child.c.nestedPids != nil {
		if err := checkMovedLevel(outer, outer, child.c.nsPids[0]); err != nil {
			return fmt.Errorf("restore pid %d: %w", pid, err)
		}
	}
	child.pid = outer
	t, err := p.r.tr.Adopt(outer, outer)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", pid, err)
	}
	t.SetSyscallAddr(p.leader.SyscallAddr())
	child.leader, child.threads = t, []*ptrace.Tracee{t}
	// A clone shares the parent's layout: the same scratch addresses.
	child.scratch, child.scratchSize = p.scratch, p.scratchSize
	return nil
}

// cloneAtLastPidRetry clones through ns_last_pid until the child gets its
// outer PID: a task created elsewhere on the machine between cryo's write
// and the clone takes the PID first; the child made with the wrong one is
// killed and the clone tried again.
func (p *process) cloneAtLastPidRetry(child *process, args []byte) (uint64, error) {
	pid := child.c.pid
	start := time.Now()
	for try := 0; ; try++ {
		got, err := p.cloneAtLastPid(uint32(pid), args)
		if err != nil {
			return got, err
		}
		outer, err := outerPid(p, got)
		if err != nil {
			return got, err
		}
		if outer == pid {
			return got, nil
		}
		// Kill the child made with another PID (our tracee, in its first
		// stop), reap it in its parent's namespace, and try again.
		p.r.logf("restore pid %d: the PID was taken meanwhile (got %d), trying again", pid, outer)
		stray, err := p.r.tr.Adopt(outer, outer)
		if err != nil {
			return got, err
		}
		stray.Kill()
		stray.WaitExit()
		if p.c.nsPids != nil {
			p.leader.Syscall(unix.SYS_WAIT4, got, 0, unix.WALL, 0)
		}
		if time.Since(start) > lastPidRetryFor {
			return got, fmt.Errorf("restore pid %d: other processes keep taking the PID%s", pid, heldBy(pid))
		}
		// A task still leaving the dumped tree's pid namespace, or a
		// short-lived process of the machine, may hold it for a moment:
		// give it time, a little more each try.
		time.Sleep(retryPause(try))
	}
}

// outerPid converts the PID of a child of p, seen in p's pid namespace
// (the child's may be nested below it), to cryo's.
func outerPid(p *process, pid uint64) (int, error) {
	if p.c.nsPids == nil {
		return int(pid), nil
	}
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return 0, err
	}
	level := len(st.NSpid) - 1
	children, err := proc.ChildrenOf(p.pid)
	if err != nil {
		return 0, err
	}
	for _, c := range children {
		cs, err := proc.ReadStatus(c)
		if err == nil && len(cs.NSpid) > level && uint64(cs.NSpid[level]) == pid {
			return c, nil
		}
	}
	return 0, fmt.Errorf("child %d of %d not found", pid, p.c.pid)
}

// stubIntoOwner makes the stub enter the user namespace that owns the
// root's pid namespace (creating it, as its owner), so that the pid
// namespace the root comes with belongs to it.
func (r *restorer) stubIntoOwner(stub *process, root *process) error {
	owner, u := r.ownerUserns(root)
	if owner == 0 || u == nil {
		return nil
	}
	if u.ext.Parent != 0 {
		return fmt.Errorf("restore pid %d: its pid namespace belongs to a nested user namespace: not supported yet", root.c.pid)
	}
	if u.ext.SetgroupsDeny {
		if err := stub.setHostGroups(u, nil, root.c.cores[0].GetThreadCore().GetCreds().GetGroups()); err != nil {
			return err
		}
	}
	if err := r.createUserns(stub, u, 0, nil); err != nil {
		return err
	}
	r.rootUserns = owner
	return nil
}

// ownerUserns is the user namespace that owns the root's pid namespace,
// its id and image (0 and nil: cryo's).
func (r *restorer) ownerUserns(root *process) (uint32, *usernsImage) {
	owner := r.snap.ns.pids[root.c.cores[0].GetIds().GetPidNsId()]
	if r.newPidNS {
		// The new pid namespace belongs to the root's user namespace.
		owner = root.c.cores[0].GetIds().GetUserNsId()
	}
	return owner, r.snap.ns.users[owner]
}

// build gives p its session, opens the files its subtree shares, writes
// the memory its children inherit (cow.go), and clones its children,
// recursively.
func (r *restorer) build(p *process) error {
	leads := (!p.c.zombie || p.c.helper) && int(p.c.tree.GetSid()) == p.c.pid
	// Children left in the session p had before its setsid are forked
	// before it (sessions.go).
	early, late := p.splitBySession()
	if len(early) > 0 {
		if err := r.checkEarlySession(p); err != nil {
			return err
		}
	}
	if leads && len(early) == 0 {
		if err := p.setsid(); err != nil {
			return err
		}
	}
	if err := r.files.openIn(p); err != nil {
		return err
	}
	// The memory p shares with its children goes in before they fork.
	if err := p.premap(); err != nil {
		return err
	}
	fork := func(children []*process) error {
		for _, child := range children {
			if r.startsNestedPidNs(child) {
				r.deferNested(child)
				continue
			}
			if err := p.clone(child, 0, uint64(unix.SIGCHLD)); err != nil {
				return err
			}
			child.userns, child.late = p.userns, p.late
			if err := r.build(child); err != nil {
				return err
			}
		}
		return nil
	}
	if len(early) > 0 {
		if err := fork(early); err != nil {
			return err
		}
		if leads {
			if err := p.setsid(); err != nil {
				return err
			}
		}
	}
	return fork(late)
}

// setGroups puts every process of procs in its process group, and checks
// sessions. A process in the root's session or group, when the root does
// not lead it, stays in cryo's (a shell job, as with CRIU's -j). Processes
// not made yet (those of nested pid namespaces, see buildNested) are
// left for later.
func (r *restorer) setGroups(procs []*process) error {
	root := r.procs[0]
	rootTree := root.c.tree
	actual := func(p *process, nr uintptr) (uint64, error) {
		v, err := p.leader.Syscall(nr, 0)
		if err != nil {
			return 0, fmt.Errorf("restore pid %d: %w", p.c.pid, err)
		}
		return v, nil
	}
	rootSid, err := actual(root, unix.SYS_GETSID)
	if err != nil {
		return err
	}
	rootPgid, err := actual(root, unix.SYS_GETPGID)
	if err != nil {
		return err
	}
	// Inside a pid namespace ids are its own: translate the saved ones.
	inner := innerPidsOf(r.procs)
	wantFor := func(p *process) func(v, rootV uint32, rootActual uint64) uint64 {
		return func(v, rootV uint32, rootActual uint64) uint64 {
			if pidNsOf(p) != pidNsOf(root) {
				// Nested below the root's pid namespace: the root's
				// group and session, outside, read as 0.
				return uint64(inner.seenBy(p, v))
			}
			if v == rootV && int(rootV) != root.c.pid {
				return rootActual
			}
			return uint64(inner.seenBy(p, v))
		}
	}
	selfOf := func(p *process) uint64 { return uint64(p.c.innerID()) }
	pgidOf := func(p *process) uint64 { return wantFor(p)(p.c.tree.GetPgid(), rootTree.GetPgid(), rootPgid) }
	// A group whose id is a live process that has joined another group
	// since: that process makes it again first, and joins its own group
	// last, once the members are in (sessions.go).
	left, err := r.leadLeftGroups(procs, selfOf, pgidOf)
	if err != nil {
		return err
	}
	// Group leaders first, then the members, then those that left the
	// group of their id.
	for pass := 0; pass < 3; pass++ {
		for _, p := range procs {
			if p.leader == nil {
				continue
			}
			pgid := pgidOf(p)
			self := selfOf(p)
			switch {
			case pass == 0 && pgid != self, pass == 1 && (pgid == self || left[p]), pass == 2 && !left[p]:
				continue
			}
			cur, err := actual(p, unix.SYS_GETPGID)
			if err != nil {
				return err
			}
			if cur == pgid {
				continue
			}
			if _, err := p.leader.Syscall(unix.SYS_SETPGID, 0, pgid); err != nil {
				return fmt.Errorf("restore pid %d: join process group %d: %w (its leader must be a live process of the same session)", p.c.pid, pgid, err)
			}
		}
	}
	for _, p := range procs {
		if p.leader == nil {
			continue
		}
		sid, err := actual(p, unix.SYS_GETSID)
		if err != nil {
			return err
		}
		if w := wantFor(p)(p.c.tree.GetSid(), rootTree.GetSid(), rootSid); sid != w {
			return fmt.Errorf("restore pid %d: session %d cannot be recreated (got %d): its leader is not an ancestor in the tree", p.c.pid, w, sid)
		}
	}
	return nil
}

// becomeZombie makes a process of the tree exit the way the dumped zombie
// did, leaving it unreaped for its parent.
func (p *process) becomeZombie() error {
	tc := p.c.cores[0].GetTc()
	status := tc.GetExitCode()
	// A zombie keeps its name: ps shows it.
	if addr, err := p.putString(tc.GetComm()); err == nil {
		if _, err := p.leader.Syscall(unix.SYS_PRCTL, unix.PR_SET_NAME, addr); err != nil {
			return fmt.Errorf("restore zombie %d: name: %w", p.c.pid, err)
		}
	}
	if sig := status & 0x7f; sig != 0 {
		// Default disposition, then the signal kills it. SIGKILL's
		// disposition is always the default and cannot be set.
		if sig != uint32(unix.SIGKILL) {
			if _, err := p.put(make([]byte, 32)); err != nil {
				return err
			}
			if _, err := p.leader.Syscall(unix.SYS_RT_SIGACTION, uint64(sig), p.scratch, 0, 8); err != nil {
				return fmt.Errorf("restore zombie %d: default action of signal %d: %w", p.c.pid, sig, err)
			}
		}
		err := p.leader.KillWith(unix.Signal(sig))
		p.leader, p.threads = nil, nil
		if err != nil {
			return fmt.Errorf("restore zombie %d: %w", p.c.pid, err)
		}
		return nil
	}
	err := p.leader.ExitWith(int((status >> 8) & 0xff))
	p.leader, p.threads = nil, nil
	if err != nil {
		return fmt.Errorf("restore zombie %d: %w", p.c.pid, err)
	}
	return nil
}

// dropHelper ends a group helper once the members joined its group: it
// exits and its parent reaps it, so no trace of it is left.
func (p *process) dropHelper() error {
	if err := p.handOverMembers(); err != nil {
		return err
	}
	if err := p.leader.ExitWith(0); err != nil {
		return fmt.Errorf("restore group helper %d: %w", p.c.pid, err)
	}
	p.leader, p.threads = nil, nil
	if _, err := p.parent.leader.Syscall(unix.SYS_WAIT4, uint64(p.c.pid), 0, unix.WALL, 0); err != nil {
		return fmt.Errorf("restore group helper %d: reap it from %d: %w", p.c.pid, p.parent.c.pid, err)
	}
	return nil
}

func readMem(p *process, addr uint64, b []byte) error { return ptrace.ReadMem(p.pid, addr, b) }
