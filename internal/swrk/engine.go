package swrk

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/cryo-cr/cryo/internal/dump"
	"github.com/cryo-cr/cryo/internal/restore"
)

// Request is a DUMP or RESTORE once its RPC options are translated: the
// only thing an Engine sees of the RPC. When cryo has a public Go API
// (issue 10), Request maps onto its options and Engine onto its calls.
type Request struct {
	ImagesDir string // where the images are read or written
	WorkDir   string // where the log and statistics go (ImagesDir if unset)
	Pid       int    // the tree's root, for a dump
	// As cryo's flags of the same names.
	LeaveRunning, LeaveStopped, ShellJob, TCPEstablished, ExtUnixSk bool
	// EmptyNetNS: empty_ns with CLONE_NEWNET, the tree's net namespace
	// left out of the dump and made new, loopback up, on restore.
	EmptyNetNS bool
	Logf       func(format string, args ...any)
	// Notify is called at CRIU's notification points (see dump.Options
	// and restore.Options); its error fails the request.
	Notify func(event string, pid int) error
}

// Engine does the work a request asks for. Check probes the kernel, as
// `cryo check` does, its report going to w.
type Engine struct {
	Dump    func(Request) error
	Restore func(Request) (pid int, err error)
	Check   func(w io.Writer) error
}

// DefaultEngine runs requests with cryo's own dump and restore, the way
// the command line does, and `cryo check` as a child process.
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

// runDump is `cryo dump -t PID -D DIR` with the request's flags; its error
// reads as the command line's.
func runDump(r Request) error {
	err := dump.Dump(dump.Options{Pid: r.Pid, Dir: r.ImagesDir, LeaveRunning: r.LeaveRunning, LeaveStopped: r.LeaveStopped,
		ShellJob: r.ShellJob, TCPEstablished: r.TCPEstablished, ExtUnixSk: r.ExtUnixSk, EmptyNetNS: r.EmptyNetNS, Logf: r.Logf, Notify: r.Notify})
	if err != nil {
		return fmt.Errorf("dump %d: %w", r.Pid, err)
	}
	return nil
}

// runRestore is `cryo restore -d -D DIR` with the request's flags: CRIU's
// RPC restores detached, the caller adopting the tree.
func runRestore(r Request) (int, error) {
	p, err := restore.Restore(restore.Options{Dir: r.ImagesDir, Detach: true, ShellJob: r.ShellJob,
		LeaveStopped: r.LeaveStopped, EmptyNetNS: r.EmptyNetNS, Logf: r.Logf, Notify: r.Notify})
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if p.Moved != "" {
		r.Logf("%s", p.Moved)
	}
	return p.Pid, nil
}
