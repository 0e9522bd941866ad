package restore

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/cryo-cr/cryo/internal/runlock"
)

// lastPidWait bounds how long a restore waits for another cryo's use of
// ns_last_pid: one clone, or the building of a whole tree (see
// holdLastPid), normally a second or two.
const lastPidWait = 2 * time.Minute

// lockLastPid takes the machine-wide lock that serialises writes of
// ns_last_pid and the clone that follows among cryo processes, and returns
// its release. Without a lock directory (a cryo that is not root, which
// cannot write ns_last_pid anyway) it does nothing.
func (r *restorer) lockLastPid() (func(), error) {
	if r.lastPidHeld {
		return func() {}, nil
	}
	dir, err := runlock.Dir()
	if err != nil {
		r.logf("warning: ns_last_pid is not locked against other cryos: %v", err)
		return func() {}, nil
	}
	l, err := runlock.Take(filepath.Join(dir, "ns_last_pid.lock"), lastPidWait)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// holdLastPid takes the ns_last_pid lock for the whole restore of a tree
// with a pid namespace of its own, when cryo chooses its PIDs (root): its
// clones move ns_last_pid past the tree after each one, and another cryo
// doing the same meanwhile would steer the machine's next PIDs (its own
// stub's, say) into this tree's range. Such restores take turns; the
// release is returned.
func (r *restorer) holdLastPid() (func(), error) {
	if r.movedPids || !r.snap.anyNsPids() {
		return func() {}, nil
	}
	unlock, err := r.lockLastPid()
	if err != nil {
		return nil, fmt.Errorf("restore pid %d: %w", r.snap.procs[0].pid, err)
	}
	prewarmThreads(spareThreads)
	r.lastPidHeld = true
	return func() {
		r.lastPidHeld = false
		unlock()
	}, nil
}

// spareThreads is how many idle OS threads prewarmThreads leaves.
const spareThreads = 16

// prewarmThreads makes the Go runtime create n OS threads at once and
// leaves them idle in its pool. A new thread of cryo's takes the machine's
// next PID like any task: one made between the write of ns_last_pid and
// the clone that follows took the very PID the clone wanted, for good (seen
// under load as "other processes keep taking the PID (now held by cryo)").
// With spare threads the runtime reuses them instead of cloning.
func prewarmThreads(n int) {
	var started, finished sync.WaitGroup
	release := make(chan struct{})
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer finished.Done()
			// Locked, each goroutine holds a thread of its own until all
			// are running; unlocked before it ends, the thread stays.
			runtime.LockOSThread()
			started.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	started.Wait()
	close(release)
	finished.Wait()
}

// anyNsPids tells whether a process of the tree has ids in a pid
// namespace of the tree's (the root's, or one nested below it).
func (s *snapshot) anyNsPids() bool {
	for _, c := range s.procs {
		if c.nsPids != nil {
			return true
		}
	}
	return false
}
