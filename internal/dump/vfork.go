package dump

import (
	"fmt"
	"os"
	"strings"

	"github.com/cryo-cr/cryo/internal/proc"
)

// vforkWchan is where a thread waiting in vfork (or clone with
// CLONE_VFORK, as posix_spawn does) for its child to exec or exit sleeps,
// as /proc/PID/task/TID/wchan names it: wait_for_vfork_done is inlined
// into kernel_clone.
const vforkWchan = "kernel_clone"

// checkNotInVfork refuses a process one thread of which waits in vfork:
// that wait ignores every stop (ptrace's included) until the child execs
// or exits, so seizing the process would wait as long as the child likes.
// It is looked at before the process is touched: a refused dump leaves
// it as it was.
func checkNotInVfork(pid int) error {
	tids, err := proc.Tasks(pid)
	if err != nil {
		return nil // gone: seizing it says so
	}
	for _, tid := range tids {
		st, err := proc.ReadTaskStat(pid, tid)
		if err != nil || st.State != 'D' {
			continue
		}
		wchan, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/wchan", pid, tid))
		if err != nil || strings.TrimSpace(string(wchan)) != vforkWchan {
			continue
		}
		what := fmt.Sprintf("process %d", pid)
		if tid != pid {
			what = fmt.Sprintf("thread %d of process %d", tid, pid)
		}
		return fmt.Errorf("%s is waiting in vfork for its child to exec or exit, and cannot be stopped until then: dump it once the child has exec'd or exited", what)
	}
	return nil
}
