package restore

import (
	"path/filepath"
	"time"

	"github.com/cryo-cr/cryo/internal/runlock"
)

// lastPidWait bounds how long a restore waits for another cryo's use of
// ns_last_pid (one clone, normally well under a millisecond).
const lastPidWait = 30 * time.Second

// lockLastPid takes the machine-wide lock that serialises writes of
// ns_last_pid and the clone that follows among cryo processes, and returns
// its release. Without a lock directory (a cryo that is not root, which
// cannot write ns_last_pid anyway) it does nothing.
func (r *restorer) lockLastPid() (func(), error) {
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
