package e2e

// inotify and POSIX timers, both checked by the workload testdata/notify.c
// (one mode each; see its comment for every check). Remaining times are
// checked as in fdkinds_test.go: still armed, less time left than before the
// dump but not less than that minus the time that really passed, the same
// interval exactly.

import "testing"

// TestE2EInotify: an inotify fd (IN_NONBLOCK, no FD_CLOEXEC) watching a
// directory in the test's temp dir (IN_CREATE|IN_DELETE) and a file
// (IN_MODIFY): F_GETFL/F_GETFD/link and the fdinfo watch lines (wd, inode,
// sdev, mask, ignored_mask, file handle) as before the dump, nothing queued;
// then creating a file in the directory gives IN_CREATE with the directory's
// wd and the name, appending to the file IN_MODIFY with its wd, unlinking
// IN_DELETE, mkdir IN_CREATE|IN_ISDIR, and nothing more. With 4 threads a
// worker blocked in poll() of the inotify fd at the dump wakes only for the
// first event made after restore.
func TestE2EInotify(t *testing.T) {
	forEachVariant(t, "notify", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "inotify")
	})
}

// TestE2EPosixTimers: timer_create timers keep their kernel ids (a deleted
// one leaves a hole) and /proc/self/timers records (ID, signal and value,
// notify, ClockID) identical to before the dump: CLOCK_MONOTONIC
// SIGEV_SIGNAL SIGRTMIN+1 value 42 (100 s, every 50 s), CLOCK_REALTIME
// SIGEV_NONE (200 s), a disarmed CLOCK_BOOTTIME one (still disarmed), with 4
// threads a SIGEV_THREAD_ID timer on worker 1 (SIGRTMIN+3, value 77, 150 s
// every 7 s; re-armed to 1 ms after restore its signal arrives in worker 1
// with si_value and si_timerid); timer_gettime remaining and interval as
// above; none fired. A 20 ms CLOCK_MONOTONIC timer (SIGRTMIN+2, value 4343)
// keeps ticking after restore (5 signals within 3 s, not faster), every
// signal with SI_TIMER, si_value 4343 and its si_timerid.
func TestE2EPosixTimers(t *testing.T) {
	forEachVariant(t, "notify", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "timers")
	})
}
