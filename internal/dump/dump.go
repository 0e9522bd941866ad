// Package dump checkpoints a running process tree: it freezes every thread
// of the root and its descendants with ptrace, collects their state from
// /proc, ptrace and injected system calls, copies memory, writes
// CRIU-format images, and then kills the tree or lets it run on.
package dump

import (
	"context"
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/bufpool"
	"io/fs"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"time"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/fault"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/nsagent"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/progress"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/seccomp"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Options says what to dump and how.
type Options struct {
	Pid          int
	Dir          string
	LeaveRunning bool // resume the tree after the dump instead of killing it
	LeaveStopped bool // leave the tree stopped (SIGSTOP) after the dump instead of killing it
	ShellJob     bool // the tree may hold the caller's terminal (-j)
	// OrphanPts saves the pty slaves whose master is outside the tree (a
	// container's terminal) as CRIU's orphan_pts_master does: restore
	// makes a new pair and hands its master to the caller.
	OrphanPts bool
	// TCPEstablished saves established TCP connections with TCP repair
	// (--tcp-established); without it they make the dump fail.
	TCPEstablished bool
	// ExtUnixSk lets datagram Unix sockets connected to a named socket
	// outside the tree be dumped (--ext-unix-sk).
	ExtUnixSk bool
	// SkipInFlight leaves out the TCP connections waiting in a listener's
	// accept queue (--skip-in-flight, as CRIU): the restored listener's
	// queue is empty, and their clients see them reset.
	SkipInFlight bool
	// LinkRemap (--link-remap) lets a deleted file that is still linked
	// under another name be dumped; its contents come back in a ghost
	// file, a copy. Without it such a file is refused, as by CRIU.
	LinkRemap bool
	// PreDump (cryo pre-dump) saves only the memory, and leaves the tree
	// running with its writes tracked (TrackMem) for the next dump.
	PreDump bool
	// ParentDir (--prev-images-dir) is the previous (pre-)dump's images
	// directory, relative to Dir, as a sibling (../DIR1): pages unchanged
	// since then are left in it (pagemap in_parent).
	ParentDir string
	// TrackMem (--track-mem) tracks the writes of the tree after a
	// pre-dump, for the next dump.
	TrackMem bool
	// FreezeCgroup (CRIU's freeze_cgroup) is the tree's cgroup, frozen
	// with the cgroup freezer while the tree is seized (cgfreeze.go).
	FreezeCgroup string
	// TCPClose (--tcp-close) saves established TCP and MPTCP connections
	// as closed sockets instead of refusing them or repairing them.
	TCPClose bool
	// FileLocks (--file-locks) saves the flock, POSIX and OFD locks the
	// tree holds; without it a lock refuses the dump, as in CRIU.
	FileLocks bool
	// External (--external KIND[ID]) names resources outside the tree it
	// may hold: tty[RDEV:DEV] a terminal, unix[INO] a Unix stream socket
	// connected outside (see external.go).
	External []string
	// ext is External, parsed once by DumpContext.
	ext  *externals
	Logf func(format string, args ...any)
	// Fault is the hook of the fault-injection tests (nil otherwise).
	Fault *fault.Injector
	// EmptyNetNS leaves the tree's net namespace out of the images (CRIU's
	// empty_ns with CLONE_NEWNET, which runc always sends): the restore
	// makes a new one. The tree must have one net namespace and no socket
	// in it.
	EmptyNetNS bool
	// ExtMounts names the container's external mounts (CRIU's ext_mnt, or
	// --external mnt[POINT]:KEY): mount point in the tree's mount
	// namespace -> the key the restore is given a host path for.
	ExtMounts map[string]string
	// Notify, when set, is called at CRIU's notification points: "network-lock"
	// once the tree is frozen, "post-dump" once the images are written and
	// before the tree is killed or let go, "network-unlock" once a tree that
	// runs on (--leave-running) runs again; pid is the tree's root. An error
	// from the first two fails the dump, the tree left running (a caller of
	// CRIU's RPC that went away must not lose its tree).
	Notify func(event string, pid int) error
	// Progress, when set, counts the bytes of memory to copy and copied.
	Progress *progress.Meter
}

// CRIU's task states.
const (
	taskAlive   = 1
	taskDead    = 2
	taskStopped = 3 // alive, in a group stop (SIGSTOP, SIGTSTP...)
	taskHelper  = 4
)

// Dump checkpoints opts.Pid and its descendants into opts.Dir. On any error
// the tree is left running as it was: registers restored, scratch memory
// unmapped, detached.
func Dump(opts Options) error { return DumpContext(context.Background(), opts) }

// ErrInterrupted is wrapped by the error of a dump whose context was
// cancelled before it was done (the tree was left running as it was).
var ErrInterrupted = errors.New("interrupted")

// DumpContext is Dump, rolled back when ctx is cancelled before the tree's
// images are complete: the error then wraps ErrInterrupted and
// context.Cause(ctx). Once they are, the dump finishes (the tree is killed
// or let go as asked).
func DumpContext(ctx context.Context, opts Options) error {
	tr := ptrace.NewTracer()
	defer tr.Close()
	// On the tracer thread, each of the dump's ptrace calls runs in place
	// instead of being handed to that thread (see ptrace.Tracer.Run).
	return tr.Run(func() error { return dumpOn(ctx, tr, opts) })
}

// dumpOn is DumpContext, run on tr's thread.
func dumpOn(ctx context.Context, tr *ptrace.Tracer, opts Options) (err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	pid := opts.Pid
	if pid <= 0 {
		return fmt.Errorf("invalid pid %d", pid)
	}
	if opts.ext, err = parseExternal(opts.External); err != nil {
		return err
	}
	st, err := proc.ReadStatus(pid)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("process %d does not exist", pid)
		}
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if st.Tgid != pid {
		return fmt.Errorf("%d is a thread of process %d: dump the process", pid, st.Tgid)
	}
	for a := os.Getpid(); a > 1; {
		if a == pid {
			return fmt.Errorf("process %d is cryo or one of its ancestors", pid)
		}
		s, err := proc.ReadStat(a)
		if err != nil {
			break
		}
		a = s.PPid
	}
	dir, err := image.Create(opts.Dir)
	if err != nil {
		return err
	}
	own, err := readNamespaces(os.Getpid())
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		// Without root, restore gives a tree of the initial pid namespace
		// its PIDs in a new pid namespace, which needs a user namespace of
		// the tree's own to belong to: refuse now, while it runs untouched.
		if ns, err := readNamespaces(pid); err == nil && ns["pid"] == own["pid"] && ns["user"] == own["user"] {
			return fmt.Errorf("process %d is in the initial pid namespace and the initial user namespace, where only root can restore its PIDs: dump it as root, or run the tree in a user namespace of its own", pid)
		}
	}

	if os.Geteuid() != 0 {
		// Processes of the user's that switched to subordinate ids in
		// its user namespace have /proc files and files the user may
		// open only from inside that namespace.
		agents := nsagent.NewPool("/proc/self/exe", opts.Logf)
		defer agents.Close()
		defer proc.SetFallback(agents.Open)()
	}
	locks := newDumpLocks(pid, opts.Logf)
	if err := locks.checkAncestors(pid); err != nil {
		return err
	}
	// Released last, once the tree is let go or killed.
	defer locks.unlock()
	d := &dumper{ctx: ctx, tr: tr, opts: opts, logf: opts.Logf, files: newFileTable(), ns: newNsTable(own), locks: locks}
	d.tr.Fault = opts.Fault
	d.ns.emptyNet, d.files.emptyNet = opts.EmptyNetNS, opts.EmptyNetNS
	d.ns.emptyNetOpt = opts.EmptyNetNS
	if opts.ext != nil && len(opts.ext.nets) > 0 {
		// An external net namespace is left out as empty_ns leaves one
		// out; its image names the key the restore joins it by.
		d.ns.extNets = opts.ext.nets
		d.ns.emptyNet, d.files.emptyNet = true, true
	}
	d.ns.extMounts = opts.ExtMounts
	defer d.files.closeHeld()
	defer d.ns.closeNets()
	d.files.nets = d.ns
	// Whatever goes wrong, even a bug, the tree must run on as it was.
	defer func() {
		if r := recover(); r != nil {
			d.release()
			err = fmt.Errorf("internal error while dumping %d (tree left running): %v\n%s", pid, r, debug.Stack())
		}
	}()
	if opts.PreDump || opts.ParentDir != "" || opts.TrackMem {
		if err := d.openTracking(pid); err != nil {
			return err
		}
		defer d.closeTracking(false)
	}
	d.stats.frozenAt = time.Now()
	refreeze, err := d.seizeTreeFrozen(pid)
	defer refreeze()
	if err != nil {
		d.report(err)
		d.release()
		return err
	}
	d.stats.freezing = time.Since(d.stats.frozenAt)
	opts.Logf("seized %d processes in %v", len(d.procs), d.stats.freezing)
	if err := opts.notify("network-lock", pid); err != nil {
		d.release()
		return err
	}
	if opts.PreDump {
		return d.finishPreDump(dir)
	}
	if err := d.checkpoint(dir); err != nil {
		d.report(err)
		d.release()
		return err
	}
	if err := d.step("dump: images complete"); err != nil {
		d.report(err)
		d.release()
		return err
	}
	if err := opts.notify("post-dump", pid); err != nil {
		d.release()
		return err
	}
	d.stats.imagesDone = time.Since(d.stats.frozenAt)
	if opts.LeaveRunning || opts.LeaveStopped {
		if opts.LeaveStopped {
			d.stop()
		}
		d.opts.Fault.Point("resume: start")
		// Kept out of release, which drops the snapshots of a failed dump.
		snaps := d.snaps
		d.snaps = nil
		err := d.release()
		d.snaps = snaps
		if err != nil {
			d.dropSnapshots()
			return fmt.Errorf("resume process %d: %w", pid, err)
		}
		d.opts.Fault.Point("resume: done")
		if len(d.snaps) > 0 {
			// The tree runs again; its pages come from the snapshots.
			d.stats.frozen = time.Since(d.stats.frozenAt)
			opts.Logf("tree of %d runs again after %v; copying its memory from %d snapshots", pid, d.stats.frozen, len(d.snaps))
			copyStart := time.Now()
			n, err := d.finishSnapshots()
			d.stats.memwrite += time.Since(copyStart)
			d.stats.pagesSaved += uint64(n) / proc.PageSize()
			if err == nil {
				err = d.writeInventory(dir)
			}
			if err != nil {
				return fmt.Errorf("process %d (tree left running): %w", pid, err)
			}
			opts.Logf("memory copied from the snapshots in %v", time.Since(copyStart))
		}
		if opts.LeaveStopped {
			opts.Logf("tree of %d left stopped", pid)
		} else {
			opts.Logf("tree of %d left running", pid)
		}
		if err := opts.notify("network-unlock", pid); err != nil {
			return err
		}
	} else {
		if err := d.lockNetwork(); err != nil {
			d.release()
			return fmt.Errorf("process %d (tree left running): %w", pid, err)
		}
		d.opts.Fault.Point("kill: start")
		killStart := time.Now()
		d.kill()
		d.stats.kill = time.Since(killStart)
		d.opts.Fault.Point("kill: done")
		opts.Logf("tree of %d killed in %v", pid, d.stats.kill)
	}
	if d.stats.frozen == 0 {
		d.stats.frozen = time.Since(d.stats.frozenAt)
	}
	opts.Logf("frozen for %v", d.stats.frozen)
	d.stats.shpagesSaved = d.files.shmem.savedPages()
	opts.Logf("stats: %s", d.stats.summary())
	if err := dir.Write(StatsName, "STATS", d.stats.entry()); err != nil {
		opts.Logf("warning: %v", err)
	}
	return nil
}

