// Package restore brings a checkpointed process tree back from CRIU-format
// images. A blank stub is started under ptrace; a clone3 with set_tid
// injected into it creates the root at its old PID, and each process clones
// its children the same way (phase one: the tree, with the files children
// inherit). Then every process is rebuilt by injected system calls: memory,
// descriptors, signals, threads, credentials, registers (phase two), and
// all are let go together.
package restore

import (
	"context"
	"fmt"
	"github.com/cryo-cr/cryo/internal/bufpool"
	"os"
	"runtime/debug"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/fault"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/nsagent"
	"github.com/cryo-cr/cryo/internal/progress"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Options says what to restore and how.
type Options struct {
	Dir      string
	Detach   bool   // return once the process runs (-d)
	PidFile  string // write the restored root's PID there
	ShellJob bool   // hand terminals to the restoring terminal (-j)
	// LeaveStopped leaves the tree stopped (SIGSTOP) once restored
	// (CRIU's --leave-stopped).
	LeaveStopped bool
	// StubPath is the executable started as the blank stub; any static-enough
	// binary works since none of its code runs. Default: cryo itself.
	StubPath string
	Logf     func(format string, args ...any)
	// TrustImages (--trust-images): root restores images a normal user
	// could have written (see CheckImagesTrusted).
	TrustImages bool
	// pidFile is PidFile, created before the restore starts.
	pidFile *os.File
	// Ctx, when cancelled before the tree runs, makes the restore stop at
	// its next step, kill and reap everything it made, and fail with an
	// error wrapping ErrInterrupted (nil: never).
	Ctx context.Context
	// Fault is the hook of the fault-injection tests (nil otherwise).
	Fault *fault.Injector
	// EmptyNetNS restores the tree into a new net namespace with its
	// loopback up (CRIU's empty_ns with CLONE_NEWNET): images whose net
	// namespace was left out need it.
	EmptyNetNS bool
	// TCPClose (CRIU's restore --tcp-close) brings every established TCP
	// connection of the images back closed: an unconnected socket at the
	// same descriptor, no repair (see tcpclose.go).
	TCPClose bool
	// OrphanPtsMaster receives the master of each orphan pty of the
	// images (a terminal whose master was outside the tree), made anew
	// in the tree's devpts; nil refuses such images. It owns the file.
	OrphanPtsMaster func(master *os.File) error
	// Notify, when set, is called at CRIU's notification points:
	// "pre-restore" before anything is made (pid 0), "setup-namespaces"
	// and "post-setup-namespaces" once the tree exists in its namespaces,
	// "post-restore", "network-unlock" and "status-ready" once every
	// process is rebuilt, before any runs; pid is the root's. An error
	// fails the restore, which leaves nothing behind.
	Notify func(event string, pid int) error
	// Root is the directory a container's mount namespace is rooted at
	// (CRIU's --root; runc gives a bind mount of the rootfs): images of a
	// container's namespace need it.
	Root string
	// ExtMounts gives the host path of each external mount by its key
	// (CRIU's ext_mnt on restore, --external mnt[KEY]:PATH).
	ExtMounts map[string]string
	// InheritFds are files of cryo's that stand in for files of the tree
	// shared with the world outside it (CRIU's --inherit-fd fd[N]:KEY and
	// swrk's inherit_fd): KEY is pipe:[INO] or socket:[INO] as the dump saw
	// it, or a path (a terminal, a FIFO); the value is the descriptor N of
	// cryo's process. The caller keeps its own descriptors open until
	// Restore returns, and may close them then.
	InheritFds map[string]int
	// Progress, when set, counts the bytes of memory to write and written.
	Progress *progress.Meter
}

// Process is a restored root process that is cryo's child.
type Process struct {
	Pid int
	// waitPid is the child of cryo's that Wait waits for: the root, or the
	// init of the pid namespace a rootless restore made around it.
	waitPid int
	// Moved says, when not empty, why and how the tree's PIDs differ from
	// the dumped ones outside its pid namespace.
	Moved string
}

// Wait waits for the restored process to exit and returns its exit status
// the way a shell reports it (128+signal when killed).
func (p *Process) Wait() (int, error) {
	for {
		var ws unix.WaitStatus
		// __WALL: the restored root was created with exit_signal 0.
		_, err := unix.Wait4(p.waitPid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %d: %w", p.Pid, err)
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			return 128 + int(ws.Signal()), nil
		}
	}
}

// StatsName is CRIU's name for the restore statistics image.
const StatsName = "stats-restore"

// restorer restores one snapshot: the whole tree.
type restorer struct {
	snap  *snapshot
	dir   *image.Dir
	opts  Options
	logf  func(string, ...any)
	tr    *ptrace.Tracer
	stub  *ptrace.Tracee
	procs []*process // snapshot order: parents first
	files *filePlan
	// nets: the helpers in the tree's new net namespaces (netns.go).
	nets netHelpers

	forking       time.Duration
	pagesRestored uint64
	// pagesCompared and pagesSkippedCow count the pages of areas a
	// process inherited from its parent (cow.go): compared with the
	// image, and left shared since they were the same.
	pagesCompared, pagesSkippedCow uint64
	// memFill is the time spent writing the pages images into the
	// processes.
	memFill time.Duration
	// bufs are the copy buffers of fillPages, reused between processes.
	bufs bufpool.Pool
	// rootUserns is the user namespace the root was born in (it owns the
	// root's pid namespace); the whole tree is in it from the start.
	rootUserns uint32
	// maxPid is the highest PID or TID of the tree.
	maxPid uint32
	// movedPids: cryo may not choose PIDs in its own pid namespace (a
	// rootless restore), only inside the tree's, where it owns the user
	// namespace. Processes there get their old ids, and new ones outside.
	movedPids bool
	// init is pid 1 of the pid namespace a moved tree that was in cryo's
	// pid namespace gets (newInit), if any.
	init *process
	// newPidNS: the tree gets a pid namespace it did not have (see
	// mustMovePids).
	newPidNS bool
	// agents act inside the tree's user namespaces for a cryo that is not
	// root (nil for root), where its user has capabilities it lacks here.
	agents *nsagent.Pool
	// lastPidHeld: this restore holds the machine-wide ns_last_pid lock
	// for its whole run (holdLastPid).
	lastPidHeld bool
	// later are the inits of pid namespaces nested below the root, in the
	// order build met them, and nested every process of their subtrees:
	// they are made once their parents are in their namespaces
	// (buildNested).
	later  []*process
	nested map[*process]bool
}

// process is one process being restored.
type process struct {
	r *restorer
	c *checkpoint
	// pid is the process's PID in cryo's pid namespace: c.pid, unless a
	// rootless restore could choose it only inside the tree's own pid
	// namespace (see movedPids).
	pid      int
	parent   *process
	children []*process
	leader   *ptrace.Tracee
	threads  []*ptrace.Tracee // leader first
	// scratch is where injected calls find their buffers: first a free
	// part of the stub's stack, then a mapping in a gap of the image's
	// layout (see buildMemory).
	scratch     uint64
	scratchSize uint64
	// userns is the user namespace p is in, whose view of ids its calls
	// take (nil: cryo's): the root's owner namespace from birth (see
	// stubIntoOwner), its own once it entered its namespaces.
	userns *usernsImage
	// cow: the areas p premaps in phase one to share pages with its
	// parent or children, by index in its memory image (see cow.go).
	cow map[int]cowArea
	// exe is the executable opened before p entered its root, when it
	// lies outside (see outsideroot.go).
	exe earlyExe
	// late: p was cloned once that process, its parent or an ancestor,
	// was in its namespaces, and holds them already (buildNested).
	late *process
}

// Restore recreates the process tree saved in opts.Dir. On error nothing is
// left behind: the stub and every half-built process are killed and reaped.
func Restore(opts Options) (*Process, error) {
	tr := ptrace.NewTracer()
	defer tr.Close()
	// On the tracer thread, each of the restore's thousands of ptrace
	// calls runs in place instead of being handed to that thread (see
	// ptrace.Tracer.Run).
	var root *Process
	err := tr.Run(func() (err error) {
		root, err = restoreOn(tr, opts)
		return err
	})
	return root, err
}

// restoreOn is Restore, run on tr's thread.
func restoreOn(tr *ptrace.Tracer, opts Options) (root *Process, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.StubPath == "" {
		opts.StubPath = "/proc/self/exe"
	}
	start := time.Now()
	if err := CheckImagesTrusted(opts.Dir, opts.TrustImages); err != nil {
		return nil, err
	}
	dir, err := image.Open(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := dir.CheckComplete(); err != nil {
		return nil, err
	}
	snap, err := load(dir)
	if err != nil {
		return nil, err
	}
	newNet, err := checkEmptyNet(dir, snap, opts)
	if err != nil {
		return nil, err
	}
	if opts.EmptyNetNS && !newNet {
		opts.Logf("empty_ns: the tree was not in a net namespace of its own; it is restored in cryo's, as CRIU does")
	}
	opts.EmptyNetNS = newNet
	for _, c := range snap.procs {
		if c.zombie {
			continue
		}
		if err := c.checkVmas(snap.files); err != nil {
			return nil, err
		}
	}
	moved, newNS, err := mustMovePids(snap)
	if err != nil {
		return nil, err
	}
	if err := snap.checkCreds(); err != nil {
		return nil, err
	}
	if opts.PidFile != "" {
		pf, err := createPidFile(opts.PidFile)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				dropPidFile(pf)
			} else {
				pf.Close()
			}
		}()
		opts.pidFile = pf
	}
	if !moved {
		if err := snap.checkPidsFree(opts.Logf); err != nil {
			return nil, err
		}
	}
	r := &restorer{snap: snap, dir: dir, opts: opts, logf: opts.Logf, tr: tr, movedPids: moved, newPidNS: newNS}
	for _, tid := range snap.allTids() {
		r.maxPid = max(r.maxPid, tid)
	}
	if os.Geteuid() != 0 {
		// Closed after abort's cleanup, which may need them.
		r.agents = nsagent.NewPool(opts.StubPath, opts.Logf)
		defer r.agents.Close()
	}
	// Whatever goes wrong, even a bug, nothing half-restored may stay.
	defer func() {
		if rec := recover(); rec != nil {
			r.abort()
			root, err = nil, fmt.Errorf("internal error while restoring %d: %v\n%s", snap.procs[0].pid, rec, debug.Stack())
		}
	}()
	unlockLastPid, err := r.holdLastPid()
	if err != nil {
		return nil, err
	}
	err = r.run()
	unlockLastPid()
	if err != nil {
		r.logf("restore failed, cleaning up: %v", err)
		r.report()
		r.abort()
		return nil, err
	}
	pid := r.procs[0].pid
	elapsed := time.Since(start)
	r.logf("restored %d processes (root %d) in %v", len(snap.procs), pid, elapsed)
	st := &stats.StatsEntry{Restore: &stats.RestoreStatsEntry{
		PagesCompared:   proto.Uint64(r.pagesCompared),
		PagesSkippedCow: proto.Uint64(r.pagesSkippedCow),
		ForkingTime:     proto.Uint32(uint32(r.forking.Microseconds())),
		RestoreTime:     proto.Uint32(uint32(elapsed.Microseconds())),
		PagesRestored:   proto.Uint64(r.pagesRestored),
	}}
	r.logf("stats: restore %.1f ms, forking %.1f ms, memory write %.1f ms, pages restored %d, compared %d, left shared with the parent %d",
		float64(elapsed.Microseconds())/1000, float64(r.forking.Microseconds())/1000, float64(r.memFill.Microseconds())/1000, r.pagesRestored, r.pagesCompared, r.pagesSkippedCow)
	if err := dir.Write(StatsName, "STATS", st); err != nil {
		r.logf("warning: %v", err)
	}
	if opts.pidFile != nil {
		if err := writePidFile(opts.pidFile, pid); err != nil {
			return &Process{Pid: pid}, err
		}
	}
	root = &Process{Pid: pid, waitPid: pid}
	switch {
	case newNS:
		root.waitPid = r.init.pid
		root.Moved = fmt.Sprintf("the tree is restored in a new pid namespace, since a normal user cannot choose PIDs in the initial one: inside, every process has its old PID; outside, its root (pid %d when dumped) is now pid %d, under an init that is pid %d",
			snap.procs[0].pid, pid, r.init.pid)
	case moved:
		root.Moved = fmt.Sprintf("the tree is back in its own pid namespace with its PIDs there, but a normal user cannot choose PIDs in the pid namespace above it: its root, pid %d inside and %d when dumped, is now pid %d outside",
			r.procs[0].c.nsPids[0], snap.procs[0].pid, pid)
	}
	return root, nil
}

