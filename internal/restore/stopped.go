package restore

import (
	"fmt"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"golang.org/x/sys/unix"
)

// stopSignal returns the signal that stopped a process dumped in a group
// stop (CRIU's TASK_STOPPED with stop_signo), or 0 for a running one. An
// image of CRIU's that names no signal stands for SIGSTOP, as CRIU reads
// it; any signal but the four stop signals is refused (images are
// untrusted, and another signal would kill or wake the process instead).
func stopSignal(tc *core.TaskCoreEntry) (unix.Signal, error) {
	if tc.GetTaskState() != taskStopped {
		if tc.StopSigno != nil && tc.GetStopSigno() != 0 {
			return 0, fmt.Errorf("stop signal %d for a process that is not stopped", tc.GetStopSigno())
		}
		return 0, nil
	}
	switch sig := unix.Signal(tc.GetStopSigno()); sig {
	case 0:
		return unix.SIGSTOP, nil
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return sig, nil
	default:
		return 0, fmt.Errorf("stop signal %d is not a stop signal", tc.GetStopSigno())
	}
}

// stopAgain queues the stop signal of every process that was stopped at
// the dump; each stops on it as soon as cryo lets it go, and its parent's
// waitpid(WUNTRACED) reports that signal. Called right before the detach,
// like --leave-stopped's SIGSTOP.
func (r *restorer) stopAgain() error {
	for _, p := range r.procs {
		if p.c.zombie || p.leader == nil || p.c.stopSig == 0 {
			continue
		}
		if err := unix.Kill(p.pid, p.c.stopSig); err != nil {
			return fmt.Errorf("process %d: stop it again with %v: %w", p.pid, p.c.stopSig, err)
		}
	}
	return nil
}
