/*
 * signals: signal dispositions, blocked masks and (mode "pending") pending
 * signals survive checkpoint/restore.
 *
 * Default mode: all 64 dispositions (handlers with various sa_flags/sa_mask,
 * SIG_IGN on some, SIG_DFL with flags on some) compared field by field
 * (handler, flags, restorer, mask) with raw rt_sigaction snapshots; the
 * blocked mask of main and of every worker thread.
 *
 * Mode "pending" adds pending signals, all blocked so they stay pending:
 * process-wide SIGUSR2 (kill), three queued instances of SIGRTMIN+2 carrying
 * values 11, 22, 33 (sigqueue), a thread-directed SIGRTMIN+4 on main carrying
 * 44 and a thread-directed SIGRTMIN+5 on each worker carrying 100+idx
 * (pthread_sigqueue). After restore: rt_sigpending of main is exactly the
 * expected set, and sigtimedwait returns every instance exactly once, in
 * order, with its si_code, si_pid and si_value.
 */
#include "wl.h"

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction before[65];
static uint64_t mask_before[WL_MAX_THREADS];
static int pending_mode;

static void h1(int sig) { (void)sig; }
static void h2(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
}

static uint64_t raw_sigmask(void)
{
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static int raw_getaction(int sig, struct ksigaction *ka)
{
	memset(ka, 0, sizeof(*ka));
	return (int)syscall(SYS_rt_sigaction, sig, NULL, ka, 8);
}

static int is_sync(int s)
{
	return s == SIGILL || s == SIGTRAP || s == SIGBUS || s == SIGFPE || s == SIGSEGV || s == SIGSYS;
}

static void set_dispositions(void)
{
	for (int s = 1; s <= 64; s++) {
		struct sigaction sa;
		if (s == SIGKILL || s == SIGSTOP || s == SIGTERM || s == 32 || s == 33)
			continue; /* 32/33: glibc internal, left as glibc set them */
		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		if (s == SIGCHLD) {
			sa.sa_handler = h1;
			sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
		} else if (is_sync(s)) {
			sa.sa_sigaction = h2;
			sa.sa_flags = SA_SIGINFO | SA_NODEFER;
			sigaddset(&sa.sa_mask, SIGUSR1);
		} else {
			switch (s % 5) {
			case 0:
				sa.sa_handler = SIG_IGN;
				break;
			case 1:
				sa.sa_sigaction = h2;
				sa.sa_flags = SA_SIGINFO | SA_RESTART;
				sigaddset(&sa.sa_mask, SIGUSR1);
				sigaddset(&sa.sa_mask, SIGRTMIN + s % 8);
				break;
			case 2:
				sa.sa_handler = h1;
				sa.sa_flags = SA_NODEFER | SA_RESETHAND | SA_ONSTACK;
				sigaddset(&sa.sa_mask, SIGINT);
				sigaddset(&sa.sa_mask, SIGQUIT);
				break;
			case 3:
				sa.sa_handler = SIG_DFL;
				sa.sa_flags = SA_RESTART;
				break;
			case 4:
				sa.sa_handler = h1;
				sa.sa_flags = SA_RESTART;
				sigfillset(&sa.sa_mask);
				break;
			}
		}
		if (sigaction(s, &sa, NULL))
			wl_die("sigaction(%d): %s", s, strerror(errno));
	}
}

/* After pthread_create: glibc installs its SIGSETXID (33) handler lazily. */
static void snapshot_dispositions(void)
{
	for (int s = 1; s <= 64; s++)
		if (raw_getaction(s, &before[s]))
			wl_die("rt_sigaction(%d): %s", s, strerror(errno));
}

static void check_dispositions(void)
{
	for (int s = 1; s <= 64; s++) {
		struct ksigaction now;
		struct ksigaction *b = &before[s];
		if (raw_getaction(s, &now)) {
			wl_fail("rt_sigaction(%d): %s", s, strerror(errno));
			continue;
		}
		CHECK(now.handler == b->handler && now.flags == b->flags && now.restorer == b->restorer &&
			  now.mask == b->mask,
		      "signal %d (%s): disposition {handler %p, flags %#lx, restorer %p, mask %#lx}, want "
		      "{%p, %#lx, %p, %#lx}",
		      s, strsignal(s), now.handler, now.flags, now.restorer, (unsigned long)now.mask, b->handler,
		      b->flags, b->restorer, (unsigned long)b->mask);
	}
}

static uint64_t bit(int sig) { return 1ull << (sig - 1); }

/* Consumes one pending instance of sig; returns 0 if none. */
static int take(int sig, siginfo_t *si)
{
	sigset_t set;
	struct timespec zero = {0, 0};
	sigemptyset(&set);
	sigaddset(&set, sig);
	memset(si, 0, sizeof(*si));
	return sigtimedwait(&set, si, &zero) == sig;
}

static void expect_queued(int idx, int sig, int code, int value)
{
	siginfo_t si;
	if (!take(sig, &si)) {
		wl_fail("thread %d: pending signal %d (value %d) lost", idx, sig, value);
		return;
	}
	CHECK(si.si_code == code, "thread %d: pending signal %d: si_code = %d, want %d", idx, sig, si.si_code,
	      code);
	CHECK(si.si_pid == wl_pid, "thread %d: pending signal %d: si_pid = %d, want %d", idx, sig, si.si_pid,
	      wl_pid);
	if (code == SI_QUEUE)
		CHECK(si.si_value.sival_int == value, "thread %d: pending signal %d: value = %d, want %d (order?)",
		      idx, sig, si.si_value.sival_int, value);
}

static void expect_none(int idx, int sig)
{
	siginfo_t si;
	if (take(sig, &si))
		wl_fail("thread %d: extra pending signal %d (code %d, value %d) after the expected ones", idx, sig,
			si.si_code, si.si_value.sival_int);
}

static void queue_self(int sig, int value)
{
	union sigval v = {.sival_int = value};
	if (pthread_sigqueue(pthread_self(), sig, v))
		wl_die("pthread_sigqueue(%d)", sig);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGRTMIN + 6 + idx % 20);
	if (idx % 2)
		sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pending_mode)
		queue_self(SIGRTMIN + 5, 100 + idx);
	mask_before[idx] = raw_sigmask();
	wl_thread_started(idx);
	wl_wait_stop();

	wl_check_ids(idx);
	if (wl_corrupt) {
		sigaddset(&set, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	{
		uint64_t m = raw_sigmask();
		CHECK(m == mask_before[idx], "thread %d: blocked mask = %#lx, want %#lx", idx, (unsigned long)m,
		      (unsigned long)mask_before[idx]);
	}
	if (pending_mode) {
		if (wl_corrupt) {
			siginfo_t si;
			take(SIGRTMIN + 5, &si);
		}
		expect_queued(idx, SIGRTMIN + 5, SI_QUEUE, 100 + idx);
		expect_none(idx, SIGRTMIN + 5);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	sigset_t set;
	uint64_t pend_want = 0;

	wl_init(argc, argv);
	if (strcmp(wl_mode, "pending") == 0)
		pending_mode = 1;
	else if (wl_mode[0])
		wl_die("unknown mode '%s' (pending)", wl_mode);

	set_dispositions();

	/* blocked mask of main (inherited by the workers, which add more) */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGRTMIN + 3);
	sigaddset(&set, SIGRTMAX - 1);
	if (pending_mode) {
		sigaddset(&set, SIGUSR2);
		sigaddset(&set, SIGRTMIN + 2);
		sigaddset(&set, SIGRTMIN + 4);
		sigaddset(&set, SIGRTMIN + 5);
	}
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	mask_before[0] = raw_sigmask();

	if (pending_mode) {
		union sigval v;
		if (kill(getpid(), SIGUSR2))
			wl_die("kill: %s", strerror(errno));
		for (int i = 1; i <= 3; i++) {
			v.sival_int = 11 * i;
			if (sigqueue(getpid(), SIGRTMIN + 2, v))
				wl_die("sigqueue: %s", strerror(errno));
		}
		queue_self(SIGRTMIN + 4, 44);
		pend_want = bit(SIGUSR2) | bit(SIGRTMIN + 2) | bit(SIGRTMIN + 4);
	}

	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	snapshot_dispositions();
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGRTMIN + 6, &sa, NULL); /* 40: was SIG_IGN */
		sa.sa_handler = h1;
		sigaction(SIGRTMIN + 7, &sa, NULL); /* 41: flags and handler change */
		sigemptyset(&set);
		sigaddset(&set, SIGPROF);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (pending_mode) {
			siginfo_t si;
			take(SIGRTMIN + 2, &si);
		}
	}
	wl_check_ids(0);
	check_dispositions();
	{
		uint64_t m = raw_sigmask();
		CHECK(m == mask_before[0], "thread 0: blocked mask = %#lx, want %#lx", (unsigned long)m,
		      (unsigned long)mask_before[0]);
	}
	if (pending_mode) {
		uint64_t pend = 0;
		syscall(SYS_rt_sigpending, &pend, 8);
		CHECK(pend == pend_want, "thread 0: rt_sigpending = %#lx, want %#lx", (unsigned long)pend,
		      (unsigned long)pend_want);
		expect_queued(0, SIGRTMIN + 4, SI_QUEUE, 44);
		expect_none(0, SIGRTMIN + 4);
		expect_queued(0, SIGUSR2, SI_USER, 0);
		expect_none(0, SIGUSR2);
		for (int i = 1; i <= 3; i++)
			expect_queued(0, SIGRTMIN + 2, SI_QUEUE, 11 * i);
		expect_none(0, SIGRTMIN + 2);
	}
	wl_join(th, wl_nthreads);
	return wl_finish();
}