// abort kills and reaps everything created so far; idempotent.
func (r *restorer) abort() {
	if r.files != nil {
		defer r.files.repair.Drop()
		defer r.files.removeGhosts(r.logf)
	}
	if r.stub != nil {
		r.stub.Kill()
		r.stub.WaitExit()
		r.stub = nil
	}
	// The init of a pid namespace cryo made takes every process in it down
	// with it, but exits only once they are reaped, by cryo (their
	// tracer): it is waited for last.
	if r.init != nil && r.init.leader != nil {
		r.init.leader.Kill()
	}
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		if p.leader == nil {
			continue
		}
		p.leader.Kill()
		for j := len(p.threads) - 1; j >= 0; j-- {
			p.threads[j].WaitExit()
		}
		p.leader, p.threads = nil, nil
	}
	if r.init != nil && r.init.leader != nil {
		r.init.leader.WaitExit()
		r.init.leader = nil
	}
}

// notify calls the caller's Notify hook if set, naming the event in its
// error.
func (r *restorer) notify(event string, pid int) error {
	if r.opts.Notify == nil {
		return nil
	}
	if err := r.opts.Notify(event, pid); err != nil {
		return fmt.Errorf("%s notification: %w", event, err)
	}
	return nil
}

func (r *restorer) run() error {
	if err := r.notify("pre-restore", 0); err != nil {
		return err
	}
	t0 := time.Now()
	if err := r.interrupted("create the tree"); err != nil {
		return err
	}
	if err := r.createTree(); err != nil {
		return err
	}
	r.forking = time.Since(t0)
	for _, event := range []string{"setup-namespaces", "post-setup-namespaces"} {
		if err := r.notify(event, r.procs[0].pid); err != nil {
			return err
		}
	}
	for _, p := range r.procs {
		if p.c.zombie {
			continue
		}
		if err := r.interrupted(fmt.Sprintf("restore process %d", p.pid)); err != nil {
			return err
		}
		if err := p.restore(); err != nil {
			return err
		}
	}
	if err := r.interrupted("let the tree go"); err != nil {
		return err
	}
	for id := range r.snap.uncheckedFiles {
		return fmt.Errorf("file %s: cryo may not read it and no process mapped it: it could not be checked against the dump", r.snap.reg(id).GetName())
	}
	r.files.removeGhosts(r.logf)
	if err := r.files.repair.Resume(); err != nil {
		return err
	}
	if r.files.tcpRestored > r.files.tcpInNets || r.files.tcpClosed > 0 {
		// The connections exist again: let their peers' packets in.
		if err := netlock.Unlock(r.snap.procs[0].pid); err != nil {
			return err
		}
	}
	for _, event := range []string{"post-restore", "network-unlock", "status-ready"} {
		if err := r.notify(event, r.procs[0].pid); err != nil {
			return err
		}
	}
	if err := r.stopAgain(); err != nil {
		return err
	}
	if r.opts.LeaveStopped {
		// Queued now, taken when cryo lets each process go.
		for _, p := range r.procs {
			if !p.c.zombie && p.leader != nil {
				unix.Kill(p.pid, unix.SIGSTOP)
			}
		}
	}
	// Threads first, leaders last, children before parents, so that every
	// process starts whole and finds its children there.
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		for j := len(p.threads) - 1; j >= 0; j-- {
			if err := p.threads[j].Detach(); err != nil {
				return err
			}
		}
		p.leader, p.threads = nil, nil
	}
	if r.init != nil {
		if err := r.startInit(r.init, r.procs[0].c.nsPids[0]); err != nil {
			return err
		}
		if err := r.init.leader.Detach(); err != nil {
			return err
		}
		r.init.leader = nil
	}
	return nil
}