// notify calls o.Notify if set, naming the event in its error.
func (o *Options) notify(event string, pid int) error {
	if o.Notify == nil {
		return nil
	}
	if err := o.Notify(event, pid); err != nil {
		return fmt.Errorf("%s notification (tree left running): %w", event, err)
	}
	return nil
}

// StatsName is CRIU's name for the dump statistics image.
const StatsName = "stats-dump"

// dumpStats are the figures CRIU's stats-dump image holds (microseconds).
type dumpStats struct {
	frozenAt         time.Time
	freezing, frozen time.Duration
	// imagesDone is when the last image was complete, from the start of
	// the freeze; kill is how long killing the tree and waiting for it to
	// be gone took (both only in the log: CRIU's image has no field).
	imagesDone, kill         time.Duration
	memdump, memwrite        time.Duration
	pagesScanned, pagesSaved uint64
	// pagesParent are the pages left in the parent's images.
	pagesParent uint64
	// shpagesSaved are the pages of shared memory objects saved.
	shpagesSaved uint64
}

func usec(d time.Duration) *uint32 { return proto.Uint32(uint32(d.Microseconds())) }

func (s *dumpStats) entry() *stats.StatsEntry {
	return &stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime:       usec(s.freezing),
		FrozenTime:         usec(s.frozen),
		MemdumpTime:        usec(s.memdump),
		MemwriteTime:       usec(s.memwrite),
		PagesScanned:       proto.Uint64(s.pagesScanned),
		PagesSkippedParent: proto.Uint64(s.pagesParent),
		PagesWritten:       proto.Uint64(s.pagesSaved),
		PagesLazy:          proto.Uint64(0),
		ShpagesWritten:     proto.Uint64(s.shpagesSaved),
	}}
}

