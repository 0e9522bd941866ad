package restore

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// zombieWait bounds how long restore waits for a zombie that holds one of
// the image's PIDs to be reaped by its parent: right after a restore (or
// the dumped tree) was killed, its processes are zombies until the parent
// or the subreaper they were handed to reaps them, which is normally a
// matter of milliseconds.
const zombieWait = 10 * time.Second

// pidPoll is how often a PID held by a zombie is looked at again.
const pidPoll = 10 * time.Millisecond

// checkPidsFree refuses to start when any PID or TID of the image is in
// use. A PID held by a zombie (or a task that is exiting) is waited for,
// at most zombieWait in all: it is about to be freed, and refusing it would
// make a restore right after a killed one fail for no reason.
func (s *snapshot) checkPidsFree(logf func(string, ...any)) error {
	deadline := time.Now().Add(zombieWait)
	for _, tid := range s.allTids() {
		for waited := false; ; waited = true {
			err := unix.Kill(int(tid), 0)
			if err == unix.ESRCH {
				break
			}
			st, serr := proc.ReadStat(int(tid))
			if serr != nil && errors.Is(serr, os.ErrNotExist) {
				break // gone between the two looks
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tid))
			if serr != nil || (st.State != 'Z' && st.State != 'X') {
				return fmt.Errorf("pid %d is taken by a running process (%s)", tid, trimNL(comm))
			}
			if !waited {
				logf("pid %d is held by a zombie (%s) that its parent %d has not reaped yet: waiting for it, at most %v", tid, trimNL(comm), st.PPid, zombieWait)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("pid %d is taken by a zombie (%s) that its parent %d did not reap within %v", tid, trimNL(comm), st.PPid, zombieWait)
			}
			time.Sleep(pidPoll)
		}
	}
	return nil
}

// lastPidRetryFor bounds how long a clone through ns_last_pid is tried
// again while other tasks take the PID: a short-lived process of the
// machine (a compiler, a shell command) that got it frees it soon.
const lastPidRetryFor = 10 * time.Second

// retryPause is the pause before try number try+1: 5 ms more each time,
// at most 100 ms.
func retryPause(try int) time.Duration {
	return min(time.Duration(try+1)*5*time.Millisecond, 100*time.Millisecond)
}

// heldBy names, for an error, the live process that holds pid now ("" if
// none, or a zombie or exiting task).
func heldBy(pid int) string {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return ""
	}
	st, err := proc.ReadStat(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return ""
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return fmt.Sprintf(" (now held by %s, pid %d)", trimNL(comm), pid)
}