// restore rebuilds one process in place (phase two).
func (p *process) restore() error {
	if err := p.buildMemory(); err != nil {
		return err
	}
	p.collapseHuge()
	if err := p.restoreFiles(); err != nil {
		return err
	}
	if err := p.restoreLocks(); err != nil {
		return err
	}
	if err := p.restoreTask(); err != nil {
		return err
	}
	if err := p.createThreads(); err != nil {
		return err
	}
	// Signals raised while the tree was built (a zombie child's SIGCHLD)
	// are not the process's: drop them from every thread before any saved
	// one is queued (a thread's drain also takes shared signals).
	for _, t := range p.threads {
		if err := p.drainSignals(t); err != nil {
			return err
		}
	}
	sc, err := p.planSeccomp()
	if err != nil {
		return err
	}
	if err := p.seccompEarly(sc); err != nil {
		return err
	}
	if err := p.restorePosixTimers(); err != nil {
		return err
	}
	for i, t := range p.threads {
		if err := p.restoreThread(t, p.c.cores[i]); err != nil {
			return err
		}
	}
	if err := p.finishTask(); err != nil {
		return err
	}
	if err := p.seccompFilters(sc); err != nil {
		return err
	}
	if err := p.unmapScratch(); err != nil {
		return err
	}
	if err := p.seccompStrict(sc); err != nil {
		return err
	}
	for i, t := range p.threads {
		if err := p.setRegisters(t, p.c.cores[i]); err != nil {
			return err
		}
	}
	return nil
}