// dumper dumps one tree.
type dumper struct {
	ctx   context.Context // cancelled: roll back at the next step
	tr    *ptrace.Tracer
	opts  Options
	logf  func(string, ...any)
	procs []*process // breadth-first: parents before children
	files *fileTable
	ns    *nsTable
	stats dumpStats
	// bufs are the copy buffers of copyPages, reused between processes.
	bufs bufpool.Pool
	// locks tell other cryos which processes this one is dumping.
	locks *dumpLocks
	// seccomp holds the seccomp filter chains of the tree's threads.
	seccomp seccomp.Table
	// snaps are the snapshot children whose pages are still to copy
	// (snapshot.go).
	snaps []*snapshot
	// track is the write tracking of an incremental dump (predump.go).
	track *tracking
}

// process is one process of the tree being dumped.
type process struct {
	pid    int
	ppid   int // 0 for the root of the tree
	stat   *proc.Stat
	zombie bool // dead, not reaped: only its exit status is saved
	// helper stands for a process group whose leader is gone: restore
	// needs a process at that PID to recreate the group, then drops it.
	helper  bool
	tr      *ptrace.Tracer
	opts    Options
	logf    func(string, ...any)
	threads []*ptrace.Tracee // leader first
	scratch scratch
	ids     *core.TaskKobjIdsEntry
	// uidMap and gidMap convert its ids to its user namespace's view
	// (identity in the initial namespace).
	uidMap, gidMap userns.Map
	ns             map[string]uint64 // namespace inodes by kind
	// alias names it in errors instead of its PID and descriptor: cryo
	// itself, describing its copy of a descriptor in flight.
	alias string
	// nsPid and nsTids are the ids in its own pid namespace, when that is
	// not cryo's.
	nsPid  uint32
	nsTids map[int]uint32
	// step marks a step of the dump (see dumper.step).
	step func(name string) error
	// viaRoot prefixes the paths it sees to reach them from cryo:
	// "/proc/PID/root" when it is in a mount namespace of its own, or
	// when cryo is not root and the process is not chrooted; else "".
	viaRoot string
	// fdIDs: the file id of each of its descriptors, once dumped.
	fdIDs map[int]uint32
	// netLeftOut: p is in the net namespace left out of the images
	// (Options.EmptyNetNS).
	netLeftOut bool
}

