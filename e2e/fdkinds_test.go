package e2e

// Special files and timers: eventfd, timerfd, signalfd and the three
// itimers, all checked by the workload testdata/fdkinds.c (one mode each;
// see its comment for every check). Remaining times are checked with
// tolerance for the time the checkpoint takes: after restore a timer must
// still be armed, have less time left than before the dump but not less than
// that minus the time that really passed (a restore may freeze a timer while
// the process is dumped, never advance it), and the same interval exactly.

import "testing"

// TestE2EEventfd: eventfd counters (5; semaphore mode with 5 read as five
// 1s; a 64-bit value; the maximum 2^64-2 still fits, one more is EAGAIN),
// EFD_SEMAPHORE/O_NONBLOCK/FD_CLOEXEC, a dup sharing the counter (kcmp),
// the fdinfo eventfd-count/eventfd-semaphore lines; with 4 threads a worker
// blocked in read() of an empty eventfd returns the 7 main writes after
// SIGTERM (restarted, no EINTR).
func TestE2EEventfd(t *testing.T) {
	forEachVariant(t, "fdkinds", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "eventfd")
	})
}

// TestE2EEventfdShared: a tree (root and child C): two eventfds opened by
// the root before fork are one open file description in both processes
// after restore (kcmp across pids) and one counter (root reads 5 and writes
// 3, C reads 3 and writes 11, root reads 11; a semaphore eventfd at 2 gives
// one 1 to each, then EAGAIN); the eventfd each opened at the same fd number
// after fork stays its own.
func TestE2EEventfdShared(t *testing.T) {
	forEachLink(t, "fdkinds", func(t *testing.T, bin string) {
		tr := treeCR(t, bin, "shared")
		if len(tr.Pids) != 2 {
			t.Errorf("workload bug: %d TREE lines, want root and C", len(tr.Pids))
		}
	})
}

// TestE2ETimerfd: timerfds of CLOCK_MONOTONIC (30 s, interval 1.234567891
// s, no expiration yet, fires when re-armed), CLOCK_REALTIME absolute armed
// in the past (4 expirations not read, fdinfo ticks 4), CLOCK_BOOTTIME
// expired one-shot (disarmed, 1 tick), and CLOCK_REALTIME absolute whose 3
// missed intervals the kernel had not yet counted at the dump (fdinfo says
// ticks 1 and it_value 0 until timerfd_gettime/read): read gives 3 and it
// stays armed. Clock, settime flags, interval, ticks from fdinfo; F_GETFL,
// F_GETFD. With 4 threads a worker blocked in read() of a 60 s timerfd gets
// 1 tick when main re-arms it to 1 ms after SIGTERM, not before.
func TestE2ETimerfd(t *testing.T) {
	forEachVariant(t, "fdkinds", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "timerfd")
	})
}

// TestE2ESignalfd: signalfds for {SIGUSR1,SIGUSR2} (SFD_NONBLOCK|
// SFD_CLOEXEC) and {SIGRTMIN+3} (blocking): fdinfo sigmask and flags kept;
// the signals pending at the dump are read from the signalfd after restore
// with their siginfo: main's raise()d SIGUSR1 (SI_TKILL), SIGUSR2
// sigqueue'd to the process (SI_QUEUE, 4242), and with 4 threads each
// worker's own thread-directed SIGUSR1 (SI_QUEUE, 100+i); then nothing
// more; new signals arrive through both signalfds; with 4 threads a worker
// blocked in read() of the second signalfd at the dump receives the
// SIGRTMIN+3 main sends it after SIGTERM.
func TestE2ESignalfd(t *testing.T) {
	forEachVariant(t, "fdkinds", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "signalfd")
	})
}

// TestE2EItimers: setitimer/getitimer state.
//
// values: ITIMER_REAL 100 s every 2.345678 s (remaining decreases but stays
// > 90 s), ITIMER_VIRTUAL 200 s every 3.456789 s and ITIMER_PROF 300 s
// every 4.567891 s (> 190 s / > 290 s, at most 50 ms above their value
// before the dump); intervals exact; no timer signal delivered.
//
// ticking: ITIMER_REAL every 50 ms counted by a SIGALRM handler keeps
// counting after restore (5 more within 3 s, never faster than every 50 ms),
// interval exact, 0 < remaining <= 50 ms.
//
// expired-pending: ITIMER_REAL (1 ms, then every 20 s) expired while
// SIGALRM is blocked: the kernel re-arms it only when SIGALRM is dequeued,
// so at the dump getitimer says {interval 20 s, value 0}. A dump catches
// this state whenever the timer expires while the process is frozen (with
// "ticking" and 4 threads, now and then). After restore SIGALRM is still
// pending and the interval still 20 s; once unblocked the handler runs once
// and the timer is armed (0 < remaining <= 20 s).
func TestE2EItimers(t *testing.T) {
	requireRoot(t)
	for _, m := range []struct{ name, mode string }{
		{"values", "itimers"}, {"ticking", "itimer-tick"}, {"expired-pending", "itimer-pending"},
	} {
		t.Run(m.name, func(t *testing.T) {
			forEachVariant(t, "fdkinds", []int{1, 4}, func(t *testing.T, bin string, n int) {
				checkpointRestore(t, bin, "-t", nthreads(n), m.mode)
			})
		})
	}
}