// unmapScratch removes the scratch mapping once nothing needs it.
func (p *process) unmapScratch() error {
	if p.scratch == 0 {
		return nil
	}
	if _, err := p.leader.Syscall(unix.SYS_MUNMAP, p.scratch, p.scratchSize); err != nil {
		return fmt.Errorf("restore pid %d: unmap scratch memory: %w", p.c.pid, err)
	}
	p.scratch = 0
	return nil
}

// mapScratch maps the buffer area for injected calls at addr, a gap in the
// image's layout, so it never collides with a restored mapping.
func (p *process) mapScratch(addr uint64) error {
	got, err := p.leader.Syscall(unix.SYS_MMAP, addr, scratchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("restore pid %d: map scratch memory at %#x: %w", p.c.pid, addr, err)
	}
	if got != addr {
		return fmt.Errorf("restore pid %d: scratch memory landed at %#x, not %#x", p.c.pid, got, addr)
	}
	p.scratch, p.scratchSize = addr, scratchSize
	return nil
}

// put copies data to the start of the scratch area and returns its address
// in the restored process. Each injected call uses it right away.
func (p *process) put(data []byte) (uint64, error) {
	return p.putAt(0, data)
}

func (p *process) putAt(off uint64, data []byte) (uint64, error) {
	return p.remote().Put(off, data)
}

// remote is p with its scratch area, for package remote's injected calls.
func (p *process) remote() remote.Proc {
	return remote.Proc{T: p.leader, Scratch: p.scratch, Size: p.scratchSize}
}

// putString stores a NUL-terminated string.
func (p *process) putString(s string) (uint64, error) {
	return p.put(append([]byte(s), 0))
}

// idsInside converts host ids to the view of the user namespace p is in.
func (p *process) idsInside(uid, gid uint32) (uint32, uint32, error) {
	u := p.userns
	if u == nil {
		return uid, gid, nil
	}
	in, gin := u.uidMap.ToInside(uid), u.gidMap.ToInside(gid)
	if in == userns.Overflow || gin == userns.Overflow {
		return 0, 0, fmt.Errorf("ids %d:%d are not mapped in user namespace %d", uid, gid, u.id)
	}
	return in, gin, nil
}

// open opens path in the restored process and returns the descriptor.
func (p *process) open(path string, flags uint64) (uint64, error) {
	return p.remote().Open(path, flags)
}