// seizeTree freezes the root, then each process's children once the
// process itself is frozen (so it cannot fork any more), breadth first.
func (d *dumper) seizeTree(root int) error {
	queue := []int{root}
	parent := map[int]int{root: 0}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		st, err := proc.ReadStat(pid)
		if err != nil {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		p := &process{pid: pid, ppid: parent[pid], stat: st, tr: d.tr, opts: d.opts, logf: d.logf, step: d.step}
		if st.State == 'Z' {
			if pid == root {
				return fmt.Errorf("process %d is a zombie", pid)
			}
			p.zombie = true
			if err := p.zombieNsPid(); err != nil {
				return err
			}
			d.procs = append(d.procs, p)
			continue
		}
		d.procs = append(d.procs, p)
		if err := checkNotInVfork(pid); err != nil {
			return err
		}
		if err := d.locks.lock(pid); err != nil {
			return err
		}
		if err := p.seize(); err != nil {
			if pid != root && p.exitedWhileSeized() {
				if err := p.zombieNsPid(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if err := p.suspendSeccomp(); err != nil {
			return err
		}
		// Read again now that it is frozen.
		if p.stat, err = proc.ReadStat(pid); err != nil {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		if os.Geteuid() != 0 {
			// The files it maps may have to be opened from inside its
			// user namespace (nsagent), found by the PID in the path.
			if root, err := proc.Root(pid); err == nil && root == "/" {
				p.viaRoot = fmt.Sprintf("/proc/%d/root", pid)
			}
		}
		children, err := proc.ChildrenOf(pid)
		if err != nil {
			return fmt.Errorf("process %d: children: %w", pid, err)
		}
		for _, c := range children {
			if _, seen := parent[c]; !seen {
				parent[c] = pid
				queue = append(queue, c)
			}
		}
	}
	if err := d.checkSessionComplete(root); err != nil {
		return err
	}
	d.addGroupHelpers()
	return nil
}

// checkSessionComplete refuses a tree that leads a session some process
// outside the tree is in: an orphan of the tree reparented elsewhere,
// which the dump would leave behind without its session's leader.
func (d *dumper) checkSessionComplete(root int) error {
	if d.procs[0].stat.Session != root {
		return nil
	}
	in := map[int]bool{}
	for _, p := range d.procs {
		in[p.pid] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || in[pid] {
			continue
		}
		st, err := proc.ReadStat(pid)
		if err != nil || st.Session != root {
			continue
		}
		if gone := outsiderGone(pid, time.Now().Add(outsiderWait)); gone {
			d.logf("process %d of session %d, outside the tree, has exited: left out", pid, root)
			continue
		}
		return fmt.Errorf("process %d is in the session of %d but not in its tree (its parent %d is outside): dumping it is not supported", pid, root, st.PPid)
	}
	return nil
}

// outsiderWait bounds the wait for a process of the tree's session
// outside the tree to exit: the copy a killed cryo's snapshot left runs
// its own way out for a moment after cryo died (see snapshot.go).
const outsiderWait = 2 * time.Second

// outsiderGone waits until deadline for process pid to exit (gone, or a
// zombie: dead, and no part of the session anything restores).
func outsiderGone(pid int, deadline time.Time) bool {
	for {
		st, err := proc.ReadStat(pid)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addGroupHelpers adds a helper for every process group of the tree whose
// leader is not in it (it exited): restore makes a short-lived process at
// the group's id, under the parent of the group's first member, so that
// the members can join the group, as CRIU's helper tasks do.
func (d *dumper) addGroupHelpers() {
	pids := map[int]bool{}
	for _, p := range d.procs {
		pids[p.pid] = true
	}
	rootPgid, rootSid := d.procs[0].stat.Pgrp, d.procs[0].stat.Session
	// A session whose leader exited, its members reparented: the helper
	// leads it (setsid) and forks the members under their parent, then
	// exits, and they are reparented again (restore's sessions.go).
	for _, p := range d.procs {
		s := p.stat.Session
		if p.zombie || pids[s] || s == rootSid {
			continue
		}
		pids[s] = true
		st := *p.stat
		st.Pid, st.PPid, st.Pgrp = s, p.ppid, s
		d.procs = append(d.procs, &process{pid: s, ppid: p.ppid, stat: &st, helper: true})
		d.logf("session %d has no leader in the tree: a helper stands for it", s)
	}
	for _, p := range d.procs {
		g := p.stat.Pgrp
		if p.zombie || pids[g] || g == rootPgid || p.stat.Session == g {
			continue
		}
		pids[g] = true
		st := *p.stat
		st.Pid, st.PPid, st.Pgrp = g, p.ppid, g
		d.procs = append(d.procs, &process{pid: g, ppid: p.ppid, stat: &st, helper: true})
		d.logf("process group %d has no leader in the tree: a helper stands for it", g)
	}
}

// checkpoint collects every process and writes the images.
func (d *dumper) checkpoint(dir *image.Dir) error {
	start := time.Now()
	var xfeatures uint64
	for _, p := range d.procs {
		if p.zombie || p.helper {
			continue
		}
		if err := d.ns.add(p); err != nil {
			return err
		}
	}
	if err := d.checkZombieInits(); err != nil {
		return err
	}
	if d.ns.flatUserns != 0 {
		d.logf("user namespace: the root's is nested in namespace %d, which holds no process of the tree: recorded as a child of cryo's, with its ids as cryo sees them", d.ns.flatUserns)
	}
	if d.ns.netInCryos {
		d.logf("empty_ns: the tree is in cryo's net namespace, not one of its own: its sockets are dumped there, as CRIU does")
	}
	// Pseudo-terminal masters first: they tell the tree's own pairs from
	// the caller's terminal.
	if err := d.files.ptys.scan(d.procs); err != nil {
		return err
	}
	if d.opts.OrphanPts && !d.opts.ShellJob {
		if err := d.files.ptys.scanOrphans(d.procs); err != nil {
			return err
		}
	}
	if err := d.files.ptys.check(d.procs); err != nil {
		return err
	}
	// The images of an earlier dump here are about to be overwritten:
	// without its inventory the mix can never pass for a whole dump. (Not
	// before the checks above: a refused dump leaves the old one whole.)
	if err := dir.Invalidate(); err != nil {
		return err
	}
	for i, p := range d.procs {
		if p.zombie || p.helper {
			continue
		}
		if err := d.step("checkpoint: process"); err != nil {
			return err
		}
		xf, err := p.checkpoint(d, dir, i)
		if err != nil {
			return err
		}
		xfeatures |= xf
	}
	if err := d.resolveEpollTargets(); err != nil {
		return err
	}
	if err := d.ns.checkGhosts(d.files); err != nil {
		return err
	}
	if err := d.files.unix.check(d.files, d.opts, d.procs); err != nil {
		return err
	}
	if err := d.step("images: tree-wide"); err != nil {
		return err
	}
	if err := d.files.writePipeData(dir); err != nil {
		return err
	}
	if err := d.files.unix.write(dir); err != nil {
		return err
	}
	if err := d.files.shmem.write(dir, uint32(len(d.procs)+1)); err != nil {
		return err
	}
	if err := d.files.writeMemfds(dir); err != nil {
		return err
	}
	if err := d.files.writeTCP(dir); err != nil {
		return err
	}
	if err := d.files.writeGhosts(dir); err != nil {
		return err
	}
	if err := d.files.ptys.write(dir); err != nil {
		return err
	}
	if err := writeSeccomp(dir, &d.seccomp); err != nil {
		return err
	}
	if err := d.files.locks.write(dir); err != nil {
		return err
	}
	if err := d.ns.write(dir); err != nil {
		return err
	}
	if err := d.step("images: tree"); err != nil {
		return err
	}
	if err := d.writeTree(dir, xfeatures); err != nil {
		return err
	}
	d.logf("dump of %d processes done in %v", len(d.procs), time.Since(start))
	return nil
}

// release undoes everything done to the tree and detaches from it.
// It is safe to call more than once.
func (d *dumper) release() error {
	// Snapshot children of a dump that failed go first, while their
	// processes are still seized to reap them.
	first := d.dropSnapshots()
	if err := d.files.repair.Resume(); err != nil && first == nil {
		first = err
	}
	if err := d.putBackBacklogs(); err != nil && first == nil {
		first = err
	}
	if err := d.files.ptys.putBack(); err != nil && first == nil {
		first = err
	}
	for _, p := range d.procs {
		if err := p.release(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// kill kills every process of the tree and waits until every thread is
// gone, so that parents see their children exit as soon as cryo lets go.
// Children first: a parent killed first would reparent them.
// stop queues a SIGSTOP for every live process of the tree, which stops
// it once cryo lets it go (CRIU's --leave-stopped).
func (d *dumper) stop() {
	for _, p := range d.procs {
		if len(p.threads) > 0 {
			unix.Kill(p.pid, unix.SIGSTOP)
		}
	}
}

func (d *dumper) kill() {
	var pidfds []int
	for _, p := range d.procs {
		if len(p.threads) > 0 {
			if fd, err := unix.PidfdOpen(p.pid, 0); err == nil {
				pidfds = append(pidfds, fd)
			}
		}
	}
	for _, p := range d.procs {
		if len(p.threads) > 0 {
			p.leader().Kill()
		}
	}
	reaped := reapMemory(pidfds)
	for i := len(d.procs) - 1; i >= 0; i-- {
		d.procs[i].waitGone()
	}
	reaped()
	d.files.repair.Drop()
}

// seize attaches to every thread, looping until no new thread appears.
func (p *process) seize() error {
	seen := map[int]bool{}
	for {
		tids, err := proc.Tasks(p.pid)
		if err != nil {
			return fmt.Errorf("process %d: list threads: %w", p.pid, err)
		}
		added := false
		for _, tid := range tids {
			if seen[tid] {
				continue
			}
			seen[tid] = true
			if err := p.step("seize: thread"); err != nil {
				return err
			}
			t, err := p.tr.Seize(p.pid, tid)
			if err != nil {
				if errors.Is(err, unix.ESRCH) && tid != p.pid {
					continue // the thread exited meanwhile
				}
				if errors.Is(err, unix.EPERM) {
					return fmt.Errorf("process %d: thread %d: not allowed to trace it (already traced, or not ours): %w", p.pid, tid, err)
				}
				return fmt.Errorf("process %d: %w", p.pid, err)
			}
			p.threads = append(p.threads, t)
			added = true
		}
		if !added {
			break
		}
	}
	sort.Slice(p.threads, func(i, j int) bool {
		a, b := p.threads[i], p.threads[j]
		if (a.Tid == p.pid) != (b.Tid == p.pid) {
			return a.Tid == p.pid
		}
		return a.Tid < b.Tid
	})
	if len(p.threads) == 0 || p.threads[0].Tid != p.pid {
		return fmt.Errorf("process %d: could not seize its main thread", p.pid)
	}
	return nil
}

func (p *process) leader() *ptrace.Tracee { return p.threads[0] }

// release undoes everything done to the process and detaches from it.
// It is safe to call more than once.
func (p *process) release() error {
	var first error
	// A thread a wait gave up on is brought back to a stop first, if it
	// can be, so that the rest of the rollback reaches it.
	for _, t := range p.threads {
		if err := t.Recover(); err != nil && first == nil {
			first = err
		}
	}
	if err := p.scratch.unmap(); err != nil && first == nil {
		first = err
	}
	for _, t := range p.threads {
		if err := t.Detach(); err != nil && first == nil {
			first = err
		}
	}
	p.threads = nil
	return first
}

// waitGone waits until every killed thread of the process has exited.
func (p *process) waitGone() {
	// Non-leader threads first: a leader is reported only after them.
	for i := len(p.threads) - 1; i >= 0; i-- {
		p.threads[i].WaitExit()
	}
	p.threads = nil
}
