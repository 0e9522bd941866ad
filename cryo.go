package cryo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cryo-cr/cryo/internal/check"
	"github.com/cryo-cr/cryo/internal/dump"
	"github.com/cryo-cr/cryo/internal/memtrack"
	"github.com/cryo-cr/cryo/internal/netns"
	"github.com/cryo-cr/cryo/internal/progress"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/restore"
)

// Init makes a copy of the program that cryo started as one of its helpers
// do that helper's work, and exits it; in any other process it returns at
// once. Call it first in main, before anything else runs: a rootless
// restore starts the init of the tree's new pid namespace this way.
func Init() {
	if len(os.Args) == 0 {
		return
	}
	switch os.Args[0] {
	case ptrace.StubName:
		os.Exit(127)
	case restore.InitName:
		os.Exit(restore.RunInit(os.Args[1:]))
	case check.ProbeName:
		os.Exit(0)
	case netns.HelperName:
		os.Exit(netns.RunHelper())
	case memtrack.KeeperName:
		os.Exit(memtrack.RunKeeper(os.Args[1:]))
	}
}

// DumpOptions say where and how a tree is dumped. The zero value, with a
// Dir, dumps the tree and then kills it, as `cryo dump` does.
type DumpOptions struct {
	// Dir is the images directory; it is created with mode 0700 and each
	// image with 0600 (images hold all of the tree's memory).
	Dir string
	// LeaveRunning resumes the tree once it is dumped, instead of killing
	// it (CRIU's --leave-running).
	LeaveRunning bool
	// LeaveStopped leaves the tree stopped with SIGSTOP once it is dumped
	// (CRIU's --leave-stopped).
	LeaveStopped bool
	// ShellJob accepts the caller's terminal among the tree's descriptors
	// (CRIU's --shell-job).
	ShellJob bool
	// TCPEstablished saves established TCP connections in repair mode and
	// locks the network for their peers until the restore (CRIU's
	// --tcp-established); without it such a tree is refused.
	TCPEstablished bool
	// ExtUnixSk lets a datagram Unix socket connected to a named socket
	// outside the tree be dumped and connected again by name (CRIU's
	// --ext-unix-sk).
	ExtUnixSk bool
	// SkipInFlight leaves out TCP connections still waiting in a
	// listener's accept queue instead of refusing the dump (CRIU's
	// --skip-in-flight): their clients see them reset.
	SkipInFlight bool
	// TCPClose saves established TCP connections as closed sockets (CRIU's
	// --tcp-close): the restored program sees them reset.
	TCPClose bool
	// LinkRemap lets a deleted file that is still linked under another
	// name be dumped; it comes back as a copy (CRIU's --link-remap).
	LinkRemap bool
	// External names resources outside the tree that it may hold, in
	// CRIU's --external syntax: tty[RDEV:DEV] (hexadecimal, as CRIU
	// prints them) for a terminal, unix[INO] for a Unix stream socket
	// connected to a peer outside (INO: either socket's inode). Restore
	// them with RestoreOptions.InheritFds.
	External []string
	// FileLocks saves the flock, POSIX and OFD locks the tree holds, and
	// the restore takes them again (CRIU's --file-locks); without it a
	// tree holding a lock is refused.
	FileLocks bool
	// EmptyNetNS leaves the tree's network namespace out of the images, as
	// CRIU's empty_ns does for a container engine that makes a new one: the
	// tree must hold no socket in it, and the images are restored with
	// RestoreOptions.EmptyNetNS. As in CRIU, it does nothing to a tree in
	// cryo's own network namespace (a rootless runc container shares the
	// host's), which is dumped and restored there.
	EmptyNetNS bool
	// ExtMounts names the external mounts of a container's mount namespace
	// (CRIU's ext_mnt on dump, --external mnt[POINT]:KEY): mount point in
	// the namespace -> key. They are bind-mounted again on restore from
	// the host path RestoreOptions.ExtMounts gives for the key.
	ExtMounts map[string]string
	// OrphanPts saves a terminal whose master is outside the tree (a
	// container started with runc --console-socket) instead of refusing
	// it (CRIU's orphan_pts_master); restore gives it back with
	// RestoreOptions.OrphanPtsMaster.
	OrphanPts bool
	// Notify, if set, is called at CRIU's notification points of a dump:
	// "network-lock" once the tree is frozen, "post-dump" once the images
	// are written, "network-unlock" once a tree that runs on runs again.
	// An error from the first two fails the dump, the tree left running.
	Notify func(event string, pid int) error
	// Logger receives the progress messages (at Debug level); nil: none.
	Logger *slog.Logger
	// Progress, if set, is called about every ProgressInterval while the
	// tree's memory is copied, and once at the end, from another
	// goroutine; it must return quickly.
	Progress func(Progress)
}

