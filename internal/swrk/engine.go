package swrk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/cryo-cr/cryo"
)

// Request is a DUMP or RESTORE once its RPC options are translated: the
// only thing an Engine sees of the RPC. The default engine maps it onto
// the options of cryo's public API.
type Request struct {
	ImagesDir string // where the images are read or written
	WorkDir   string // where the log and statistics go (ImagesDir if unset)
	Pid       int    // the tree's root, for a dump
	// As cryo's flags of the same names.
	LeaveRunning, LeaveStopped, ShellJob, TCPEstablished, ExtUnixSk bool
	SkipInFlight, TCPClose, LinkRemap                               bool
	// FileLocks is file_locks: the locks the tree holds are saved, and
	// taken again on restore (cryo's --file-locks).
	FileLocks bool
	// PreDump is a PRE_DUMP request: the memory only, the tree running on
	// with its writes tracked (cryo pre-dump).
	PreDump bool
	// ParentDir is parent_img, the previous pre-dump's images directory
	// relative to ImagesDir (../DIR); TrackMem is track_mem.
	ParentDir string
	TrackMem  bool
	// FreezeCgroup is freeze_cgroup: the cgroup frozen while the tree is
	// seized.
	FreezeCgroup string
	// EmptyNetNS: empty_ns with CLONE_NEWNET, the tree's net namespace
	// left out of the dump and made new, loopback up, on restore.
	EmptyNetNS bool
	// Root is the directory a container's mount namespace is made again
	// at, on restore (CRIU's root).
	Root string
	// ExtMounts are the external mounts (ext_mnt): on dump mount point ->
	// key, on restore key -> host path.
	ExtMounts map[string]string
	// External (dump) are the resources outside the tree it may hold, in
	// CRIU's --external syntax (podman's net[INO]:extRootNetNS).
	External []string
	// InheritFds are inherit_fd's key -> descriptor of cryo's, on restore.
	InheritFds map[string]int
	Logf       func(format string, args ...any)
	// Notify is called at CRIU's notification points (see dump.Options
	// and restore.Options); its error fails the request.
	Notify func(event string, pid int) error
	// OrphanPts is orphan_pts_master: on dump a terminal whose master is
	// outside the tree is saved; on restore OrphanPtsMaster gets the new
	// master, for the orphan-pts-master notification.
	OrphanPts       bool
	OrphanPtsMaster func(master *os.File) error
}

// Engine does the work a request asks for. Check probes the kernel, as
// `cryo check` does, its report going to w.
type Engine struct {
	Dump    func(Request) error
	Restore func(Request) (pid int, err error)
	Check   func(w io.Writer) error
}

// DefaultEngine runs requests with cryo's public API (cryo.Dump and
// cryo.Restore), as the command line does, and `cryo check` as a child
// process.
func DefaultEngine() Engine {
	return Engine{Dump: runDump, Restore: runRestore, Check: runCheck}
}

// runCheck runs `cryo check` in a child: its probes start and trace stub
// processes and are meant for a short-lived process, while the server goes
// on serving the next request.
func runCheck(w io.Writer) error {
	var stderr bytes.Buffer
	cmd := exec.Command("/proc/self/exe", "check")
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimPrefix(strings.TrimSpace(stderr.String()), "cryo: "); msg != "" {
			return fmt.Errorf("check: %s", msg)
		}
		return fmt.Errorf("check: %w", err)
	}
	return nil
}

// runDump is `cryo dump -t PID -D DIR` (or `cryo pre-dump`) with the
// request's flags; its error reads as the command line's.
func runDump(r Request) error {
	call, name := cryo.Dump, "dump"
	if r.PreDump {
		call, name = cryo.PreDump, "pre-dump"
	}
	_, err := call(context.Background(), r.Pid, cryo.DumpOptions{
		Dir: r.ImagesDir, LeaveRunning: r.LeaveRunning, LeaveStopped: r.LeaveStopped, ShellJob: r.ShellJob,
		TCPEstablished: r.TCPEstablished, ExtUnixSk: r.ExtUnixSk, SkipInFlight: r.SkipInFlight, TCPClose: r.TCPClose,
		LinkRemap: r.LinkRemap, EmptyNetNS: r.EmptyNetNS, ExtMounts: r.ExtMounts, External: r.External, Notify: r.Notify, Logger: logger(r.Logf),
		OrphanPts: r.OrphanPts, FileLocks: r.FileLocks, ParentDir: r.ParentDir, TrackMem: r.TrackMem, FreezeCgroup: r.FreezeCgroup,
	})
	var refused *cryo.RefusedError
	var intr *cryo.InterruptedError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%s %d: %w", name, r.Pid, refused.Err)
	case errors.As(err, &intr):
		return fmt.Errorf("%s %d: %w", name, r.Pid, intr.Err)
	case err != nil:
		return fmt.Errorf("%s %d: %w", name, r.Pid, err)
	}
	return nil
}

// runRestore is `cryo restore -d -D DIR` with the request's flags: CRIU's
// RPC restores detached, the caller adopting the tree.
func runRestore(r Request) (int, error) {
	p, err := cryo.Restore(context.Background(), r.ImagesDir, cryo.RestoreOptions{
		ShellJob: r.ShellJob, LeaveStopped: r.LeaveStopped, EmptyNetNS: r.EmptyNetNS, Root: r.Root, ExtMounts: r.ExtMounts, InheritFds: r.InheritFds, TCPClose: r.TCPClose, Notify: r.Notify,
		Logger: logger(r.Logf), OrphanPtsMaster: r.OrphanPtsMaster,
	})
	if err != nil {
		// The command line's line: "restore: " and restore's own error.
		var intr *cryo.InterruptedError
		if errors.As(err, &intr) {
			return 0, fmt.Errorf("restore: %w", intr.Err)
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return 0, fmt.Errorf("restore: %w", err)
	}
	if p.Moved != "" {
		r.Logf("%s", p.Moved)
	}
	return p.Pid, nil
}

// logger makes a printf-style log function a *slog.Logger for the API.
func logger(logf func(string, ...any)) *slog.Logger {
	if logf == nil {
		return nil
	}
	return slog.New(logfHandler{logf})
}

// logfHandler is a slog.Handler writing each message through a printf.
type logfHandler struct{ logf func(string, ...any) }

func (h logfHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logfHandler) Handle(_ context.Context, r slog.Record) error {
	h.logf("%s", r.Message)
	return nil
}
func (h logfHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logfHandler) WithGroup(string) slog.Handler      { return h }
