package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestE2EFileLocks: a flock, two POSIX and an OFD lock held by the root,
// and a waiter blocked on each (testdata/locks.c). Without --file-locks
// the dump is refused in one line naming the process and the file, the
// tree running on; with it, every lock is held again after the restore
// (the root probes each from a new process), every waiter is blocked
// again, and gets its lock once the root lets it go.
func TestE2EFileLocks(t *testing.T) {
	forEachLink(t, "locks", func(t *testing.T, bin string) {
		tr := startTree(t, bin)
		if !noCR {
			dir := filepath.Join(t.TempDir(), "images")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			res := tryDump(t, tr.w.Pid, dir)
			assertOneErrorLine(t, res, "--file-locks", "lock-a")
			tr.waitMatches("after the refused dump")
		}
		tr.Checkpoint("--file-locks")
		tr.Restore()
		tr.Finish()
	})
}

// TestE2ESqliteWriter: an sqlite writer in the middle of a write
// transaction (testdata/sqlite_lock.c: its RESERVED lock is a POSIX lock
// on the database, its journal open) is dumped with --file-locks and
// restored: a new sqlite3 process is still refused the database, then
// the transaction commits and PRAGMA integrity_check passes with every row.
func TestE2ESqliteWriter(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "sqlite_lock", linkDynamic))
	w.Checkpoint("--file-locks")
	w.Restore()
	w.Finish()
}