// ProgressInterval is how often DumpOptions.Progress and
// RestoreOptions.Progress are called.
const ProgressInterval = 200 * time.Millisecond

// Progress is how far a dump or restore has got with the tree's memory,
// the part of its work that grows with the tree.
type Progress struct {
	// Done is the bytes of memory copied so far; Total the bytes known to
	// copy, which grows while a dump finds each process's pages.
	Done, Total int64
	// Elapsed is the time since the call began.
	Elapsed time.Duration
}

// watchProgress starts calling fn (if set) with m's counts; the function
// it returns stops it after a last call.
func watchProgress(fn func(Progress)) (*progress.Meter, func()) {
	if fn == nil {
		return nil, func() {}
	}
	m := progress.New()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ProgressInterval, stop, func(s progress.Snapshot) {
			fn(Progress{Done: s.Done, Total: s.Total, Elapsed: s.Elapsed})
		})
	}()
	return m, func() { close(stop); <-done }
}

// Stats are figures of one dump or restore.
type Stats struct {
	// Duration is the wall time of the whole call.
	Duration time.Duration
}

// Dump checkpoints the process pid and all its descendants into opts.Dir.
//
// When it fails, the tree is left running as it was (registers, memory
// and signal state put back, nothing of cryo's left in it) and the error
// is a *RefusedError. Cancelling ctx before the images are complete rolls
// the dump back the same way and gives an *InterruptedError; once they
// are, the dump finishes.
func Dump(ctx context.Context, pid int, opts DumpOptions) (*Stats, error) {
	if err := ptrace.ArchSupported(); err != nil {
		return nil, &RefusedError{Pid: pid, Err: err}
	}
	if opts.Dir == "" {
		return nil, errors.New("cryo: dump: DumpOptions.Dir is empty")
	}
	if err := ctx.Err(); err != nil {
		return nil, &InterruptedError{Op: "dump", Cause: err, Err: err}
	}
	start := time.Now()
	meter, stopProgress := watchProgress(opts.Progress)
	err := dump.DumpContext(ctx, dump.Options{
		Progress:       meter,
		Pid:            pid,
		Dir:            opts.Dir,
		LeaveRunning:   opts.LeaveRunning,
		LeaveStopped:   opts.LeaveStopped,
		ShellJob:       opts.ShellJob,
		OrphanPts:      opts.OrphanPts,
		TCPEstablished: opts.TCPEstablished,
		ExtUnixSk:      opts.ExtUnixSk,
		SkipInFlight:   opts.SkipInFlight,
		TCPClose:       opts.TCPClose,
		LinkRemap:      opts.LinkRemap,
		FileLocks:      opts.FileLocks,
		External:       opts.External,
		EmptyNetNS:     opts.EmptyNetNS,
		ExtMounts:      opts.ExtMounts,
		Notify:         opts.Notify,
		Logf:           logf(opts.Logger),
	})
	stopProgress()
	switch {
	case errors.Is(err, dump.ErrInterrupted):
		return nil, &InterruptedError{Op: "dump", Cause: context.Cause(ctx), Err: err}
	case err != nil:
		return nil, &RefusedError{Pid: pid, Err: err}
	}
	return &Stats{Duration: time.Since(start)}, nil
}

// RestoreOptions say how a tree is restored. The zero value restores it
// running, as `cryo restore` does.
type RestoreOptions struct {
	// ShellJob gives the restored tree the caller's terminal in place of
	// the one it held (CRIU's --shell-job).
	ShellJob bool
	// LeaveStopped leaves the restored tree stopped with SIGSTOP (CRIU's
	// --leave-stopped).
	LeaveStopped bool
	// PidFile, if set, gets the restored root's PID. It is created anew
	// (O_EXCL): an existing file, or a link, is refused.
	PidFile string
	// TrustImages lets root restore images that a normal user owns or
	// could have written. Without it such a restore is refused: whoever
	// writes the images chooses the ids and capabilities root gives the
	// processes (docs/security.md).
	TrustImages bool
	// EmptyNetNS restores the tree into a new network namespace whose
	// loopback is up; images dumped with DumpOptions.EmptyNetNS need it.
	// A tree that was in the dumper's network namespace is restored in
	// cryo's, as CRIU does.
	EmptyNetNS bool
	// Root is the directory a container's mount namespace is made again
	// at (CRIU's --root; runc gives a bind mount of the container's
	// rootfs): images of a container's namespace need it.
	Root string
	// ExtMounts gives the host path of each external mount of a
	// container's namespace by its key (CRIU's ext_mnt on restore).
	ExtMounts map[string]string
	// TCPClose brings the established TCP connections of the images back
	// closed, unconnected sockets at their descriptors (CRIU's restore
	// --tcp-close); their peers get a reset.
	TCPClose bool
	// OrphanPtsMaster receives the master of each terminal saved with
	// DumpOptions.OrphanPts, made anew in the tree's devpts (CRIU's
	// orphan-pts-master notification): the caller keeps it, as it kept the
	// old one. A restore of such a terminal without it is refused. The
	// file is the callee's to close.
	OrphanPtsMaster func(master *os.File) error
	// Notify, if set, is called at CRIU's notification points of a
	// restore: "pre-restore" (pid 0), "setup-namespaces",
	// "post-setup-namespaces", "post-restore", "network-unlock" and
	// "status-ready", all before the tree runs. An error fails the restore,
	// which leaves nothing behind.
	Notify func(event string, pid int) error
	// InheritFds gives the restored tree descriptors of the caller's in
	// place of files it shared with the world outside it (CRIU's
	// --inherit-fd fd[N]:KEY): KEY is pipe:[INO] or socket:[INO] as the
	// dump saw the file, or its path (a terminal, a FIFO); the value is
	// the caller's descriptor number, open until Restore returns. A key
	// that names no file of the images is logged and ignored.
	InheritFds map[string]int
	// Logger receives the progress messages (at Debug level); nil: none.
	Logger *slog.Logger
	// Progress, if set, is called about every ProgressInterval while the
	// tree's memory is written, and once at the end, from another
	// goroutine; it must return quickly.
	Progress func(Progress)
}

// Process is the root of a restored tree, a child of the calling process.
type Process struct {
	// Pid is the root's PID as the caller sees it.
	Pid int
	// Moved, when not empty, says why and how the tree's PIDs outside its
	// pid namespace differ from the dumped ones (a rootless restore of a
	// tree that was in the initial pid namespace).
	Moved string
	// Stats are the restore's figures.
	Stats Stats

	p *restore.Process
}

// Wait waits for the restored root to exit and returns its exit status the
// way a shell reports it (128+N when signal N killed it).
func (p *Process) Wait() (int, error) { return p.p.Wait() }

// Restore recreates the tree saved in dir. When it fails nothing is left
// behind: every process it made is killed and reaped. Cancelling ctx
// before the tree runs does that too and gives an *InterruptedError. A malformed image
// gives an error that errors.As finds an *ImageError in.
func Restore(ctx context.Context, dir string, opts RestoreOptions) (*Process, error) {
	if err := ptrace.ArchSupported(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &InterruptedError{Op: "restore", Cause: err, Err: err}
	}
	start := time.Now()
	meter, stopProgress := watchProgress(opts.Progress)
	rp, err := restore.Restore(restore.Options{
		Progress:        meter,
		Dir:             dir,
		Detach:          true,
		PidFile:         opts.PidFile,
		ShellJob:        opts.ShellJob,
		LeaveStopped:    opts.LeaveStopped,
		TrustImages:     opts.TrustImages,
		EmptyNetNS:      opts.EmptyNetNS,
		Root:            opts.Root,
		ExtMounts:       opts.ExtMounts,
		InheritFds:      opts.InheritFds,
		TCPClose:        opts.TCPClose,
		Notify:          opts.Notify,
		OrphanPtsMaster: opts.OrphanPtsMaster,
		Ctx:             ctx,
		Logf:            logf(opts.Logger),
	})
	stopProgress()
	if errors.Is(err, restore.ErrInterrupted) {
		return nil, &InterruptedError{Op: "restore", Cause: context.Cause(ctx), Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("cryo: restore %s: %w", dir, err)
	}
	return &Process{Pid: rp.Pid, Moved: rp.Moved, Stats: Stats{Duration: time.Since(start)}, p: rp}, nil
}

// logf adapts a *slog.Logger to the printf-style logging of the internal
// packages.
func logf(l *slog.Logger) func(string, ...any) {
	if l == nil {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		l.Debug(fmt.Sprintf(format, args...))
	}
}
